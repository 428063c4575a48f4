"""Tasks: how a family's batches are made from the data, in numpy, and what its evaluation reports.

A task is framework-free. The loop asks it for the training and validation splits, then for each
step's batch from the example indices that ``harness.data.order.BatchOrder`` assigns to this rank, with a
``numpy.random.Generator`` seeded from ``(seed, step, rank)``: any randomness a task draws (masks,
noise) is therefore identical in both frameworks and after a resume. The loss is the family's
(``Family.loss``), by default the backends' cross-entropy of the model's logits against
``Batch.targets``, weighted by ``Batch.weights``, with ``train.label_smoothing``.

A batch's inputs are one integer array, called positionally, or named arrays (``input_ids``,
``attention_mask``, ``token_type_ids``, ``decoder_input_ids``, ...) that the model is called on as
keyword arguments; every array holds the same examples on its leading axis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from harness.contract.config import DataConfig, EvalConfig

Inputs = np.ndarray | Mapping[str, np.ndarray]  # one array, or the model's named inputs


def map_inputs(function: Callable[[np.ndarray], Any], inputs: Inputs) -> Any:
    """``function`` of the one input array, or a dict of it applied to each named one."""
    if isinstance(inputs, Mapping):
        return {name: function(array) for name, array in inputs.items()}
    return function(inputs)


def token_array(inputs: Inputs) -> np.ndarray:
    """The array that counts a batch's tokens: the one input, or the first named one (``input_ids``)."""
    return next(iter(inputs.values())) if isinstance(inputs, Mapping) else inputs


@dataclass(frozen=True)
class Batch:
    """One rank's batch.

    Attributes:
        inputs: (N, ...) integer array, the model's input (N examples), or named (N, ...) arrays.
        targets: (N, ...) int64 class ids, the model's logits without their last (class) axis.
        weights: float32 like ``targets``, each target's share of the loss (0 leaves it out);
            None weighs every target alike.
    """

    inputs: np.ndarray
    targets: np.ndarray
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        if isinstance(self.inputs, Mapping) and not self.inputs:
            raise ValueError("a batch's named inputs must hold at least one array, received none")
        shapes = map_inputs(np.shape, self.inputs)
        leading = {shape[0] for shape in shapes.values()} if isinstance(shapes, dict) else {shapes[0]}
        if leading != {self.targets.shape[0]}:
            raise ValueError(
                f"a batch's inputs and targets must hold the same number of examples, received "
                f"inputs {shapes} and targets {self.targets.shape}"
            )
        if self.weights is not None and self.weights.shape != self.targets.shape:
            raise ValueError(f"batch weights {self.weights.shape} must have the targets' shape {self.targets.shape}")

    def micro_batches(self, count: int) -> Batch:
        """The same examples as ``count`` micro-batches: a new leading axis, (count, N / count, ...)."""
        split = lambda a: None if a is None else a.reshape(count, a.shape[0] // count, *a.shape[1:])  # noqa: E731
        return Batch(map_inputs(split, self.inputs), split(self.targets), split(self.weights))

    def micro_batch(self, index: int) -> Batch:
        """Micro-batch ``index`` of a batch made by ``micro_batches``."""
        take = lambda a: None if a is None else a[index]  # noqa: E731
        return Batch(map_inputs(take, self.inputs), take(self.targets), take(self.weights))

    @property
    def tokens(self) -> int:
        """How many tokens the batch feeds the model (``token_array``'s size), for throughput."""
        return token_array(self.inputs).size


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


class DecodedTask(Task, Protocol):
    """A task also scored on what the model decodes (translation's BLEU): the loop's evaluation hands
    it the model's logits function (inputs -> logits, inference mode) to decode with."""

    def decoded_metrics(
        self, predict: Callable[[Inputs], np.ndarray], split: Split, count: int, config: EvalConfig
    ) -> dict[str, float]:
        """Named metrics of the first ``count`` examples of ``split``, decoded as ``config`` says
        (``num_beams``, ``length_penalty``) in batches of ``config.batch_size``."""
