"""What the framework-free loop needs from a framework, and the parts of a backend that need none.

A backend holds one framework's instance of a family's model, AdamW and the Horovod-wrapped step.
Arrays crossing this boundary are numpy; states are the neutral dicts of harness/contract/state.py. The
state conversions are written here once; a framework supplies how to read and write one tensor.
"""

from __future__ import annotations

import enum
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.contract.config import RunConfig
from harness.contract.distributed import Distributed
from harness.contract.family import Family
from harness.contract.mapping import Layout
from harness.contract.state import Shapes, State, check_state, optimizer_moments, optimizer_state
from harness.contract.task import Batch, Inputs

Bound = tuple[str, Layout]  # a neutral tensor's parameter in the framework: its own name and layout


class StepOutcome(enum.Enum):
    APPLIED = "applied"  # the weights and AdamW state were updated
    OVERFLOW = "overflow"  # fp16: the scaled gradient overflowed; step skipped, loss scale lowered (by design)
    NONFINITE = "nonfinite"  # the loss or the gradient norm was NaN or infinite; step skipped


@dataclass(frozen=True)
class StepResult:
    loss: float  # mean over ranks and micro-batches
    grad_norm: float  # global norm of the rank-averaged gradient, before clipping
    outcome: StepOutcome  # the same on every rank: it is decided from reduced values
    loss_scale: float = 1.0  # fp16's dynamic loss scale after this step (1.0 without scaling)
    stop: bool = False  # some rank asked to stop (harness/loop/preemption.py): every rank ends after this step


def step_outcome(applied: bool, loss: float, loss_scaling: bool) -> StepOutcome:
    """What a step did: under loss scaling a finite loss with a non-finite gradient is an overflow."""
    if applied:
        return StepOutcome.APPLIED
    return StepOutcome.OVERFLOW if loss_scaling and math.isfinite(loss) else StepOutcome.NONFINITE


@dataclass(frozen=True)
class EvalSums:
    """Sums over evaluated targets, each weighted by its batch weight."""

    loss: float = 0.0
    correct: float = 0.0
    count: float = 0.0

    def __add__(self, other: EvalSums) -> EvalSums:
        return EvalSums(self.loss + other.loss, self.correct + other.correct, self.count + other.count)


def loss_shares(batch: Batch) -> np.ndarray:
    """(k,) float32: each micro-batch's share of the rank's loss, so that the k weighted means add up
    to the weighted mean over all k (1/k each without weights)."""
    k = batch.targets.shape[0]
    if batch.weights is None:
        return np.full(k, 1.0 / k, np.float32)
    totals = batch.weights.reshape(k, -1).sum(axis=1, dtype=np.float64)
    return (totals / totals.sum()).astype(np.float32)


def gradient_buckets(sizes: list[tuple[Any, int]], bucket_mb: float) -> list[list[Any]]:
    """The keys of ``sizes`` ((key, gradient bytes) in the model's order) in the buckets their gradients
    are reduced in: filled in the order the backward pass produces them (the model's order reversed),
    each closed once it holds ``bucket_mb`` MB or more (DDP's rule), so 0 puts every tensor alone and
    a model smaller than one bucket has one."""
    buckets, current, filled = [], [], 0
    for key, nbytes in reversed(sizes):
        current.append(key)
        filled += nbytes
        if filled >= bucket_mb * 2**20:
            buckets.append(current)
            current, filled = [], 0
    return buckets + [current] if current else buckets


