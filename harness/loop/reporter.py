"""Rank 0's view of the run: throughput, the JSON-lines metrics log and the progress display."""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from harness.loop.trainer import Hook, LoopPosition, StepReport, Trainer
from harness.storage.rundir import disk_full_as_error

METRICS_FILE = "metrics.jsonl"


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
