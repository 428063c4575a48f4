"""Every rank's hang watchdog: a rank that completes no step for too long says so and exits."""

from __future__ import annotations

import os
import sys
import threading
import time

from harness.contract.distributed import LOST_JOB
from harness.loop.trainer import Hook, LoopPosition, StepReport, Trainer

HANG_TIMEOUT_VARIABLE = "HARNESS_HANG_TIMEOUT"  # seconds without a step before a rank gives up


FIRST_STEP_ALLOWANCE = 120.0  # seconds a fit's first step may take beyond the timeout: it traces and compiles


class Watchdog(Hook):
    """Ends this rank when no training step completes for ``timeout`` seconds.

    A rank waiting in an allreduce for a peer that is stuck or gone cannot return on its own; the
    watchdog says why in one line and exits the process, and horovodrun then stops the others.
    A fit's first step also does one-time work (tf.function tracing, XLA compilation: over 10 s
    for TF's tiny model on 2 busy cores), so it gets FIRST_STEP_ALLOWANCE more; a peer frozen
    meanwhile still trips Gloo's receive timeout, which is the hang timeout.
    """

    def __init__(self, rank: int, timeout: float):
        self.rank, self.timeout = rank, timeout
        self.step, self.last, self.first = 0, time.monotonic(), True
        self._stopped = threading.Event()

    def on_train_start(self, trainer: Trainer, position: LoopPosition) -> None:
        self.step, self.last, self.first = position.step, time.monotonic(), True
        self._stopped.clear()
        threading.Thread(target=self._watch, daemon=True, name="harness-watchdog").start()

    def before_step(self, step: int) -> None:
        self.step, self.last = step, time.monotonic()

    def after_step(self, report: StepReport, position: LoopPosition) -> None:
        self.first = False

    def on_train_end(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        interval = min(1.0, self.timeout / 10)
        woke = time.monotonic()
        while not self._stopped.wait(interval):
            now = time.monotonic()
            # A wait far longer than asked: this process itself was stopped (SIGSTOP, a paused host)
            # and has just been let go (mpirun's SIGCONT when it ends the job): it was the one lost.
            asleep, woke = now - woke, now
            limit = self.timeout + (FIRST_STEP_ALLOWANCE if self.first else 0.0)
            if now - self.last <= limit:
                continue
            if asleep > limit:
                why = f"it was itself stopped for {asleep:.0f} s (SIGSTOP, or a paused host); the job ended without it"
            else:
                why = (
                    f"{LOST_JOB}: it completed no step for {limit:.0f} s (last: step {self.step}); another rank "
                    "stopped responding or died"
                )
            print(f"Error: rank {self.rank} {why} (--hang-timeout)", file=sys.stderr, flush=True)
            os._exit(1)
