"""Run configuration: presets, TOML tables, dotted overrides, and the errors for bad ones."""

import dataclasses

import pytest

from harness.contract.config import DataConfig
from harness.families.gpt import FAMILY
from harness.runner.config import build_data_config, build_run_config, load_run_config, read_config_file


def test_overrides_apply_after_the_file_with_types_checked(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[train]\nlr = 3e-4\nseed = 7\n[data]\npaths = ["a.txt"]\n[model]\ndropout = 0.1\n')
    _, config = load_run_config("tiny", str(path), ["train.seed=9", "eval.every=5", "train.lr=1"])
    assert config.train.seed == 9
    assert config.train.lr == 1.0 and isinstance(config.train.lr, float)
    assert config.eval.every == 5
    assert config.data.paths == ("a.txt",)
    assert config.model == FAMILY.preset("tiny").replace(dropout=0.1)


def test_a_single_path_override_becomes_a_tuple():
    assert build_run_config(FAMILY, "tiny", overrides=["data.paths=corpus.txt"]).data.paths == ("corpus.txt",)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.foo=1"], "unknown config key 'train.foo'; known keys in \\[train\\]: seed, steps"),
        (["nosuch.key=1"], "unknown config key 'nosuch.key'"),
        (["train.seed=abc"], "config key train.seed expects an integer, received 'abc' \\(str\\)"),
        (["train.lr=true"], "config key train.lr expects a number, received True \\(bool\\)"),
        (["model.n_layer=2.5"], "config key model.n_layer expects an integer, received 2.5"),
        (["train.steps"], "--set expects SECTION.KEY=VALUE, received 'train.steps'"),
        (["checkpoint.keep=0"], "checkpoint.keep >= 1"),
        (["train.lr_scaling=sqrt"], "train.lr_scaling must be 'none' or 'linear', received 'sqrt'"),
    ],
)
def test_bad_overrides_name_the_key(overrides, message):
    with pytest.raises(ValueError, match=message):
        build_run_config(FAMILY, "tiny", overrides=overrides)


def test_bad_files_and_presets(tmp_path):
    with pytest.raises(ValueError, match="cannot read config file"):
        load_run_config("tiny", str(tmp_path / "missing.toml"))
    (tmp_path / "bad.toml").write_text("[train\n")
    with pytest.raises(ValueError, match="is not valid TOML"):
        load_run_config("tiny", str(tmp_path / "bad.toml"))
    (tmp_path / "table.toml").write_text("[optimizer]\nlr = 1\n")
    with pytest.raises(ValueError, match=r"unknown config table \[optimizer\]"):
        load_run_config("tiny", str(tmp_path / "table.toml"))
    with pytest.raises(ValueError, match="unknown gpt model preset 'huge'"):
        build_run_config(FAMILY, "huge")


def test_a_family_s_run_defaults_sit_beneath_the_file_and_the_overrides(tmp_path):
    from harness.families.bert import FAMILY as BERT

    pretraining = build_run_config(BERT, "default")
    assert (pretraining.train.lr, pretraining.train.warmup_steps, pretraining.data.val_fraction) == (1e-3, 100, 0.1)
    finetuning = build_run_config(BERT, "default-classify")
    assert (finetuning.train.lr, finetuning.train.warmup_steps, finetuning.data.val_fraction) == (3e-4, 30, 0.2)
    path = tmp_path / "run.toml"
    path.write_text("[train]\nlr = 5e-4\n")
    _, config = load_run_config("default-classify", str(path), ["data.val_fraction=0.1"], family="bert")
    assert (config.train.lr, config.train.warmup_steps, config.data.val_fraction) == (5e-4, 30, 0.1)
    assert build_run_config(FAMILY, "tiny").train.lr == 2e-3  # a family without run_defaults keeps the loop's


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        (
            {"optimizer": {"lr": 1.0}},
            r"family 'gpt': run_defaults sets \['optimizer\.lr'\], which the run config does not have",
        ),
        ({"model": {"n_layer": 1}}, r"family 'gpt': run_defaults sets \['model\.n_layer'\]"),
        ({"train": {"lr": 1.0, "learning_rate": 1.0}}, r"run_defaults sets \['train\.learning_rate'\]"),
        ({"train": {"lr": -1.0}}, "train.lr must be > 0"),
    ],
)
def test_bad_run_defaults_are_refused_in_one_line(defaults, message):
    family = dataclasses.replace(FAMILY, run_defaults=lambda config: defaults)
    with pytest.raises(ValueError, match=message):
        build_run_config(family, "tiny")


def test_the_data_table_needs_no_family(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[model]\nfamily = "nosuch"\nn_layer = 2\n[data]\nval_fraction = 0.2\n')
    data = build_data_config(read_config_file(str(path)), ["data.paths=corpus.txt"])
    assert data == DataConfig(paths=("corpus.txt",), val_fraction=0.2)


@pytest.mark.parametrize(
    "overrides",
    [
        ["train.foo=1"],
        ["checkpoint.keep=0"],
        ["data.val_fraction=2"],
        ["model.family=bert"],
        ["x"],
        ["data.tokenizer=/no/such.json"],
        ["data.prepared=/no/such"],
    ],
)
def test_the_data_table_is_refused_as_a_run_config_is(overrides):
    with pytest.raises(ValueError) as run_error:
        build_run_config(FAMILY, "tiny", overrides=overrides)
    with pytest.raises(ValueError) as data_error:
        build_data_config(overrides=overrides)
    assert str(data_error.value) == str(run_error.value)
