"""Filling a (small, test-mounted) filesystem, for the disk-full tests."""

import contextlib
import shutil
from pathlib import Path


def fill_disk(directory: Path, leave_bytes: int = 0) -> None:
    """Write ``directory/filler`` until about ``leave_bytes`` are left on its filesystem."""
    with open(Path(directory) / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
        while (free := shutil.disk_usage(directory).free - leave_bytes) > 0:
            filler.write(b"\0" * min(2**20, free))
