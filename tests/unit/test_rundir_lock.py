"""One job per run directory: a second job is refused naming the holder; a killed holder blocks nobody."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from harness.storage.rundir import LOCK_FILE, RunDirInUse, check_run_dir_free, hold_run_dir
from launch.cli import cli

HOLDER = """
import sys, time
from harness.storage.rundir import hold_run_dir
with hold_run_dir(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding tmp_path/run, as a running job's rank 0 does."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_held_run_dir_is_refused_naming_the_holder(holder, tmp_path):
    run_dir = tmp_path / "run"
    expected = rf"{run_dir} is in use by another job \(pid {holder.pid} on {socket.gethostname()}, since .*\)"
    with pytest.raises(RunDirInUse, match=expected):
        check_run_dir_free(run_dir)
    with pytest.raises(RunDirInUse, match=expected), hold_run_dir(run_dir):
        pass
    assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] == holder.pid  # the refusal changed nothing


def test_harness_train_on_a_held_run_dir_is_one_error_line_and_writes_nothing(holder, tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", "--framework", "torch", "--model", "tiny", "--steps", "2", "--run-dir", str(run_dir)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {run_dir} is in use by another job (pid {holder.pid} on {socket.gethostname()}, "
        f"since {result.output.split('since ')[1].split(')')[0]}); wait for it to end, or choose another --run-dir"
    ]
    assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILE]


def test_a_killed_holder_blocks_nobody_and_a_released_lock_leaves_no_file(holder, tmp_path):
    run_dir = tmp_path / "run"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (run_dir / LOCK_FILE).exists()  # SIGKILL left the file, but not the lock
    check_run_dir_free(run_dir)
    with hold_run_dir(run_dir):
        assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (run_dir / LOCK_FILE).exists()
