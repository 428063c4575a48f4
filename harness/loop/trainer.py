"""The data-parallel training loop: framework-free and family-free, and the interface of its hooks.

``Trainer.train_step`` is one small function (learning rate, batch, seeds, the backend's step, the
non-finite policy); ``Trainer.fit`` repeats it and runs everything periodic as hooks (flax's lm1b
style). ``LoopPosition`` is where training stands, ``StepReport`` what a step did, ``Hook`` what a
hook overrides: the types every hook is written against, here with the Trainer that calls them.
The loop's own hooks each have a module beside this one (reporter, evaluator, checkpointer,
watchdog, tensorboard, elastic); ``harness.runner.run`` assembles them. Users add their own
(``harness.run(hooks=...)``, ``harness train --hook MODULE:ATTR``), and the tests inject faults
through the same methods.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np

from harness.contract.backend import Backend, StepOutcome, step_seed
from harness.contract.config import TrainConfig
from harness.contract.distributed import Distributed
from harness.contract.task import Split, Task
from harness.data.order import BatchOrder, batch_order
from harness.loop.preemption import StopRequest
from harness.storage.checkpoint import Checkpoint

BATCH_STREAM = 1  # a step's batch randomness draws from (BATCH_STREAM, seed, step, rank)


class NonFiniteError(RuntimeError):
    """A step's loss or gradient norm was NaN or infinite (and train.skip_nonfinite is off)."""

    def __init__(self, step: int, loss: float, grad_norm: float, last_checkpoint: Path | None = None):
        super().__init__(step, loss, grad_norm)
        self.step, self.loss, self.grad_norm, self.last_checkpoint = step, loss, grad_norm, last_checkpoint

    def __str__(self) -> str:
        return (
            f"non-finite loss ({self.loss}) or gradient norm ({self.grad_norm}) at step {self.step}; the weights "
            f"were not updated. Last good checkpoint: {self.last_checkpoint or 'none'}. Lower train.lr, or pass "
            "--set train.skip_nonfinite=true to skip such steps"
        )


def learning_rate(step: int, config: TrainConfig, world_size: int) -> float:
    """Linear warmup over ``warmup_steps``, then cosine decay to ``min_lr_ratio * lr`` at ``steps``."""
    peak = config.lr * (world_size if config.lr_scaling == "linear" else 1)
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    floor = peak * config.min_lr_ratio
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class LoopPosition:
    """Where training stands: what a checkpoint or an elastic commit must carry to continue exactly.

    The one owner of the position: it reads it from a checkpoint (``start``), writes it into one
    (``record``), broadcasts it (``broadcast``) and advances it (``next_batch``, ``Trainer``).
    """

    step: int = 0  # optimizer steps done
    epoch: int = 0
    consumed: int = 0  # windows of this epoch's permutation already read, by all ranks together
    skipped: int = 0  # steps skipped (non-finite, or an fp16 overflow)

    @classmethod
    def start(cls, checkpoint: Checkpoint | None, order: BatchOrder) -> LoopPosition:
        if checkpoint is None:
            return cls()
        if "data_position" in checkpoint.trainer:
            epoch, consumed = checkpoint.trainer["data_position"]
        else:  # written before positions were recorded: derive it from the step (fixed world size)
            epoch, in_epoch = order.position(checkpoint.step - 1)
            consumed = (in_epoch + 1) * order.global_batch
        return cls(checkpoint.step, epoch, consumed, checkpoint.trainer.get("skipped_steps", 0))

    def record(self) -> dict:
        """The position as checkpoints' trainer.json carries it."""
        return {"epoch": self.epoch, "data_position": [self.epoch, self.consumed], "skipped_steps": self.skipped}

    def broadcast(self, dist: Distributed) -> LoopPosition:
        """Rank 0's position, on every rank."""
        # Horovod: the start position travels with the state, so every rank resumes at the same batch.
        values = dist.broadcast(np.array(astuple(self), np.int64), root_rank=0, name="position")
        return LoopPosition(*(int(x) for x in values))

    def next_batch(self, order: BatchOrder, rank: int) -> np.ndarray:
        """This rank's window indices for the next step; advances past the whole global batch.

        Counting windows, not steps, keeps the epoch's order intact when the world size changes
        (elastic): no window of the epoch is skipped or read twice.
        """
        if self.consumed + order.global_batch > order.num_windows:  # too few left: next epoch
            self.epoch, self.consumed = self.epoch + 1, 0
        indices = order.window_slice(self.epoch, self.consumed + rank * order.windows_per_rank, order.windows_per_rank)
        self.consumed += order.global_batch
        return indices


