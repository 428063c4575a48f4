"""What reads a finished run's newest checkpoint — `harness generate`, `harness export`, --init-from —
when that checkpoint is damaged (the newest valid one is used and the damaged one named), when all are,
and the BERT-style family's refusals around the Hugging Face format it does not have."""

import dataclasses

import pytest
from checkpoints import CONFIG, save
from click.testing import CliRunner
from transformers import GPT2Config, GPT2LMHeadModel

from harness.contract.state import zero_optimizer_state
from harness.data.tokenizer import ByteTokenizer
from harness.families import bert, gpt
from harness.runner.resume import initial_state
from harness.storage.checkpoint import save_checkpoint
from launch.cli import cli


def gpt_run(run_dir, steps=(5, 10), damage_newest=True):
    """A gpt run directory with a checkpoint (seed = its step) at each of ``steps``; the newest one's
    weights cut in half, as a full disk or a crash mid-copy leaves them."""
    for step in steps:
        save(run_dir, step, keep=len(steps))
    newest = run_dir / "checkpoints" / f"step_{max(steps)}" / "model.safetensors"
    if damage_newest:
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    return run_dir


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def skipped_line(run_dir, step):
    return f"skipped a checkpoint: checkpoint {run_dir / 'checkpoints' / f'step_{step}'} is corrupt: "


def test_generate_samples_from_the_newest_valid_checkpoint_and_names_the_damaged_one(tmp_path):
    damaged, intact = gpt_run(tmp_path / "damaged"), gpt_run(tmp_path / "intact", steps=(5,), damage_newest=False)
    args = ["--framework", "torch", "--prompt", "def ", "--max-new-tokens", "12", "--temperature", "0"]
    result = invoke("generate", "--run-dir", str(damaged), *args)
    reference = invoke("generate", "--run-dir", str(intact), *args)
    assert result.exit_code == 0 == reference.exit_code, result.output
    assert result.stderr.startswith(skipped_line(damaged, 10)), result.stderr
    assert result.stdout == reference.stdout and result.stdout.startswith("def ")  # step 5's weights


def test_export_writes_the_newest_valid_checkpoint_and_names_the_damaged_one(tmp_path):
    run_dir = gpt_run(tmp_path / "run")
    result = invoke("export", "--run-dir", str(run_dir), "--out", str(tmp_path / "hf"))
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(skipped_line(run_dir, 10)), result.stderr
    assert result.stdout.startswith(f"exported {run_dir / 'checkpoints' / 'step_5'} (step 5) as ")
    assert (tmp_path / "hf" / "config.json").is_file()


def test_init_from_takes_the_newest_valid_checkpoint_and_names_the_damaged_one(tmp_path, capsys):
    run_dir = gpt_run(tmp_path / "run")
    fresh = gpt.init_state(CONFIG.model, 99)
    state = initial_state(str(run_dir), gpt.FAMILY, fresh, ByteTokenizer())
    step_5 = gpt.init_state(CONFIG.model, 5)
    assert all((state[name] == step_5[name]).all() for name in fresh)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(skipped_line(run_dir, 10)) and len(err) == 2, err
    assert err[1] == f"initialised {len(fresh)} tensors from {run_dir / 'checkpoints' / 'step_5'} (step 5); fresh: none"


@pytest.mark.parametrize("command", ["generate", "export", "train"])
def test_a_run_whose_every_checkpoint_is_damaged_is_one_error_line(command, tmp_path):
    run_dir = gpt_run(tmp_path / "run", steps=(5,))
    out = tmp_path / "out"
    args = {
        "generate": ["generate", "--run-dir", str(run_dir), "--framework", "torch", "--prompt", "a"],
        "export": ["export", "--run-dir", str(run_dir), "--out", str(out)],
        "train": ["train", "--framework", "torch", "--run-dir", str(out), "--init-from", str(run_dir)],
    }[command]
    result = invoke(*args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    option = "--init-from" if command == "train" else "--run-dir"
    assert lines[0].startswith(f"Error: {option} {run_dir}: no valid checkpoint in {run_dir / 'checkpoints'}: ")
    assert "step_5 is corrupt: " in lines[0]
    assert not out.exists()


def bert_run(run_dir):
    config = bert.FAMILY.preset("tiny")
    record = {"family": "bert", "config": {"model": dataclasses.asdict(config)}}
    state = bert.init_state(config, 0)
    save_checkpoint(run_dir, 3, state, zero_optimizer_state(bert.state_shapes(config)), record, keep=1)
    return run_dir


def test_a_bert_run_has_no_hugging_face_format_to_export(tmp_path):
    result = invoke("export", "--run-dir", str(bert_run(tmp_path / "run")), "--out", str(tmp_path / "hf"))
    assert result.exit_code == 1
    assert result.output.strip() == "Error: family 'bert' has no format 'hf'; it has none"
    assert not (tmp_path / "hf").exists()


def test_a_bert_run_cannot_start_from_a_hugging_face_gpt2(tmp_path):
    hf = tmp_path / "hf"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, n_positions=8, vocab_size=256)).save_pretrained(hf)
    run_dir = tmp_path / "run"
    args = ["--family", "bert", "--framework", "torch", "--run-dir", str(run_dir), "--init-from", str(hf)]
    result = invoke("train", *args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: --init-from {hf} is a Hugging Face GPT-2 directory: it starts family 'gpt', not 'bert'"
    ]
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "Error: nothing to translate: give --source TEXT or --input FILE"),
        (["--source", "one", "--source", " "], "Error: --source ' ' is empty: every source needs text"),
        (["--source", "one"], "Error: model family 'gpt' is not a sequence-to-sequence model: it cannot translate"),
    ],
)
def test_translate_refuses_no_source_an_empty_one_and_a_language_model_in_one_line(tmp_path, extra, message):
    run_dir = gpt_run(tmp_path / "run", damage_newest=False)
    result = invoke("translate", "--run-dir", str(run_dir), "--framework", "torch", *extra)
    assert result.exit_code == 1 and result.output.startswith(message), result.output
    assert len(result.output.strip().splitlines()) == 1
