"""Rank 0's checkpoints of the loop: weights, AdamW state and position (harness.storage.checkpoint)."""

from __future__ import annotations

from pathlib import Path

from harness.contract.backend import Backend
from harness.loop.trainer import Hook, LoopPosition, StepReport, Trainer, due
from harness.storage.checkpoint import save_checkpoint
from harness.storage.rundir import disk_full_as_error


class Checkpointer(Hook):
    """Rank 0 saves weights, AdamW state and position every ``every`` steps, at the last, and at a
    step every rank stops after (a stop signal; trainer.json then says ``"stopped": true``)."""

    def __init__(
        self,
        run_dir: Path,
        backend: Backend,
        every: int,
        keep: int,
        steps: int,
        trainer_record: dict,
        last_saved: Path | None = None,
        files: dict[str, Path] | None = None,
    ):
        self.run_dir, self.backend, self.every, self.keep, self.steps = Path(run_dir), backend, every, keep, steps
        self.trainer_record = trainer_record  # what every checkpoint's trainer.json carries
        self.files = files or {}  # copied into every checkpoint (the tokenizer)
        self.last_saved = last_saved
        self.last_step = int(last_saved.name.removeprefix("step_")) if last_saved else 0
        self.world_size = 0  # of the steps that made the state being saved
        self._events: Hook = Hook()

    def on_train_start(self, trainer: Trainer, position: LoopPosition) -> None:
        self._events = trainer.hooks  # every hook hears of each file written

    def after_step(self, report: StepReport, position: LoopPosition) -> None:
        stopped = report.stop and report.step < self.steps
        self.world_size = report.world_size
        if due(self.every, report.step, self.steps) or stopped:
            self.save(position, stopped)

    def save(self, position: LoopPosition, stopped: bool = False) -> None:
        """Save the backend's state as the checkpoint of ``position.step``."""
        record = {**self.trainer_record, "world_size": self.world_size, **position.record()}
        record.update({"stopped": True} if stopped else {})
        with disk_full_as_error(self.run_dir, self.last_saved):
            self.last_saved = save_checkpoint(
                self.run_dir,
                position.step,
                self.backend.export_model_state(),
                self.backend.export_optimizer_state(),
                record,
                self.keep,
                on_file=self._events.on_checkpoint_file,
                files=self.files,
            )
        self.last_step = position.step