@dataclass(frozen=True)
class StepReport:
    """What one step did, for the hooks."""

    step: int  # 1-based: the number of steps done after it
    lr: float
    loss: float  # mean over ranks
    grad_norm: float
    outcome: StepOutcome
    loss_scale: float
    epoch: int
    world_size: int
    tokens: int  # input tokens of the global batch
    seconds: float
    stop: bool = False  # a rank asked to stop: every rank ends after this step (rank 0 saves it)

    @property
    def applied(self) -> bool:
        return self.outcome is StepOutcome.APPLIED


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


class Trainer:
    """Optimizer steps from a position to ``train.steps``; everything periodic runs as ``hooks``.

    A ``stop`` request (a signal, or a hook) ends a fit early, after the same step on every rank.
    """

    def __init__(
        self,
        backend: Backend,
        task: Task,
        train_split: Split,
        config: TrainConfig,
        dist: Distributed,
        hooks: Iterable[Hook] = (),
        stop: StopRequest | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.backend, self.task, self.train_split, self.config, self.dist = backend, task, train_split, config, dist
        self.hooks = Hooks(hooks)
        self.stop = stop or StopRequest()
        self.clock = clock  # what times a step (a test's fake clock)

    def batch_order(self) -> BatchOrder:
        """The global order at the current world size (an elastic job may change it between fits)."""
        return batch_order(self.config, len(self.train_split), self.dist.size)

    def train_step(self, position: LoopPosition, order: BatchOrder) -> StepReport:
        """One optimizer step from ``position``, which it advances."""
        began = self.clock()
        config, rank, step = self.config, self.dist.rank, position.step
        lr = learning_rate(step, config, self.dist.size)
        indices = position.next_batch(order, rank)
        rng = np.random.default_rng([BATCH_STREAM, config.seed, step, rank])
        batch = self.task.batch(self.train_split, indices, rng).micro_batches(config.accumulation_steps)
        self.backend.seed_step(step_seed(config.seed, step, rank))
        # Horovod: this rank's stop request is reduced with the loss; all ranks get the same answer.
        result = self.backend.train_step(batch, lr, self.stop.requested)
        if result.outcome is StepOutcome.NONFINITE and not config.skip_nonfinite:
            raise NonFiniteError(step + 1, result.loss, result.grad_norm)
        position.step = step + 1
        position.skipped += result.outcome is not StepOutcome.APPLIED
        seconds = self.clock() - began
        tokens = batch.tokens * self.dist.size
        return StepReport(
            position.step, lr, result.loss, result.grad_norm, result.outcome, result.loss_scale,
            position.epoch, self.dist.size, tokens, seconds, result.stop,
        )  # fmt: skip

    def fit(self, position: LoopPosition) -> StepReport | None:
        """Steps until ``train.steps``, or until a step every rank agrees to stop after; returns the
        last step's report (None if there was none)."""
        order, report = self.batch_order(), None
        # SIGTERM/SIGINT only request a stop while steps run: outside, a stopped rank loses nothing.
        with self.stop.on_signals():
            self.hooks.on_train_start(self, position)
            try:
                while position.step < self.config.steps:
                    self.hooks.before_step(position.step)
                    report = self.train_step(position, order)
                    self.hooks.after_step(report, position)
                    if report.stop:
                        break
            finally:
                self.hooks.on_train_end()
        return report
