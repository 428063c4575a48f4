"""One rank of `harness train` with a fault injected through a hook: the failures the tests provoke.

usage: faults.py KIND AT [MARKER] -- HARNESS_TRAIN_ARGS...
  nan AT            rank 1's first parameter is all NaN during step AT (1-based), so its loss is NaN
  stuck AT          rank 1's main thread stops before step AT (its Horovod thread keeps running)
  slow-write AT M   rank 0 stops for good halfway through writing checkpoint AT, after writing
                    its own pid to the file M (so the test can SIGKILL it mid-write)
  fill-disk AT D    rank 0 fills the filesystem of directory D before step AT, leaving 128 KiB
                    (less than a tiny model's checkpoint, more than a few metrics lines)

The hook reaches the loop through `harness train --hook faults:FAULT` and reads KIND, AT and
MARKER from the environment this script sets, as a user's hook module would read its settings.
"""

import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from harness.loop.trainer import Hook

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the tests tree's helpers
from filesystems import fill_disk  # noqa: E402

KIND_VARIABLE, AT_VARIABLE, MARKER_VARIABLE = "FAULT_KIND", "FAULT_AT", "FAULT_MARKER"


class NaNWeights(Hook):
    """Rank 1 steps once with a NaN in its first parameter; then its weights are put back as they
    were (a non-finite step changes nothing, so the replicas stay equal)."""

    def __init__(self, at: int):
        self.at, self.saved = at, None

    def on_train_start(self, trainer, position) -> None:
        self.backend, self.rank = trainer.backend, trainer.dist.rank

    def before_step(self, step: int) -> None:
        if (step + 1, self.rank) == (self.at, 1):
            self.saved = self.backend.export_model_state()
            first = next(iter(self.saved))
            self.backend.import_model_state({**self.saved, first: np.full_like(self.saved[first], math.nan)})

    def after_step(self, report, position) -> None:
        if self.saved is not None:
            self.backend.import_model_state(self.saved)
            self.saved = None


class Stuck(Hook):
    def __init__(self, at: int):
        self.at = at

    def on_train_start(self, trainer, position) -> None:
        self.rank = trainer.dist.rank

    def before_step(self, step: int) -> None:
        if (step + 1, self.rank) == (self.at, 1):
            time.sleep(3600)


class SlowWrite(Hook):
    def __init__(self, at: int, marker: Path):
        self.at, self.marker = at, marker

    def on_checkpoint_file(self, path: Path) -> None:
        if path.parent.name.startswith(f".step_{self.at}.tmp") and path.name == "model.safetensors":
            self.marker.write_text(str(os.getpid()))
            time.sleep(3600)


class FillDisk(Hook):
    LEAVE_BYTES = 128 * 1024

    def __init__(self, at: int, directory: Path):
        self.at, self.directory = at, directory

    def on_train_start(self, trainer, position) -> None:
        self.rank = trainer.dist.rank

    def before_step(self, step: int) -> None:
        if (step + 1, self.rank) == (self.at, 0):
            fill_disk(self.directory, self.LEAVE_BYTES)


def fault() -> Hook:
    """The hook factory `--hook faults:fault` names."""
    kind, at = os.environ[KIND_VARIABLE], int(os.environ[AT_VARIABLE])
    if kind == "nan":
        return NaNWeights(at)
    if kind == "stuck":
        return Stuck(at)
    if kind == "slow-write":
        return SlowWrite(at, Path(os.environ[MARKER_VARIABLE]))
    if kind == "fill-disk":
        return FillDisk(at, Path(os.environ[MARKER_VARIABLE]))
    raise SystemExit(f"unknown fault {kind!r}")


if __name__ == "__main__":
    from launch.cli import main

    split = sys.argv.index("--")
    kind, at, extra = sys.argv[1], sys.argv[2], sys.argv[3:split]
    os.environ.update({KIND_VARIABLE: kind, AT_VARIABLE: at, MARKER_VARIABLE: extra[0] if extra else ""})
    sys.argv = ["harness", *sys.argv[split + 1 :], "--hook", "faults:fault"]
    main()
