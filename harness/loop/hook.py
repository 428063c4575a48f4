"""The hook interface: periodic work around the training steps, given to the Trainer (flax's lm1b style).

A hook overrides any of ``Hook``'s methods; the Trainer calls them in list order. The loop's own
hooks each have a module here (reporter, evaluator, checkpointer, watchdog, tensorboard, elastic);
``harness.runner.run`` assembles them. Users add their own (``harness.run(hooks=...)``,
``harness train --hook MODULE:ATTR``), and the tests inject faults through the same methods.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.loop.trainer import LoopPosition, StepReport, Trainer


class Hook:
    """Override what you need. ``step`` counts optimizer steps done; reports carry 1-based steps."""

    def on_train_start(self, trainer: Trainer, position: LoopPosition) -> None:
        """Before the first step of a fit (again after an elastic rollback, from the restored position)."""

    def before_step(self, step: int) -> None:
        """Before the step that follows ``step`` completed steps."""

    def after_step(self, report: StepReport, position: LoopPosition) -> None:
        """After a step, with the position it leaves (what a checkpoint must save)."""

    def on_checkpoint_file(self, path: Path) -> None:
        """A checkpoint file was written into its (still hidden) directory."""

    def on_train_end(self) -> None:
        """After the last step, or when the fit ends with an error."""


class Hooks(Hook):
    """Hooks called in order, as one."""

    def __init__(self, hooks: Iterable[Hook] = ()):
        self.hooks = list(hooks)

    def append(self, hook: Hook) -> None:
        self.hooks.append(hook)

    def on_train_start(self, trainer: Trainer, position: LoopPosition) -> None:
        for hook in self.hooks:
            hook.on_train_start(trainer, position)

    def before_step(self, step: int) -> None:
        for hook in self.hooks:
            hook.before_step(step)

    def after_step(self, report: StepReport, position: LoopPosition) -> None:
        for hook in self.hooks:
            hook.after_step(report, position)

    def on_checkpoint_file(self, path: Path) -> None:
        for hook in self.hooks:
            hook.on_checkpoint_file(path)

    def on_train_end(self) -> None:
        for hook in self.hooks:
            hook.on_train_end()


def due(every: int, step: int, steps: int) -> bool:
    """Periodic work is due every ``every`` steps (0: never) and at the last step."""
    return (every > 0 and step % every == 0) or step == steps
