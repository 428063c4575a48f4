"""A polite stop: SIGTERM (a scheduler preempting the job, horovodrun passing one on) or SIGINT (Ctrl-C).

The signal handler only records the request. The loop shares it with every rank inside the step's
loss allreduce (no extra round trip), so all ranks stop after the same step, rank 0 checkpoints
that step, and the job exits with 128 + the signal number (143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
DEFAULT_STOP_SIGNAL = signal.SIGTERM  # what a stop requested on another rank reports


class StopRequest:
    """Whether this process was asked to stop, and by which signal."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def request(self, signum: int = DEFAULT_STOP_SIGNAL) -> None:
        """Ask for a stop at the next step boundary (what the signal handler does; hooks may too)."""
        if self.signal is None:
            self.signal = signal.Signals(signum)

    @contextlib.contextmanager
    def on_signals(
        self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS, then: Callable[[int], None] | None = None
    ) -> Iterator[StopRequest]:
        """Inside, ``signals`` request a stop (and call ``then``) instead of ending the process; a
        second Ctrl-C interrupts at once. Outside the main thread (where Python cannot handle
        signals) a no-op."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum: int, frame) -> None:
            if signum == signal.SIGINT and self.requested:
                raise KeyboardInterrupt  # the user insists
            self.request(signum)
            if then is not None:
                then(signum)

        previous = {signum: signal.signal(signum, handler) for signum in signals}
        try:
            yield self
        finally:
            for signum, action in previous.items():
                signal.signal(signum, action)


def exit_code(signum: int | None) -> int:
    """The shell's code for a process ended by ``signum`` (143 for SIGTERM, 130 for SIGINT)."""
    return 128 + int(signum or DEFAULT_STOP_SIGNAL)


def signal_name(signum: int | None) -> str:
    return signal.Signals(signum).name if signum else "a stop signal on another rank"


class Preempted(RuntimeError):
    """A stop signal ended the run early: every rank stopped after the same step, which rank 0 saved."""

    def __init__(self, step: int, signum: int | None, checkpoint: Path | None):
        super().__init__(step, signum, checkpoint)
        self.step, self.signum, self.checkpoint = step, signum, checkpoint

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum)

    def __str__(self) -> str:
        return (
            f"stopped by {signal_name(self.signum)} after step {self.step}; checkpoint {self.checkpoint}: "
            "--resume continues from it"
        )
