"""Bad input to `harness train` / `harness generate`: one error line, exit 1, nothing touched.
(Values that the option's type refuses, exit 2, are walked in test_cli_option_walk.py.)"""

import hashlib
import subprocess
from pathlib import Path

import pytest
from checkpoints import save
from click.testing import CliRunner

from launch.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


@pytest.fixture
def run_dir(tmp_path):
    """A run directory holding two real checkpoints of the tiny model."""
    for step in (10, 20):
        save(tmp_path, step)
    return tmp_path


BASE = ["train", "--np", "2", "--model", "tiny"]
CASES = {
    "unknown framework": (["--framework", "jax"], "unknown framework 'jax'; expected one of ['tf', 'torch']"),
    "missing data": (
        ["--framework", "torch", "--set", "data.paths=/no/such.txt"],
        "data file '/no/such.txt' does not exist",
    ),
    "unknown key": (["--framework", "tf", "--set", "train.nope=1"], "unknown config key 'train.nope'"),
    "wrong type": (
        ["--framework", "tf", "--set", "train.batch_size=big"],
        "config key train.batch_size expects an integer",
    ),
    "np over slots": (
        ["--framework", "torch", "--hosts", "localhost:1", "--resume"],
        "--np 2 is larger than the 1 slots",
    ),
    "other model": (
        ["--framework", "torch", "--set", "model.n_layer=3", "--resume"],
        "different model config (differs in n_layer)",
    ),
    "fresh run over checkpoints": (["--framework", "torch"], "already holds checkpoints; pass --resume"),
    "nothing left to train": (["--framework", "tf", "--steps", "20", "--resume"], "is already at step 20 of 20"),
    "unknown precision": (
        ["--framework", "tf", "--set", "train.precision=fp8"],
        "train.precision must be one of ['fp32', 'bf16', 'fp16'], received 'fp8'",
    ),
    "elastic without hosts": (
        ["--framework", "torch", "--elastic", "--resume"],
        "--elastic needs --hosts or --hostfile",
    ),
    "elastic bounds": (
        ["--framework", "torch", "--elastic", "--min-np", "3", "--hosts", "a:1,b:1", "--resume"],
        "elastic jobs need 1 <= --min-np <= --np <= --max-np, got 3, 2, 2",
    ),
    "unknown family": (["--framework", "torch", "--family", "nosuch"], "unknown model family 'nosuch'"),
    "unimportable hook": (
        ["--framework", "torch", "--hook", "no_such_module:hook", "--resume"],
        "--hook no_such_module:hook: cannot import module 'no_such_module'",
    ),
    "not a hook": (
        ["--framework", "torch", "--hook", "harness.families.gpt:PRESETS", "--resume"],
        "--hook harness.families.gpt:PRESETS made a dict, expected a harness.Hook",
    ),
    "label smoothing": (
        ["--framework", "tf", "--set", "train.label_smoothing=1.5"],
        "train.label_smoothing must be in [0, 1), received 1.5",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_train_input_is_one_line_and_leaves_checkpoints_intact(case, run_dir):
    args, message = CASES[case]
    before = tree_digest(run_dir)
    result = invoke(*BASE, "--run-dir", str(run_dir), *args)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [f"Error: {result.output.strip().removeprefix('Error: ')}"]
    assert message in result.output
    assert tree_digest(run_dir) == before


def test_no_valid_checkpoint_is_refused_and_left_as_it_was(run_dir):
    for step in (10, 20):
        tensors = run_dir / "checkpoints" / f"step_{step}" / "optimizer.safetensors"
        tensors.write_bytes(tensors.read_bytes()[:100])
    before = tree_digest(run_dir)
    result = invoke(*BASE, "--run-dir", str(run_dir), "--framework", "tf", "--resume")
    assert result.exit_code == 1
    assert "no valid checkpoint in" in result.output
    assert "step_20 is corrupt: optimizer.safetensors is missing, truncated or modified" in result.output
    assert "step_10 is corrupt: optimizer.safetensors is missing, truncated or modified" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert tree_digest(run_dir) == before


def test_generate_errors(tmp_path):
    result = invoke("generate", "--run-dir", str(tmp_path), "--framework", "torch", "--prompt", "hi")
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: --run-dir {tmp_path}: no checkpoint in {tmp_path / 'checkpoints'}"
    result = invoke("generate", "--run-dir", str(tmp_path), "--framework", "mxnet", "--prompt", "hi")
    assert result.exit_code == 1 and "unknown framework 'mxnet'" in result.output


def test_the_installed_command_exits_non_zero_with_one_line(tmp_path):
    harness = Path(__import__("sys").executable).parent / "harness"
    proc = subprocess.run(
        [harness, "train", "--framework", "jax", "--run-dir", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["Error: unknown framework 'jax'; expected one of ['tf', 'torch']"]
    assert proc.stdout == ""
