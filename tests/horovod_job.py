"""Run a worker script under ``horovodrun -np N -H localhost:N --gloo`` and read each rank's output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.storage.checkpoint import list_checkpoints
from launch.horovodrun import DEFAULT_HANG_TIMEOUT, RANK_LINE, run_horovodrun

WORKERS = Path(__file__).resolve().parent / "parallel" / "workers"
# The training the resume and preemption tests interrupt and compare with an uninterrupted run of it
# (one per framework, trained once: tests/parallel/conftest.py): evaluated and saved every 50 steps,
# with dropout on, so a resumed run must redraw the masks it would have drawn.
UNINTERRUPTED_STEPS = 200
UNINTERRUPTED = ["--steps", str(UNINTERRUPTED_STEPS), "--set", "model.dropout=0.1"]
UNINTERRUPTED += ["--set", "eval.every=50", "--set", "checkpoint.every=50", "--set", "checkpoint.keep=4"]


@dataclass
class HorovodJob:
    returncode: int
    launcher_output: str
    stdout: list[str]  # per rank
    stderr: list[str]  # per rank

    def report(self) -> str:
        parts = [f"horovodrun exited with {self.returncode}"]
        for rank, (out, err) in enumerate(zip(self.stdout, self.stderr, strict=True)):
            parts.append(f"----- rank {rank} stderr -----\n{err.strip() or '(empty)'}")
            parts.append(f"----- rank {rank} stdout -----\n{out.strip() or '(empty)'}")
        parts.append(f"----- launcher (tail) -----\n{self.launcher_output.strip()[-4000:]}")
        return "\n".join(parts)

    def results(self) -> list[dict]:
        """The last JSON object each rank printed on stdout."""
        results = []
        for rank, out in enumerate(self.stdout):
            lines = [line for line in out.splitlines() if line.startswith("{")]
            if not lines:
                pytest.fail(f"rank {rank} printed no JSON result\n{self.report()}")
            results.append(json.loads(lines[-1]))
        return results


def split_by_rank(output: str, np: int) -> tuple[list[str], list[str]]:
    """horovodrun prefixes every forwarded line with ``[rank]<stdout>:`` or ``[rank]<stderr>:``."""
    streams = {"stdout": [[] for _ in range(np)], "stderr": [[] for _ in range(np)]}
    for match in RANK_LINE.finditer(output):
        rank, stream, text = int(match["rank"]), match["stream"], match["text"]
        if rank < np:
            streams[stream][rank].append(text)
    return (["\n".join(lines) for lines in streams["stdout"]], ["\n".join(lines) for lines in streams["stderr"]])


def run_job(
    worker: str,
    *args: str,
    np: int = 2,
    timeout: float = 600,
    expect_success: bool = True,
    hang_timeout: int = DEFAULT_HANG_TIMEOUT,
) -> HorovodJob:
    """Launch ``tests/parallel/workers/<worker>`` on ``np`` local ranks over Gloo.

    With ``expect_success`` a non-zero exit fails the test with every worker's stderr.
    """
    program = [sys.executable, str(WORKERS / worker), *args]
    proc = run_horovodrun(np, program, capture=True, timeout=timeout, hang_timeout=hang_timeout)
    output = proc.stdout + proc.stderr
    stdout, stderr = split_by_rank(output, np)
    job = HorovodJob(returncode=proc.returncode, launcher_output=output, stdout=stdout, stderr=stderr)
    if expect_success and job.returncode != 0:
        pytest.fail(job.report(), pytrace=False)
    return job


def harness_cli(
    *args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess:
    """``harness ARGS`` in a subprocess; with ``check`` a non-zero exit fails the test with its output."""
    cmd = [sys.executable, "-m", "launch.cli", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def harness_train(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``harness train --np 2 --model tiny`` (override either by passing it again) in a subprocess."""
    train = ["train", "--np", "2", "--model", "tiny", "--no-progress", *args]
    return harness_cli(*train, check=check, env=env, timeout=600)


def start_training(*args: str) -> subprocess.Popen:
    """``harness train --np 2 --model tiny ARGS`` started in the background, its output piped."""
    cmd = [sys.executable, "-m", "launch.cli", "train", "--np", "2", "--model", "tiny", "--no-progress", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(job: subprocess.Popen, ready: Callable[[], bool], timeout: float = 300) -> None:
    """Poll ``ready`` until it holds; fail with the job's output if the job ends or ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if job.poll() is not None:
            why = f"exited with {job.returncode}"
        elif time.monotonic() > deadline:
            why = f"was still waiting after {timeout:.0f} s"
            job.kill()
        else:
            time.sleep(0.05)
            continue
        out, err = job.communicate()
        pytest.fail(f"the job {why}\n{(out or '')[-3000:]}\n{(err or '')[-6000:]}")


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def logged_steps(run_dir: Path) -> list[dict]:
    """The training steps a running job has logged so far (none before its log exists; a line being
    written right now is not counted)."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            break
    return [r for r in records if "loss" in r]


def train_loss_by_step(records: list[dict]) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in records if "loss" in r}


def copy_up_to(source: Path, run_dir: Path, step: int) -> None:
    """A copy of the run ``source`` in ``run_dir`` as if it had crashed after its checkpoint of ``step``."""
    shutil.copytree(source, run_dir)
    for saved, path in list_checkpoints(run_dir):
        if saved > step:
            shutil.rmtree(path)
    assert list_checkpoints(run_dir)[-1][0] == step


def job_pids(run_dir: Path) -> list[int]:
    """Every process of the job that trains into ``run_dir`` (its command line names it): the
    launcher, horovodrun (under MPI its shell and mpirun) and the ranks, as Slurm signals a job step."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(run_dir).encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def rank_pid(run_dir: Path, rank: int) -> int | None:
    """The pid of the process running ``rank`` of the job that trains into ``run_dir``."""
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        ranks = (f"HOROVOD_RANK={rank}".encode(), f"OMPI_COMM_WORLD_RANK={rank}".encode())  # Gloo, MPI
        if str(run_dir).encode() in cmdline and any(r in environ for r in ranks):
            return int(entry.name)
    return None


TRANSFORMERS_TF = Path(sys.prefix) / "transformers-tf"  # make setup's transformers 4.57, beside the environment


def transformers_example_env(example: Path, root: Path) -> dict[str, str]:
    """This environment with an example's modules (copied into ``root``, as a user's own code would
    sit) and transformers 4.57 on PYTHONPATH, as the examples' READMEs say."""
    if not (TRANSFORMERS_TF / "transformers").is_dir():
        pytest.fail(f"transformers 4.57 is not installed in {TRANSFORMERS_TF}: run `make setup`")
    for source in example.glob("*.py"):
        shutil.copy(source, root)
    path = os.pathsep.join([str(root), str(TRANSFORMERS_TF), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}
