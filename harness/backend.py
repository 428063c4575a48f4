"""What the framework-free loop needs from a framework: the contract each backend implements.

Arrays crossing this boundary are numpy; states are the neutral dicts of harness/state.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from harness.config import RunConfig
from harness.distributed import Distributed
from harness.state import State


@dataclass
class StepResult:
    loss: float  # mean over ranks and micro-batches
    grad_norm: float  # global norm of the rank-averaged gradient, before clipping
    applied: bool  # False: the loss or gradient was non-finite and no rank changed its weights
    loss_scale: float = 1.0  # fp16's dynamic loss scale after this step (1.0 without scaling)


class Backend(ABC):
    """One framework's model, AdamW optimizer and Horovod-wrapped training step."""

    def __init__(self, config: RunConfig, dist: Distributed):
        self.config = config
        self.dist = dist

    @abstractmethod
    def export_model_state(self) -> State: ...

    @abstractmethod
    def import_model_state(self, state: State) -> None: ...

    @abstractmethod
    def export_optimizer_state(self) -> State:
        """AdamW's step and moments, named as in ``harness.state.optimizer_state_names``."""

    @abstractmethod
    def import_optimizer_state(self, state: State) -> None: ...

    @abstractmethod
    def broadcast_initial_state(self) -> None:
        """Horovod: make rank 0's weights and optimizer state every rank's."""

    @abstractmethod
    def seed_step(self, seed: int) -> None:
        """Reseed this rank's dropout randomness for the next step."""

    @abstractmethod
    def train_step(self, inputs: np.ndarray, targets: np.ndarray, lr: float) -> StepResult:
        """One optimizer step on this rank's (k, B, T) micro-batches (k = train.accumulation_steps):
        k forward/backward passes, one allreduce, then the update unless the loss or the gradient
        norm is non-finite (the same decision on every rank: both are reduced values). Under fp16
        the loss is scaled for the backward pass; a gradient overflow skips the step and halves
        the scale, 2000 finite steps in a row double it (torch.amp.GradScaler's rule, in both)."""

    @abstractmethod
    def eval_loss(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        """Mean next-token loss of a (B, T) batch in inference mode, no Horovod involved."""


def step_seed(seed: int, step: int, rank: int) -> int:
    """The dropout seed of ``rank`` at ``step``: derived, so a resumed run redraws the same masks."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0])
