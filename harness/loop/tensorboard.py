"""Rank 0's TensorBoard event files: the training scalars and the validation metrics.

Written with the ``tensorboard`` package's own event writer and protocol buffers, so the
framework-free core imports neither torch nor TensorFlow for it. ``tensorboard --logdir RUN_DIR/tb``
shows them; a resumed run appends to the same directory.
"""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from harness.loop.trainer import Hook, LoopPosition, StepReport, Trainer

TENSORBOARD_DIR = "tb"


def event_writer(log_dir: Path) -> EventFileWriter:
    """tensorboard's event file writer, without TensorFlow where this process has not loaded it.

    The writer's file I/O goes through ``tensorboard.compat.tf``, which imports TensorFlow whenever
    it is installed: seconds, hundreds of MB and TF's log lines in a torch rank. Where TensorFlow is
    not loaded, tensorboard's own stub of its file API serves instead (tensorboard's no-TensorFlow
    mode, chosen by the presence of the module ``tensorboard.compat.notf``).
    """
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
    return EventFileWriter(str(log_dir))


class TensorBoard(Hook):
    """Writes ``train/*`` scalars after every step and ``val/*`` metrics after every evaluation."""

    def __init__(self, run_dir: Path, log_loss_scale: bool = False):
        self.log_dir = Path(run_dir) / TENSORBOARD_DIR
        self.log_loss_scale = log_loss_scale
        self._writer: EventFileWriter | None = None

    def on_train_start(self, trainer: Trainer, position: LoopPosition) -> None:
        if self._writer is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._writer = event_writer(self.log_dir)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        summary = Summary(value=[Summary.Value(tag=tag, simple_value=value) for tag, value in values.items()])
        self._writer.add_event(Event(wall_time=time.time(), step=step, summary=summary))

    def after_step(self, report: StepReport, position: LoopPosition) -> None:
        values = {
            "train/loss": report.loss,
            "train/lr": report.lr,
            "train/grad_norm": report.grad_norm,
            "train/tokens_per_s": report.tokens / report.seconds,
        }
        if self.log_loss_scale:
            values["train/loss_scale"] = report.loss_scale
        self.scalars(report.step, values)

    def log_eval(self, step: int, metrics: dict[str, float]) -> None:
        self.scalars(step, {f"val/{name.removeprefix('val_')}": value for name, value in metrics.items()})
        self._writer.flush()

    def on_train_end(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
