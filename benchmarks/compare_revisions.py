"""Time `harness train` at another git revision and at this checkout, side by side, interleaved.

usage: compare_revisions.py REV [ROUNDS] [STEPS]

For each round and framework, the revision's loop and this checkout's run back to back (2 ranks,
default model, 16 windows per rank, one thread per rank, no evaluation or checkpoints), so
drift in the machine's load falls on both. Prints, per round and framework, the median step
time of each (warm-up steps dropped) and their ratio (this checkout ÷ REV).
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 5


def median_step_seconds(checkout: Path, framework: str, steps: int) -> float:
    with tempfile.TemporaryDirectory(prefix="compare-") as run_dir:
        cmd = [sys.executable, "-m", "launch.cli", "train", "--framework", framework, "--np", "2"]
        cmd += ["--model", "default", "--steps", str(steps), "--run-dir", run_dir, "--no-progress"]
        for item in ("eval.every=0", "checkpoint.every=0", "train.batch_size=16"):
            cmd += ["--set", item]
        env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1"}
        proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise SystemExit(f"{checkout}: {' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        records = [json.loads(line) for line in Path(run_dir, "metrics.jsonl").read_text().splitlines()]
    tokens_per_step = 16 * 2 * 128
    step_seconds = [tokens_per_step / r["tokens_per_s"] for r in records if "tokens_per_s" in r]
    return statistics.median(step_seconds[WARMUP:])


def main(rev: str, rounds: int, steps: int) -> None:
    with tempfile.TemporaryDirectory(prefix="revision-") as scratch:
        other = Path(scratch) / "checkout"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(other), rev], check=True)
        try:
            for round_ in range(1, rounds + 1):
                for framework in ("torch", "tf"):
                    before = median_step_seconds(other, framework, steps + WARMUP)
                    after = median_step_seconds(ROOT, framework, steps + WARMUP)
                    print(
                        f"round {round_} {framework} np=2: {rev[:7]} {before:.4f} s, this checkout {after:.4f} s, "
                        f"ratio {after / before:.3f}",
                        flush=True,
                    )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)], check=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2, int(sys.argv[3]) if len(sys.argv) > 3 else 20)
