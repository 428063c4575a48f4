"""Periodic work around the training steps, as hooks the Trainer is given (flax's lm1b style).

A hook overrides any of ``Hook``'s methods; the Trainer calls them in list order. The loop's own
hooks are here: rank 0's metrics and progress, evaluation and checkpoints, every rank's
throughput meter and hang watchdog; elastic commits are in harness/elastic.py. Users add their
own (``harness.train.run(hooks=...)``, ``harness train --hook MODULE:ATTR``), and the tests
inject faults through the same methods.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from harness.backend import Backend, EvalSums
from harness.checkpoint import save_checkpoint
from harness.config import EvalConfig, TrainConfig
from harness.data import Split
from harness.rundir import disk_full_as_error

if TYPE_CHECKING:
    from harness.train import LoopPosition, StepReport, Trainer

METRICS_FILE = "metrics.jsonl"
EVAL_STREAM = 2**32 - 1  # evaluation batches draw from (seed, EVAL_STREAM, first index), never a step's stream


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


class Throughput(Hook):
    """Tokens per second over the steps of every fit, without each fit's first (tracing, allocation)."""

    def __init__(self) -> None:
        self.tokens, self.seconds = 0, 0.0
        self.last_loss = float("nan")
        self._first = True

    def on_train_start(self, trainer: Trainer, position: LoopPosition) -> None:
        self._first = True

    def after_step(self, report: StepReport, position: LoopPosition) -> None:
        self.last_loss = report.loss
        if not self._first:
            self.tokens += report.tokens
            self.seconds += report.seconds
        self._first = False

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else float("nan")


class Progress:
    """Rank 0's progress: a tqdm bar on a terminal; under horovodrun (a pipe) a plain line every 10%."""

    def __init__(self, total: int, start: int, enabled: bool):
        self.total, self.enabled = total, enabled
        self.every = max(1, total // 10)
        self.bar = tqdm(total=total, initial=start, unit="step") if enabled and sys.stderr.isatty() else None
        self.began, self.start = time.perf_counter(), start

    def update(self, step: int, loss: float, tokens_per_s: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_per_s:.0f}")
        elif self.enabled and (step % self.every == 0 or step == self.total):
            elapsed = time.perf_counter() - self.began
            eta = elapsed / (step - self.start) * (self.total - step)
            print(
                f"step {step}/{self.total}  loss {loss:.4f}  {tokens_per_s:,.0f} tokens/s  eta {eta:.0f}s", flush=True
            )

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Reporter(Hook):
    """Rank 0's JSON-lines metrics log and progress display.

    A fit that starts from a position (resume, elastic rollback) keeps only the log lines up to it.
    A line that cannot be written whole (a full disk) is cut off again: the log never ends torn.
    """

    def __init__(self, run_dir: Path, steps: int, progress: bool, log_loss_scale: bool):
        self.path = Path(run_dir) / METRICS_FILE
        self.steps, self.progress, self.log_loss_scale = steps, progress, log_loss_scale
        self._file, self._display = None, None

    def on_train_start(self, trainer: Trainer, position: LoopPosition) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if position.step and self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:  # a line a killed writer left half-written
                    continue
                if record["step"] <= position.step:
                    kept.append(line)
        tmp = self.path.with_suffix(".tmp")
        with disk_full_as_error(tmp):
            try:
                tmp.write_text("".join(line + "\n" for line in kept))
            except OSError:
                tmp.unlink(missing_ok=True)
                raise
        os.replace(tmp, self.path)
        self._file = self.path.open("ab", buffering=0)  # each line goes to the kernel in one write
        self._display = Progress(self.steps, position.step, enabled=self.progress)

    def write(self, record: dict) -> None:
        line = (json.dumps(record) + "\n").encode()
        end = self._file.tell()
        with disk_full_as_error(self.path):
            try:
                if self._file.write(line) != len(line):  # the disk filled up partway
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
            except OSError:
                self._file.truncate(end)
                raise

    def after_step(self, report: StepReport, position: LoopPosition) -> None:
        record = {"step": report.step, "loss": report.loss, "lr": report.lr, "grad_norm": report.grad_norm}
        record.update(epoch=report.epoch, skipped=not report.applied, world_size=report.world_size)
        if self.log_loss_scale:
            record["loss_scale"] = report.loss_scale
        tokens_per_s = report.tokens / report.seconds
        record.update(tokens_per_s=tokens_per_s, time=round(time.time(), 3))
        self.write(record)
        self._display.update(report.step, report.loss, tokens_per_s)

    def log_eval(self, step: int, metrics: dict[str, float]) -> None:
        self.write({"step": step, **metrics})
        self._display.write(f"step {step}: " + ", ".join(f"{name} {value:.4f}" for name, value in metrics.items()))

    def on_train_end(self) -> None:
        if self._display is not None:
            self._display.close()
        if self._file is not None:
            self._file.close()
            self._file = None


def evaluate(backend: Backend, task, split: Split, config: EvalConfig, seed: int) -> dict[str, float]:
    """The task's metrics over the first ``config.max_examples`` examples of ``split`` (0: all), in
    batches of ``config.batch_size`` (this process alone, no collectives)."""
    sums = EvalSums()
    count = min(len(split), config.max_examples or len(split))
    for start in range(0, count, config.batch_size):
        indices = np.arange(start, min(start + config.batch_size, count))
        sums += backend.eval_sums(task.batch(split, indices, np.random.default_rng([seed, EVAL_STREAM, start])))
    return task.eval_metrics(sums.loss / sums.count, sums.correct / sums.count)


class Evaluator(Hook):
    """Rank 0 evaluates the validation split (eval.max_examples of it) every ``every`` steps and at the last, and hands
    the metrics to each of ``logs`` (objects with ``log_eval(step, metrics)``: the Reporter, TensorBoard)."""

    def __init__(self, backend: Backend, task, split: Split, config: EvalConfig, train: TrainConfig, logs: list):
        self.backend, self.task, self.split, self.config, self.train = backend, task, split, config, train
        self.logs = logs
        self.last: dict[str, float] = {}

    def after_step(self, report: StepReport, position: LoopPosition) -> None:
        if due(self.config.every, report.step, self.train.steps):
            self.last = evaluate(self.backend, self.task, self.split, self.config, self.train.seed)
            for log in self.logs:
                log.log_eval(report.step, self.last)


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
