"""Selecting a model family: built in, by MODULE:ATTR, by an installed package's entry point; the
errors for bad ones; and a family's config through the TOML file and --set."""

import sys
import textwrap

import pytest

from harness.contract.family import load_family
from harness.families.gpt import FAMILY as GPT
from harness.runner.config import load_run_config

FAMILY_MODULE = """
import dataclasses

import numpy as np

from harness.contract.family import Family
from harness.data.causal_lm import CausalLMTask


@dataclasses.dataclass(frozen=True)
class BigramConfig:
    vocab_size: int = 256
    block_size: int = 8


FAMILY = Family(
    name="bigram",
    config_class=BigramConfig,
    presets={"tiny": BigramConfig()},
    state_shapes=lambda config: {"table.weight": (config.vocab_size, config.vocab_size)},
    init_state=lambda config, seed: {"table.weight": np.zeros((config.vocab_size,) * 2, np.float32)},
    task=lambda config: CausalLMTask(config.block_size),
    torch_model="bigram_torch:Bigram",
    tf_model="bigram_tf:Bigram",
)
NOT_A_FAMILY = 42
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A family module on sys.path, as PYTHONPATH would put it; forgotten again afterwards."""
    (tmp_path / "bigram_family.py").write_text(textwrap.dedent(FAMILY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("bigram_family", None)


def test_gpt_is_built_in_and_the_default():
    family, config = load_run_config("tiny")
    assert family.name == family.spec == "gpt" and config.model == GPT.preset("tiny")
    assert load_family("gpt").config_class is GPT.config_class


def test_a_family_from_the_users_module(user_module):
    family = load_family("bigram_family:FAMILY")
    assert family.name == "bigram" and family.spec == "bigram_family:FAMILY"
    assert family.decayed(family.preset("tiny")) == {"table.weight"}  # matrices decay by default


def test_an_installed_package_registers_a_family_by_name(user_module):
    dist_info = user_module / "bigram_pkg-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: bigram-pkg\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[harness.families]\nbigram = bigram_family:FAMILY\n")
    family = load_family("bigram")
    assert family.name == "bigram" and family.spec == "bigram"


def test_the_config_file_chooses_the_family_and_sets_its_keys(user_module, tmp_path):
    (tmp_path / "run.toml").write_text('[model]\nfamily = "bigram_family:FAMILY"\nblock_size = 16\n')
    family, config = load_run_config("tiny", str(tmp_path / "run.toml"), ["model.vocab_size=64"])
    assert family.name == "bigram" and (config.model.block_size, config.model.vocab_size) == (16, 64)
    # --family wins over the file's choice.
    family, _ = load_run_config("tiny", str(tmp_path / "run.toml"), family="gpt")
    assert family.name == "gpt"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuch", r"unknown model family 'nosuch'; expected one of \['bert', 'gpt'\] or MODULE:ATTR"),
        ("no_such_module:FAMILY", r"cannot import module 'no_such_module' .*is it on PYTHONPATH\?"),
        ("bigram_family:NOPE", "module 'bigram_family' has no attribute 'NOPE'"),
        ("bigram_family:NOT_A_FAMILY", "model family 'bigram_family:NOT_A_FAMILY' is a int, expected a"),
        (":FAMILY", "expected MODULE:ATTR, received ':FAMILY'"),
    ],
)
def test_bad_family_specs_say_what_was_received(user_module, spec, message):
    with pytest.raises(ValueError, match=message):
        load_family(spec)


def test_bad_presets_and_keys_name_the_family(user_module):
    with pytest.raises(ValueError, match=r"unknown bigram model preset 'default'; expected one of \['tiny'\]"):
        load_run_config("default", family="bigram_family:FAMILY")
    with pytest.raises(ValueError, match=r"unknown config key 'model.n_layer'; known keys in \[model\]: vocab_size"):
        load_run_config("tiny", overrides=["model.n_layer=2"], family="bigram_family:FAMILY")
    with pytest.raises(ValueError, match="the model family is chosen with --family"):
        load_run_config("tiny", overrides=["model.family=gpt"])
