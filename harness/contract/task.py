"""Tasks: how a family's batches are made from the data, in numpy, and what its evaluation reports.

A task is framework-free. The loop asks it for the training and validation splits, then for each
step's batch from the example indices that ``harness.data.order.BatchOrder`` assigns to this rank, with a
``numpy.random.Generator`` seeded from ``(seed, step, rank)``: any randomness a task draws (masks,
noise) is therefore identical in both frameworks and after a resume. The loss is the generic one
of the backends: cross-entropy of the model's logits against ``Batch.targets``, weighted by
``Batch.weights``, with ``train.label_smoothing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from harness.contract.config import DataConfig


@dataclass(frozen=True)
class Batch:
    """One rank's batch.

    Attributes:
        inputs: (N, ...) integer array, the model's input (N examples).
        targets: (N, ...) int64 class ids, the model's logits without their last (class) axis.
        weights: float32 like ``targets``, each target's share of the loss (0 leaves it out);
            None weighs every target alike.
    """

    inputs: np.ndarray
    targets: np.ndarray
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.inputs.shape[0] != self.targets.shape[0]:
            raise ValueError(
                f"a batch's inputs and targets must hold the same number of examples, received "
                f"inputs {self.inputs.shape} and targets {self.targets.shape}"
            )
        if self.weights is not None and self.weights.shape != self.targets.shape:
            raise ValueError(f"batch weights {self.weights.shape} must have the targets' shape {self.targets.shape}")

    def micro_batches(self, count: int) -> Batch:
        """The same examples as ``count`` micro-batches: a new leading axis, (count, N / count, ...)."""
        split = lambda a: None if a is None else a.reshape(count, a.shape[0] // count, *a.shape[1:])  # noqa: E731
        return Batch(split(self.inputs), split(self.targets), split(self.weights))


class Split(Protocol):
    """One split of a task's examples: all the loop needs is how many there are; the task's own
    ``batch`` reads them (token windows, labelled paragraphs, ...)."""

    def __len__(self) -> int: ...


class Task(Protocol):
    def splits(self, data: DataConfig) -> tuple[Split, Split]:
        """The training and validation splits; ``len(split)`` examples each."""

    def batch(self, split: Split, indices: np.ndarray, rng: np.random.Generator) -> Batch:
        """The batch of examples ``indices`` of ``split``; ``rng`` is the only randomness allowed."""

    def eval_metrics(self, mean_loss: float, accuracy: float) -> dict[str, float]:
        """Named validation metrics from the weighted mean loss and accuracy over the split."""
