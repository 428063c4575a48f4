"""PyTorch's side of the generic pieces: a module's neutral state in and out, and the loss."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.contract.mapping import IDENTITY_MAP, Layout, ParameterMap
from harness.contract.state import State


def read(param: torch.Tensor) -> np.ndarray:
    """A float32 numpy copy of one parameter (or optimizer slot), wherever it lives."""
    return param.detach().cpu().numpy().copy()


def write(param: torch.Tensor, value: np.ndarray) -> None:
    """Copy ``value`` into ``param`` in place, onto its device."""
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def export_state(model: nn.Module, parameter_map: ParameterMap = IDENTITY_MAP) -> State:
    """The module's parameters as the neutral state (harness/contract/state.py), float32 numpy copies,
    through the family's ``parameter_map`` for torch."""
    return parameter_map.to_neutral("the torch model", {name: read(p) for name, p in model.named_parameters()})


def import_state(model: nn.Module, state: State, parameter_map: ParameterMap = IDENTITY_MAP) -> None:
    """Load a neutral state in place through ``parameter_map``; ``ValueError`` unless it has exactly
    the module's names and shapes (after their layouts)."""
    named = dict(model.named_parameters())
    own = parameter_map.to_framework("the torch model", {name: tuple(p.shape) for name, p in named.items()}, state)
    for name, value in own.items():
        write(named[name], value)


def relayout(tensor: torch.Tensor, source: Layout, target: Layout) -> torch.Tensor:
    """A tensor held in ``source``'s layout, in ``target``'s: a tied copy's gradient for its
    parameter, or that parameter for the copy."""
    if source.unit_axes:
        tensor = tensor.squeeze(source.unit_axes)
    if source.axes is not None:
        tensor = tensor.permute(*np.argsort(source.axes).tolist())
    if target.axes is not None:
        tensor = tensor.permute(*target.axes)
    for axis in sorted(target.unit_axes):
        tensor = tensor.unsqueeze(axis)
    return tensor


def call(model: nn.Module, inputs: torch.Tensor | Mapping[str, torch.Tensor]):
    """The model on a batch's inputs: one tensor positionally, named tensors as keyword arguments."""
    return model(**inputs) if isinstance(inputs, Mapping) else model(inputs)


def cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy of logits (..., C) against class ids (...), weighted by ``weights`` (...).

    With label smoothing epsilon each target's loss is (1 - epsilon) * (-log p_target) +
    epsilon * mean_c(-log p_c): torch's rule, which models_tf/ops.py spells out.
    """
    flat_logits, flat_targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)  # (N, C), (N,)
    if weights is None:
        return F.cross_entropy(flat_logits, flat_targets, label_smoothing=label_smoothing)
    losses = F.cross_entropy(flat_logits, flat_targets, reduction="none", label_smoothing=label_smoothing)  # (N,)
    flat_weights = weights.reshape(-1)
    return (losses * flat_weights).sum() / flat_weights.sum()


def eval_sums(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None, loss: Callable | None = None
) -> tuple[float, float, float]:
    """(weighted loss sum, weighted count of correct argmax predictions, sum of weights): the loss is
    cross-entropy, or a family's own ``loss`` (its weighted mean times the weights' sum)."""
    flat_logits, flat_targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)  # (N, C), (N,)
    flat_weights = torch.ones_like(flat_targets, dtype=torch.float32) if weights is None else weights.reshape(-1)
    if loss is None:
        losses = F.cross_entropy(flat_logits, flat_targets, reduction="none")  # (N,)
        loss_sum = (losses * flat_weights).sum()
    else:
        loss_sum = loss(logits, targets, weights, 0.0) * flat_weights.sum()
    correct = (flat_logits.argmax(-1) == flat_targets).float()
    return loss_sum.item(), (correct * flat_weights).sum().item(), flat_weights.sum().item()
