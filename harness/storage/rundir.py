"""The run directory: one job at a time, and a full disk said plainly.

One job per run directory: a lock that names its holder and that a killed job cannot leave stuck.

The process that writes a run directory (rank 0) holds ``RUN_DIR/.lock`` with ``flock`` while it
trains and removes it when done. The kernel releases a flock when its process exits in any way,
SIGKILL included, so a dead holder's leftover file blocks nobody: the next job locks and reuses
it. The file says who holds it (host, pid, since when), for the message a second job gets.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".lock"
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)  # the disk, or the user's quota, is full


class RunDirInUse(ValueError):
    """Another live job holds the run directory."""


def _refusal(run_dir: Path, fd: int) -> RunDirInUse:
    try:
        holder = json.loads(os.pread(fd, 4096, 0))
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["since"]))
        who = f"pid {holder['pid']} on {holder['host']}, since {since}"
    except (ValueError, KeyError, TypeError):
        who = "a job that has not yet written its name"
    return RunDirInUse(f"{run_dir} is in use by another job ({who}); wait for it to end, or choose another --run-dir")


def check_run_dir_free(run_dir: Path) -> None:
    """Raise ``RunDirInUse`` if a live job holds ``run_dir``; writes nothing."""
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _refusal(run_dir, fd) from None
    finally:
        os.close(fd)


def wait_for_run_dir(run_dir: Path, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the job holding ``run_dir`` to end; whether it did."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check_run_dir_free(run_dir)
            return True
        except RunDirInUse:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)


@contextlib.contextmanager
def hold_run_dir(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` for the duration of the block; ``RunDirInUse`` if a live job holds it."""
    path = Path(run_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            refusal = _refusal(run_dir, fd)
            os.close(fd)
            raise refusal from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        os.close(fd)  # the holder removed this file between our open and our lock: open the new one
    try:
        record = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # while still locked, so no other job can hold the file being removed
        os.close(fd)


class DiskFullError(RuntimeError):
    """A write into the run directory found no space; what it was writing has been removed."""

    def __init__(self, path: Path, free_bytes: int | None, last_checkpoint: Path | None = None):
        super().__init__(path, free_bytes, last_checkpoint)
        self.path, self.free_bytes, self.last_checkpoint = Path(path), free_bytes, last_checkpoint

    def __str__(self) -> str:
        free = "unknown" if self.free_bytes is None else f"{self.free_bytes / 2**20:.1f} MiB"
        return (
            f"no space left on device writing {self.path} ({free} free there); the last complete checkpoint "
            f"is {self.last_checkpoint or 'none'}: free some space, then --resume"
        )


def free_bytes(path: Path) -> int | None:
    """Free space on the filesystem holding ``path`` (or its nearest existing parent)."""
    for candidate in (Path(path), *Path(path).parents):
        with contextlib.suppress(OSError):
            return shutil.disk_usage(candidate).free
    return None


@contextlib.contextmanager
def disk_full_as_error(path: Path, last_checkpoint: Path | None = None) -> Iterator[None]:
    """Turn a write's "no space left" (or quota) ``OSError`` into a ``DiskFullError`` naming ``path``."""
    try:
        yield
    except OSError as err:
        if err.errno not in NO_SPACE:
            raise
        raise DiskFullError(Path(err.filename or path), free_bytes(path), last_checkpoint) from err
