"""Elastic training with a worker killed mid-run: the job finishes at size 1 from the last commit.

Two "hosts" on this machine (localhost and 127.0.0.1, one slot each): Horovod blacklists the host
of a dead worker, so a second name is what lets the survivor go on. Elastic Gloo on one machine
needs the interface named (--network-interface lo).
"""

import json
import os
import signal
import time

import pytest
from horovod_job import logged_steps, rank_pid, start_training, wait_for

STEPS, COMMIT_EVERY, KILL_AFTER = 60, 5, 12


# Elastic state is generic: the BERT-style family's masked-LM run rolls back and goes on the same way.
@pytest.mark.parametrize(("framework", "family"), [("torch", "gpt"), ("tf", "gpt"), ("torch", "bert")])
def test_killing_a_worker_loses_at_most_one_commit_interval(framework, family, tmp_path):
    run_dir = tmp_path / "run"
    job = start_training(
        "--framework", framework, "--family", family, "--run-dir", str(run_dir), "--steps", str(STEPS),
        "--set", "eval.every=0", "--elastic", "--min-np", "1", "--max-np", "2", "--commit-every", str(COMMIT_EVERY),
        "--hosts", "localhost:1,127.0.0.1:1", "--network-interface", "lo",
    )  # fmt: skip
    wait_for(job, lambda: len(logged_steps(run_dir)) >= KILL_AFTER)
    victim = rank_pid(run_dir, 1)
    assert victim is not None
    last_step_seen = logged_steps(run_dir)[-1]["step"]
    os.kill(victim, signal.SIGKILL)
    killed_at = time.time()
    out, err = job.communicate(timeout=300)
    assert job.returncode == 0, err[-6000:]

    records = logged_steps(run_dir)
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))  # rolled-back steps were not kept twice
    sizes = [r["world_size"] for r in records]
    committed = sizes.index(1)  # steps done at size 2 and kept: exactly the last commit
    assert committed % COMMIT_EVERY == 0 and set(sizes[committed:]) == {1}
    lost = last_step_seen - committed
    assert lost <= COMMIT_EVERY, f"rolled back from step {last_step_seen} to {committed}"
    losses = [r["loss"] for r in records]
    assert abs(losses[committed] - losses[committed - 1]) < 0.2  # continues from the committed weights
    assert losses[-1] < losses[committed - 1]
    assert {r["epoch"] for r in records} == {0}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 1 and summary["steps"] == STEPS
    recovery = records[committed]["time"] - killed_at
    print(
        f"{framework}: killed at step >= {last_step_seen}, resumed from commit {committed} at size 1, "
        f"first step after {recovery:.1f} s"
    )
