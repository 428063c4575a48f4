"""Failures provoked on purpose under horovodrun -np 2: NaNs, a kill mid-checkpoint, hung ranks."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
from horovod_job import WORKERS, harness_train, logged_steps, rank_pid, read_metrics, run_job, start_training, wait_for

from harness.storage.checkpoint import list_checkpoints
from launch.horovodrun import horovodrun_command, rank_environment

TRAIN = ["--model", "tiny", "--steps", "12", "--no-progress", "--set", "checkpoint.every=5"]


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_a_nan_stops_the_run_naming_the_step_and_the_last_good_checkpoint(framework, tmp_path):
    args = ["nan", "7", "--", "train", "--framework", framework, "--run-dir", str(tmp_path), *TRAIN]
    job = run_job("faults.py", *args, expect_success=False)
    assert job.returncode != 0, job.report()
    expected = "Error: non-finite loss (nan) or gradient norm (nan) at step 7; the weights were not updated."
    assert expected in job.stderr[0], job.report()
    assert f"Last good checkpoint: {tmp_path / 'checkpoints' / 'step_5'}." in job.stderr[0], job.report()
    assert [step for step, _ in list_checkpoints(tmp_path)] == [5]


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_skip_nonfinite_skips_the_step_counts_it_and_trains_on(framework, tmp_path):
    args = ["nan", "7", "--", "train", "--framework", framework, "--run-dir", str(tmp_path), *TRAIN]
    run_job("faults.py", *args, "--set", "train.skip_nonfinite=true")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["skipped_steps"] == 1 and summary["steps"] == 12
    assert len(set(summary["weights_sha256_per_rank"])) == 1  # the skip left the replicas equal
    records = [r for r in read_metrics(tmp_path) if "loss" in r]
    assert [r["step"] for r in records if r["skipped"]] == [7]
    assert math.isnan(records[6]["loss"])
    assert all(math.isfinite(r["loss"]) for r in records if r["step"] != 7)
    assert records[-1]["loss"] < records[0]["loss"]


def test_sigkill_while_writing_a_checkpoint_loses_nothing_committed(tmp_path):
    run_dir, marker = tmp_path / "run", tmp_path / "writer.pid"
    args = ["slow-write", "10", str(marker), "--", "train", "--framework", "torch", "--run-dir", str(run_dir), *TRAIN]
    job = subprocess.Popen(
        horovodrun_command(2, [sys.executable, str(WORKERS / "faults.py"), *args]),
        env={**rank_environment(2), **os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for(job, marker.exists)
    os.kill(int(marker.read_text()), signal.SIGKILL)  # rank 0, halfway through writing step 10
    output = job.communicate(timeout=120)[0]
    assert job.returncode != 0, output[-4000:]
    leftovers = [p.name for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".step_10.tmp-")  # the half-written one
    assert [step for step, _ in list_checkpoints(run_dir)] == [5]

    resumed = harness_train("--framework", "torch", "--run-dir", str(run_dir), *TRAIN, "--resume")
    assert f"removed what an interrupted writer left: {leftovers[0]}" in resumed.stderr
    assert f"resuming from {run_dir / 'checkpoints' / 'step_5'} (step 5)" in resumed.stderr
    assert [step for step, _ in list_checkpoints(run_dir)] == [5, 10, 12]
    assert [p.name for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")] == []


def test_a_rank_stuck_in_python_fails_the_job_within_the_hang_timeout(tmp_path):
    args = ["stuck", "4", "--", "train", "--framework", "torch", "--run-dir", str(tmp_path), *TRAIN]
    began = time.monotonic()
    job = run_job("faults.py", *args, expect_success=False, hang_timeout=10, timeout=300)
    elapsed = time.monotonic() - began
    assert job.returncode != 0, job.report()
    # Both ranks' watchdogs started their clocks at step 3; whichever fires first ends the job.
    watchdog = "lost the job: it completed no step for 10 s (last: step 3); another rank stopped responding"
    assert any(f"Error: rank {rank} {watchdog}" in job.stderr[rank] for rank in (0, 1)), job.report()
    assert elapsed < 120, f"took {elapsed:.0f} s to notice a stuck rank with --hang-timeout 10"
    print(f"stuck rank, --hang-timeout 10: the whole job (start-up included) ended after {elapsed:.1f} s")


def test_a_frozen_rank_fails_the_job_within_the_hang_timeout(tmp_path):
    run_dir = tmp_path / "run"
    job = start_training("--framework", "tf", "--run-dir", str(run_dir), "--steps", "100000", "--hang-timeout", "10")
    wait_for(job, lambda: len(logged_steps(run_dir)) > 0)

    # A second job on the same run directory, while this one trains: refused, naming the holder (rank 0).
    second = harness_train("--framework", "tf", "--run-dir", str(run_dir), "--steps", "5", check=False)
    holder = rank_pid(run_dir, 0)
    assert second.returncode == 1 and second.stderr.strip().count("\n") == 0, second.stderr[-4000:]
    assert second.stderr.startswith(f"Error: {run_dir} is in use by another job (pid {holder} on "), second.stderr
    assert second.stderr.strip().endswith("wait for it to end, or choose another --run-dir")

    frozen = rank_pid(run_dir, 1)
    assert frozen is not None
    os.kill(frozen, signal.SIGSTOP)  # alive but silent: no heartbeat, no tensors
    stopped_at = time.monotonic()
    try:
        out, err = job.communicate(timeout=180)
    finally:
        if rank_pid(run_dir, 1) == frozen:
            os.kill(frozen, signal.SIGKILL)
    waited = time.monotonic() - stopped_at
    assert job.returncode == 1, err[-4000:]
    # Rank 0 notices first through Gloo's receive timeout or through the watchdog; both say why,
    # and the last line names the rank it lost.
    assert (
        "Error: rank 0 lost the job: another rank exited or stopped responding for 10 s" in out + err
        or "Error: rank 0 lost the job: it completed no step for 10 s" in out + err
    ), err[-4000:]
    assert err.strip().splitlines()[-1].startswith("Error: training failed: rank 1 on localhost was lost"), err[-4000:]
    assert waited < 60, f"the job noticed a frozen rank only after {waited:.0f} s (--hang-timeout 10)"
    print(f"frozen rank, --hang-timeout 10: the job ended {waited:.1f} s after SIGSTOP")


def test_a_full_disk_stops_the_job_naming_the_path_and_resume_continues(small_disk):
    run_dir = small_disk / "run"
    args = ["fill-disk", "8", str(small_disk), "--", "train", "--framework", "torch", "--run-dir", str(run_dir), *TRAIN]
    job = run_job("faults.py", *args, expect_success=False, timeout=300)
    assert job.returncode != 0, job.report()
    step_5 = run_dir / "checkpoints" / "step_5"
    line = next((x for x in job.stderr[0].splitlines() if x.startswith("Error: no space left")), "")
    assert line.startswith(f"Error: no space left on device writing {run_dir / 'checkpoints' / '.step_10.tmp-'}")
    assert line.endswith(f"the last complete checkpoint is {step_5}: free some space, then --resume"), job.report()
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step_5"]  # the failed one removed
    assert [r["step"] for r in read_metrics(run_dir)] == list(range(1, 11))  # every line whole

    (small_disk / "filler").unlink()
    resumed = harness_train("--framework", "torch", "--run-dir", str(run_dir), *TRAIN, "--resume")
    assert f"resuming from {step_5} (step 5)" in resumed.stderr
    assert [step for step, _ in list_checkpoints(run_dir)] == [5, 10, 12]
