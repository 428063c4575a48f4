"""The training loop under horovodrun -np 2, both frameworks: broadcast, sync, rank-0 I/O, resume."""

import json
import subprocess
import sys

import numpy as np
import pytest
from horovod_job import (
    UNINTERRUPTED,
    UNINTERRUPTED_STEPS,
    copy_up_to,
    harness_train,
    read_metrics,
    run_job,
    train_loss_by_step,
)

from harness.runner.config import load_run_config
from harness.storage.checkpoint import latest_checkpoint, list_checkpoints
from launch.horovodrun import CONTROLLERS, mpi_built, run_horovodrun

FRAMEWORKS = ["torch", "tf"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_replicas_agree_after_broadcast_and_training_and_only_rank_0_writes(framework, tmp_path):
    results = run_job("replicas.py", framework, str(tmp_path)).results()
    first = results[0]
    # Different seeds: different weights before the broadcast, identical after it.
    assert len(set(first["weights_before_broadcast"])) == 2
    assert len(set(first["weights_after_broadcast"])) == 1
    assert first["weights_after_broadcast"][0] == first["weights_before_broadcast"][0]  # rank 0's won
    # The same for AdamW's step and moments, which the worker made different on each rank.
    assert len(set(first["optimizer_before_broadcast"])) == 2
    assert len(set(first["optimizer_after_broadcast"])) == 1
    assert first["optimizer_after_broadcast"][0] == first["optimizer_before_broadcast"][0]
    summary = first["summary"]
    assert summary["steps"] == 20 and summary["world_size"] == 2
    assert len(summary["weights_sha256_per_rank"]) == 2
    assert len(set(summary["weights_sha256_per_rank"])) == 1
    assert results[1]["summary"] is None
    # Only rank 0 wrote: rank 1's run directory was never created.
    written = sorted(p.name for p in (tmp_path / "rank0").iterdir())
    assert written == ["checkpoints", "metrics.jsonl", "summary.json", "tb"]
    assert [step for step, _ in list_checkpoints(tmp_path / "rank0")] == [10, 20]
    assert not (tmp_path / "rank1").exists()


def val_loss_by_step(records):
    return {r["step"]: r["val_loss"] for r in records if "val_loss" in r}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_resume_continues_the_loss_sequence_and_validation_loss_falls(framework, uninterrupted, tmp_path):
    whole = uninterrupted(framework)
    records = read_metrics(whole)
    val = val_loss_by_step(records)
    assert list(val) == [50, 100, 150, 200]
    assert val[50] > val[100] > val[150] > val[200], val
    assert val[200] < np.log(256) - 1.0  # well below the untrained model's log(vocab)
    assert_tensorboard_holds(whole, records)

    # The rank-0 evaluation equals a single-process evaluation of the saved weights.
    sets = [value for option, value in zip(UNINTERRUPTED, UNINTERRUPTED[1:], strict=False) if option == "--set"]
    family, config = load_run_config("tiny", overrides=sets)
    checkpoint = latest_checkpoint(whole, family, config.model)
    assert checkpoint.step == UNINTERRUPTED_STEPS
    assert abs(single_process_val_loss(framework, checkpoint.path / "model.safetensors") - val[200]) <= 1e-5

    # A crash after step 150's checkpoint; the resumed run redraws the same batches and dropout masks.
    run_dir = tmp_path / "run"
    copy_up_to(whole, run_dir, 150)
    harness_train("--framework", framework, "--run-dir", str(run_dir), *UNINTERRUPTED, "--resume")
    resumed = read_metrics(run_dir)
    before, after = train_loss_by_step(records), train_loss_by_step(resumed)
    assert sorted(after) == list(range(1, UNINTERRUPTED_STEPS + 1))  # the metrics log holds each step once
    for step in range(151, UNINTERRUPTED_STEPS + 1):
        assert abs(after[step] - before[step]) <= 1e-6, (step, after[step], before[step])
    assert abs(val_loss_by_step(resumed)[200] - val[200]) <= 1e-6

    # Either framework samples from this checkpoint; greedy decoding gives the same text.
    samples = [generate(run_dir, fw) for fw in FRAMEWORKS]
    assert samples[0] == samples[1]
    assert samples[0].startswith("def ") and len(samples[0].encode()) >= len("def ") + 20


def assert_tensorboard_holds(run_dir, records) -> None:
    """RUN_DIR/tb, read back with TensorBoard's own reader, holds what metrics.jsonl holds."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    expected = {"train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s", "val/loss"}
    assert expected <= set(events.Tags()["scalars"])
    board = {e.step: e.value for e in events.Scalars("train/loss")}
    logged = train_loss_by_step(records)
    assert sorted(board) == sorted(logged)
    assert all(abs(board[step] - loss) <= 1e-6 * abs(loss) for step, loss in logged.items())  # float32 there
    assert {e.step: round(e.value, 4) for e in events.Scalars("val/loss")} == {
        step: round(loss, 4) for step, loss in val_loss_by_step(records).items()
    }


def generate(run_dir, framework) -> str:
    cmd = [sys.executable, "-m", "launch.cli", "generate", "--run-dir", str(run_dir), "--framework", framework]
    cmd += ["--prompt", "def ", "--max-new-tokens", "20", "--temperature", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.rstrip("\n")


def single_process_val_loss(framework, model_file) -> float:
    """The validation loss computed here, without Horovod, with the same framework's model."""
    # The framework is imported in a subprocess: this test process never loads TF and torch together.
    script = f"""
import sys, numpy as np
from harness.runner.config import load_run_config
from harness.contract.state import load_state
from harness.contract.frameworks import framework_module
family, config = load_run_config("tiny")
_, val = family.task(config.model).splits(config.data)
predict = framework_module("{framework}", "backend").make_predictor(family, config.model, load_state(sys.argv[1]))
losses = []
for start in range(0, len(val), 7):
    x, y = val.windows(np.arange(start, min(start + 7, len(val))))
    logits = predict(x).astype(np.float64)
    logz = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    losses.append(logz - np.take_along_axis(logits, y[..., None], -1)[..., 0])
print(float(np.concatenate(losses).mean()))
"""
    proc = subprocess.run([sys.executable, "-c", script, str(model_file)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return float(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_the_training_entry_runs_under_a_users_own_horovodrun(controller, tmp_path):
    """`horovodrun -np 2 --gloo|--mpi ... harness train` (no --np): each process runs as one rank of that job."""
    if controller == "mpi" and not mpi_built():
        pytest.skip("Horovod was built without MPI here (no mpicxx at `make setup`)")
    harness_cli = [sys.executable, "-m", "launch.cli", "train", "--framework", "torch", "--model", "tiny"]
    harness_cli += ["--steps", "6", "--run-dir", str(tmp_path / "run"), "--no-progress", "--no-tensorboard"]
    proc = run_horovodrun(2, harness_cli, capture=True, timeout=600, controller=controller)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6
    assert len(set(summary["weights_sha256_per_rank"])) == 1
    rank_0 = "[1,0]" if controller == "mpi" else "[0]"  # mpirun's tag, horovodrun's own
    assert f"{rank_0}<stdout>:torch x2: 6 steps" in proc.stdout
    assert not (tmp_path / "run" / "tb").exists()


def test_tf_trains_under_the_mpi_controller_like_under_gloo(tmp_path):
    """`harness train --controller mpi`: the same losses and weights as the same run on Gloo."""
    if not mpi_built():
        pytest.skip("Horovod was built without MPI here (no mpicxx at `make setup`)")
    summaries = {}
    for controller in CONTROLLERS:
        run_dir = tmp_path / controller
        harness_train("--framework", "tf", "--steps", "8", "--run-dir", str(run_dir), "--controller", controller)
        summaries[controller] = json.loads((run_dir / "summary.json").read_text())
        assert len(set(summaries[controller]["weights_sha256_per_rank"])) == 1
    gloo, mpi = summaries["gloo"], summaries["mpi"]
    assert mpi["world_size"] == 2 and mpi["steps"] == 8
    assert abs(mpi["final_loss"] - gloo["final_loss"]) <= 1e-5 * abs(gloo["final_loss"])
