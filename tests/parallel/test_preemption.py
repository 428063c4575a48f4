"""Preemption and the bounded elastic wait, for real: SIGTERM to a running 2-rank job (to the
launcher, or to every rank as Slurm does), and an elastic job left with fewer than --min-np ranks."""

import json
import math
import os
import signal
import time

import pytest
from horovod_job import (
    UNINTERRUPTED,
    UNINTERRUPTED_STEPS,
    harness_train,
    job_pids,
    logged_steps,
    rank_pid,
    read_metrics,
    start_training,
    train_loss_by_step,
    wait_for,
)

from harness.storage.checkpoint import list_checkpoints
from launch.horovodrun import mpi_built

GRACE_SECONDS = 30  # what Kubernetes gives a pod by default, and a usual Slurm KillWait
NEEDS_MPI = pytest.mark.skipif(not mpi_built(), reason="Horovod here was built without MPI (no mpicxx)")


@pytest.mark.parametrize(
    "framework, target, controller",
    [
        ("torch", "the launcher", "gloo"),
        ("tf", "every rank", "gloo"),
        pytest.param("torch", "every process", "mpi", marks=NEEDS_MPI),
        pytest.param("tf", "the launcher", "mpi", marks=NEEDS_MPI),
    ],
)
def test_sigterm_stops_every_rank_after_one_step_and_resume_continues_exactly(
    framework, target, controller, uninterrupted, tmp_path
):
    whole, stopped = uninterrupted(framework), tmp_path / "stopped"
    job = start_training(
        "--framework", framework, "--run-dir", str(stopped), "--controller", controller, *UNINTERRUPTED
    )
    wait_for(job, lambda: len(logged_steps(stopped)) >= 20)
    ranks = [rank_pid(stopped, 0), rank_pid(stopped, 1)] if target == "every rank" else []
    everything = job_pids(stopped) if target == "every process" else []  # with mpirun, as Slurm does
    for pid in {job.pid, *ranks, *everything}:  # Slurm signals every process of the job step at once
        os.kill(pid, signal.SIGTERM)
    signalled = time.monotonic()
    out, err = job.communicate(timeout=120)
    seconds = time.monotonic() - signalled
    assert job.returncode == 143, err[-4000:]
    assert seconds < GRACE_SECONDS, f"took {seconds:.1f} s to stop"

    step, checkpoint = list_checkpoints(stopped)[-1]
    assert 20 < step < UNINTERRUPTED_STEPS and json.loads((checkpoint / "trainer.json").read_text())["stopped"]
    assert err.strip().endswith(
        f"stopped by SIGTERM after step {step}; checkpoint {checkpoint}: --resume continues from it"
    ), err[-4000:]
    assert max(train_loss_by_step(read_metrics(stopped))) == step  # no rank went a step further

    resume = ["--controller", controller, *UNINTERRUPTED, "--resume"]
    harness_train("--framework", framework, "--run-dir", str(stopped), *resume)
    expected, resumed = train_loss_by_step(read_metrics(whole)), train_loss_by_step(read_metrics(stopped))
    assert sorted(resumed) == list(range(1, UNINTERRUPTED_STEPS + 1))
    worst = max(abs(resumed[s] - expected[s]) / abs(expected[s]) for s in expected)
    assert worst <= 1e-6 and not math.isnan(worst)
    print(
        f"{framework} on {controller}, SIGTERM to {target}: stopped after step {step} in {seconds:.1f} s; "
        f"resumed run vs uninterrupted: max relative loss difference {worst:.2e} over {UNINTERRUPTED_STEPS} steps"
    )


def test_an_elastic_job_left_below_min_np_ends_after_the_wait_with_one_line(tmp_path):
    run_dir = tmp_path / "run"
    job = start_training(
        "--framework", "torch", "--run-dir", str(run_dir), "--steps", "100000",
        "--set", "eval.every=0", "--set", "checkpoint.every=1000",
        "--elastic", "--min-np", "2", "--max-np", "2", "--commit-every", "5",
        "--hosts", "localhost:1,127.0.0.1:1", "--network-interface", "lo", "--hang-timeout", "15",
    )  # fmt: skip
    wait_for(job, lambda: len(logged_steps(run_dir)) >= 12)
    os.kill(rank_pid(run_dir, 1), signal.SIGKILL)
    lost = time.monotonic()
    out, err = job.communicate(timeout=300)
    seconds = time.monotonic() - lost
    assert job.returncode == 1, err[-4000:]
    step, checkpoint = list_checkpoints(run_dir)[-1]  # rank 0 saved its last commit before waiting
    assert step >= 10 and step % 5 == 0
    line = err.strip().splitlines()[-1]
    assert line.startswith("Error: elastic job ended: 1 rank(s) left, fewer than --min-np 2; waited 1"), err[-4000:]
    assert line.endswith(f"s for more hosts (--elastic-timeout); --resume continues from {checkpoint} (step {step})")
    assert seconds < 15 + 30, f"the job ended {seconds:.0f} s after losing a rank (elastic wait 15 s)"
    assert not (run_dir / ".elastic-waiting").exists()
    print(f"elastic below --min-np, --hang-timeout 15: ended {seconds:.1f} s after the loss: {line}")