class Backend(ABC):
    """One framework's model, AdamW optimizer and Horovod-wrapped training step."""

    parameters: dict[str, Any]  # neutral name -> the framework's parameter, set by ``bind_parameters``
    copies: list[tuple[Any, str, Layout]]  # tied copies: (parameter, neutral name, layout), likewise

    def __init__(self, family: Family, config: RunConfig, dist: Distributed):
        self.family = family
        self.config = config
        self.dist = dist
        self.shapes: Shapes = family.state_shapes(config.model)
        self.layouts: dict[str, Layout] = {}

    def bind_parameters(self, framework: str, own: dict[str, Any], shape: Callable[[Any], tuple[int, ...]]) -> None:
        """Key the model's own parameters (its names, in its order) by their neutral names through the
        family's map for ``framework``; ``ValueError`` naming what does not fit the neutral shapes."""
        own_shapes = {n: shape(p) for n, p in own.items()}
        bound = bind(self.family, framework, own_shapes, self.shapes)
        self.parameters = {neutral: own[name] for neutral, (name, _) in bound.items()}
        self.layouts = {neutral: layout for neutral, (_, layout) in bound.items()}
        # Tied copies (ParameterMap.tied): (the framework's parameter, the neutral name, its layout).
        copies = self.family.parameter_map(framework).copies(own_shapes)
        self.copies = [(own[name], neutral, layout) for name, (neutral, layout) in copies.items()]

    # Written once: the neutral state in and out, each tensor through its layout.

    def export_model_state(self) -> State:
        return {name: self.layouts[name].to_neutral(self._read(self.parameters[name])) for name in self.shapes}

    def import_model_state(self, state: State) -> None:
        check_state(self.shapes, state)
        for name, param in self.parameters.items():
            self._write(param, self.layouts[name].to_framework(state[name]))
        for param, name, layout in self.copies:
            self._write(param, layout.to_framework(state[name]))

    def export_optimizer_state(self) -> State:
        """AdamW's step and moments, named as in ``harness.contract.state.optimizer_state_names``."""
        step, moments = self._read_optimizer()
        neutral = {n: tuple(self.layouts[n].to_neutral(m) for m in pair) for n, pair in moments.items()}
        return optimizer_state(step, neutral)

    def import_optimizer_state(self, state: State) -> None:
        step, moments = optimizer_moments(self.shapes, state)
        own = {n: tuple(self.layouts[n].to_framework(m) for m in pair) for n, pair in moments.items()}
        self._write_optimizer(step, own)

    # What each framework supplies.

    @abstractmethod
    def _read(self, param: Any) -> np.ndarray:
        """A float32 numpy copy of one parameter."""

    @abstractmethod
    def _write(self, param: Any, value: np.ndarray) -> None: ...

    @abstractmethod
    def _read_optimizer(self) -> tuple[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """AdamW's step count and each parameter's (exp_avg, exp_avg_sq), as numpy copies."""

    @abstractmethod
    def _write_optimizer(self, step: int, moments: dict[str, tuple[np.ndarray, np.ndarray]]) -> None: ...

    @abstractmethod
    def broadcast_initial_state(self) -> None:
        """Horovod: make rank 0's weights and optimizer state every rank's."""

    @abstractmethod
    def seed_step(self, seed: int) -> None:
        """Reseed this rank's dropout randomness for the next step."""

    @abstractmethod
    def train_step(self, batch: Batch, lr: float, stop_requested: bool = False) -> StepResult:
        """One optimizer step on this rank's k micro-batches (a batch with a leading (k,) axis,
        k = train.accumulation_steps): k forward/backward passes, one allreduce, then the update
        unless the loss or the gradient norm is non-finite (the same decision on every rank: both
        are reduced values). ``stop_requested`` travels with the loss's allreduce: the result's
        ``stop`` is whether any rank asked. Under fp16 the loss is scaled for the backward pass; a gradient
        overflow skips the step and halves the scale, 2000 finite steps in a row double it
        (torch.amp.GradScaler's rule, in both)."""

    @abstractmethod
    def eval_sums(self, batch: Batch) -> EvalSums:
        """Weighted loss, correct-prediction and target sums of a batch in inference mode, no Horovod."""

    @abstractmethod
    def predict(self, inputs: Inputs) -> np.ndarray:
        """The model's logits for a batch's inputs, float32 numpy, in inference mode, no Horovod (what a
        task decodes with)."""


def bind(
    family: Family, framework: str, own: dict[str, tuple[int, ...]], shapes: Shapes
) -> dict[str, tuple[str, Layout]]:
    """The family's map for ``framework`` bound to a built model whose own parameters have shapes
    ``own`` (``ParameterMap.bind``: ``ValueError`` naming what does not fit)."""
    return family.parameter_map(framework).bind(f"the {framework} model of family {family.name!r}", own, shapes)


def step_seed(seed: int, step: int, rank: int) -> int:
    """The dropout seed of ``rank`` at ``step``: derived, so a resumed run redraws the same masks."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0])
