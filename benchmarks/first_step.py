"""Time to the first step of `harness train`, phase by phase, and of the peers, whole process.

usage: first_step.py FRAMEWORK [RUNS] [MODEL]      (default 2 runs, model tiny)

Runs `harness train --framework FRAMEWORK --np 2 --model MODEL --steps 1 --no-progress --set
eval.every=0` RUNS times with a hook (this file's ``Clock``) that stamps, on each rank, the wall
clock and the peak RSS so far when the rank's process was created, when the CLI had loaded its
config (the hook is made), when training starts (framework, Horovod, model, data and the
broadcast done), after the first step and at the end of training (after the final evaluation and
checkpoint); the launcher's end and its largest process's peak RSS are measured here. Then the
peer (torchrun + benchmarks/ddp_torch.py, or benchmarks/mwms_tf.py) for one step, whole process.
Prints per run the phases (seconds from the launcher's start, the larger rank's peak RSS) and the
ratios to the peer.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import psutil

from harness.loop.trainer import Hook
from launch.bench import peer_command, whole_process

ROOT = Path(__file__).resolve().parent.parent
STAMPS = "FIRST_STEP_STAMPS"  # the directory each rank writes its stamps into


def now() -> tuple[float, float]:
    """The wall clock and this process's peak RSS so far (MiB)."""
    return time.time(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Clock(Hook):
    """Each rank's (wall clock, peak RSS) stamps, written to $FIRST_STEP_STAMPS/rank-PID.json at the end."""

    def __init__(self) -> None:
        self.stamps = {"process created": (psutil.Process().create_time(), 0.0), "config loaded": now()}

    def on_train_start(self, trainer, position) -> None:
        self.stamps["training starts"] = now()

    def after_step(self, report, position) -> None:
        self.stamps.setdefault("first step done", now())

    def on_train_end(self) -> None:
        self.stamps["training ends"] = now()
        Path(os.environ[STAMPS], f"rank-{os.getpid()}.json").write_text(json.dumps(self.stamps))


def harness_phases(framework: str, model: str) -> dict[str, float]:
    harness = str(Path(sys.executable).parent / "harness")
    with tempfile.TemporaryDirectory() as stamps, tempfile.TemporaryDirectory() as run_dir:
        env = {**os.environ, STAMPS: stamps, "PYTHONPATH": f"{ROOT / 'benchmarks'}:{os.environ.get('PYTHONPATH', '')}"}
        cmd = [harness, "train", "--framework", framework, "--np", "2", "--model", model, "--steps", "1"]
        cmd += ["--no-progress", "--set", "eval.every=0", "--set", "train.batch_size=16", "--run-dir", run_dir]
        cmd += ["--hook", "first_step:Clock"]
        began = time.time()
        whole = whole_process(cmd, env)
        ranks = [json.loads(p.read_text()) for p in Path(stamps).glob("rank-*.json")]
    # The later rank's time and the larger rank's peak RSS at each stamp.
    phases = {name: (max(r[name][0] for r in ranks) - began, max(r[name][1] for r in ranks)) for name in ranks[0]}
    return {**phases, "launcher exits": (whole["seconds"], whole["peak_mib"])}


def main(framework: str, runs: int, model: str) -> None:
    for run in range(1, runs + 1):
        phases = harness_phases(framework, model)
        line = ", ".join(f"{name} {at:.2f} s ({rss:.0f} MiB)" for name, (at, rss) in phases.items())
        peer = whole_process(peer_command(framework, 2, model, "gpt", 16, 1), dict(os.environ))
        seconds, peak = peer["seconds"], peer["peak_mib"]
        (whole, largest) = phases["launcher exits"]
        print(f"run {run} harness {framework}: {line}", flush=True)
        print(
            f"run {run} peer: {seconds:.2f} s ({peak:.0f} MiB); harness ÷ peer: time {whole / seconds:.2f}, "
            f"peak RSS {largest / peak:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2, sys.argv[3] if len(sys.argv) > 3 else "tiny")
