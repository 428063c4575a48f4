"""Every rank's hang watchdog: a rank that completes no step for too long says so and exits."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from harness.loop.hook import Hook

if TYPE_CHECKING:
    from harness.loop.trainer import LoopPosition, Trainer

HANG_TIMEOUT_VARIABLE = "HARNESS_HANG_TIMEOUT"  # seconds without a step before a rank gives up


class Watchdog(Hook):
    """Ends this rank when no training step completes for ``timeout`` seconds.

    A rank waiting in an allreduce for a peer that is stuck or gone cannot return on its own; the
    watchdog says why in one line and exits the process, and horovodrun then stops the others.
    """

    def __init__(self, rank: int, timeout: float):
        self.rank, self.timeout = rank, timeout
        self.step, self.last = 0, time.monotonic()
        self._stopped = threading.Event()

    def on_train_start(self, trainer: Trainer, position: LoopPosition) -> None:
        self.step, self.last = position.step, time.monotonic()
        self._stopped.clear()
        threading.Thread(target=self._watch, daemon=True, name="harness-watchdog").start()

    def before_step(self, step: int) -> None:
        self.step, self.last = step, time.monotonic()

    def on_train_end(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(min(1.0, self.timeout / 10)):
            if time.monotonic() - self.last > self.timeout:
                print(
                    f"Error: rank {self.rank} completed no step for {self.timeout:.0f} s (last: step {self.step}): "
                    "another rank stopped responding or died (--hang-timeout)",
                    file=sys.stderr,
                    flush=True,
                )
                os._exit(1)
