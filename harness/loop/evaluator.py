"""Rank 0's evaluation of the validation split, with the task's own metrics."""

from __future__ import annotations

import numpy as np

from harness.contract.backend import Backend, EvalSums
from harness.contract.config import EvalConfig, TrainConfig
from harness.contract.task import Split, Task
from harness.loop.trainer import Hook, LoopPosition, StepReport, due

EVAL_STREAM = 2**32 - 1  # evaluation batches draw from (seed, EVAL_STREAM, first index), never a step's stream


def evaluate(backend: Backend, task: Task, split: Split, config: EvalConfig, seed: int) -> dict[str, float]:
    """The task's metrics over the first ``config.max_examples`` examples of ``split`` (0: all), in
    batches of ``config.batch_size`` (this process alone, no collectives); for a task scored on what
    the model decodes (``decoded_metrics``: BLEU, chrF), also those of its first
    ``config.decode_examples`` examples, decoded with the backend's logits."""
    sums = EvalSums()
    count = min(len(split), config.max_examples or len(split))
    for start in range(0, count, config.batch_size):
        indices = np.arange(start, min(start + config.batch_size, count))
        sums += backend.eval_sums(task.batch(split, indices, np.random.default_rng([seed, EVAL_STREAM, start])))
    metrics = task.eval_metrics(sums.loss / sums.count, sums.correct / sums.count)
    if config.decode_examples and hasattr(task, "decoded_metrics"):
        metrics |= task.decoded_metrics(backend.predict, split, min(len(split), config.decode_examples), config)
    return metrics


class Evaluator(Hook):
    """Rank 0 evaluates the validation split (eval.max_examples of it) every ``every`` steps and at the last, and hands
    the metrics to each of ``logs`` (objects with ``log_eval(step, metrics)``: the Reporter, TensorBoard)."""

    def __init__(self, backend: Backend, task: Task, split: Split, config: EvalConfig, train: TrainConfig, logs: list):
        self.backend, self.task, self.split, self.config, self.train = backend, task, split, config, train
        self.logs = logs
        self.last: dict[str, float] = {}

    def after_step(self, report: StepReport, position: LoopPosition) -> None:
        if due(self.config.every, report.step, self.train.steps):
            self.last = evaluate(self.backend, self.task, self.split, self.config, self.train.seed)
            for log in self.logs:
                log.log_eval(report.step, self.last)
