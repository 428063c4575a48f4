"""A family's twins checked against each other, as ``harness check-family`` prints it and a user's own
pytest suite calls it (``assert_family_agrees``): from the same neutral state and the same batch of
the family's own task, through each framework's parameter map.

Each check is one row: what was measured, its bound, and whether it holds (a NaN never does).
- ``logits``: largest |torch - TF| logit on the batch (inference mode), over the largest |logit|.
- ``loss``: |torch - TF| / |torch| of the family's loss on it.
- ``gradients``: largest |torch - TF| gradient element over a parameter's gradient norm, for the
  worst parameter (gradients mapped to neutral names and layouts). A norm below GRADIENT_FLOOR of
  the whole gradient's counts as that: a tensor whose true gradient is 0 (an attention key's bias,
  which softmax cancels) holds rounding noise in both frameworks, different noise.
- ``adamw step``: both frameworks' clipping and AdamW (the backends' own) applied to the same
  gradients: largest |torch - TF| over parameters and moments afterwards, relative to the tensor's
  largest |value|, for the worst tensor.
- ``state round trip``: the neutral state loaded into each model and read back: largest |change|
  (0: the maps' names and layouts invert exactly).
- ``checkpoint torch -> tf`` / ``tf -> torch``: the state and AdamW moments after the step written
  as a real checkpoint by one framework, loaded by the other and read back: largest |change|.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import torch

from harness.contract.config import RunConfig
from harness.contract.family import Family
from harness.contract.state import State, optimizer_moments, optimizer_state, zero_optimizer_state
from harness.storage.checkpoint import load_checkpoint, save_checkpoint
from harness.testing.twins import GRADIENT_RTOL, LOSS_RTOL, family_twins, twin_results
from models_tf import backend as tf_backend
from models_tf import ops as tf_ops
from models_torch import backend as torch_backend
from models_torch import ops as torch_ops

# fp32 on CPUs: about 10x the worst over seeds 0-9 of gpt and the Keras pair (tiny, default), bert
# (tiny, tiny-classify), 2026-12-02, torch 2.13 / TF 2.21; loss and gradients are harness.testing.twins'.
LOGITS_RTOL = 1e-5  # worst 6.5e-7 (keras pair default)
ADAMW_RTOL = 1.5e-5  # about 100 float32 ulps; worst 1.33e-6 (gpt default)
EXACT = 0.0  # a copy through names and layouts changes no bit
# Marian's key biases: gradient norms ~1e-12 of rounding noise, 1e-15..1e-12 apart (2026-12-02).
GRADIENT_FLOOR = 1e-4


@dataclass(frozen=True)
class Check:
    """One row of the table: ``measured`` against ``bound`` (``what`` says what was measured)."""

    name: str
    measured: float
    bound: float
    what: str

    @property
    def passed(self) -> bool:
        return bool(self.measured <= self.bound)  # NaN fails


def largest(array: np.ndarray) -> float:
    return float(np.max(np.abs(array)))


def check_family(family: Family, config: RunConfig, seed: int = 0, examples: int = 2) -> list[Check]:
    """Every row of the module docstring for ``family`` at ``config`` (a run config: its model, data,
    train settings), from the family's initial state of ``seed`` and the first ``examples`` examples
    of its task's training split."""
    task = family.task(config.model)
    split, _ = task.splits(config.data)
    batch = task.batch(split, np.arange(min(examples, len(split))), np.random.default_rng(seed))
    state = family.init_state(config.model, seed)
    pt, tfm = family_twins(family, config.model, state)
    (pt_logits, pt_loss, pt_grads), (tf_logits, tf_loss, tf_grads) = twin_results(
        pt, tfm, batch.inputs, batch.targets, batch.weights, family
    )
    whole = math.sqrt(sum(float(np.sum(np.square(g))) for g in pt_grads.values()))
    gradient_scale = lambda g: max(float(np.linalg.norm(g)), GRADIENT_FLOOR * whole)  # noqa: E731
    checks = [
        Check("logits", worst({"": pt_logits}, {"": tf_logits}, largest), LOGITS_RTOL, "max |torch - TF| / max|logit|"),
        Check("loss", abs(pt_loss - tf_loss) / abs(pt_loss), LOSS_RTOL, "|torch - TF| / |torch|"),
        Check("gradients", worst(pt_grads, tf_grads, gradient_scale), GRADIENT_RTOL, "max |torch - TF| / grad norm"),
    ]
    stepped = {"torch": TorchSide(family, config, pt), "tf": TFSide(family, config, tfm)}
    for side in stepped.values():
        side.step(pt_grads)
    after = {fw: side.export() for fw, side in stepped.items()}
    (pt_model, pt_optimizer), (tf_model, tf_optimizer) = after["torch"], after["tf"]
    stepped_gap = max(worst(pt_model, tf_model, largest), worst(pt_optimizer, tf_optimizer, largest))
    checks.append(Check("adamw step", stepped_gap, ADAMW_RTOL, "max |torch - TF| / max |value|"))
    fresh = {"torch": TorchSide(family, config), "tf": TFSide(family, config)}
    for framework, side in fresh.items():
        side.load_model(state)
        checks.append(Check(f"state round trip {framework}", changed(state, side.export()[0]), EXACT, "max |change|"))
    with tempfile.TemporaryDirectory(prefix="check-family-") as tmp:
        for source, target in (("torch", "tf"), ("tf", "torch")):
            model, optimizer = after[source]
            trainer = {"framework": source, "family": family.spec, "config": config.to_dict()}
            path = save_checkpoint(Path(tmp) / source, 1, model, optimizer, trainer, keep=1)
            loaded = load_checkpoint(path, family, config.model)
            fresh[target].load_model(loaded.model)
            fresh[target].load_optimizer(loaded.optimizer)
            read_back = fresh[target].export()
            crossing = max(changed(model, read_back[0]), changed(optimizer, read_back[1]))
            checks.append(Check(f"checkpoint {source} -> {target}", crossing, EXACT, "max |change|"))
    return checks


def assert_family_agrees(family: Family, config: RunConfig, seed: int = 0, examples: int = 2) -> list[Check]:
    """``check_family``, failing with the table when a row misses its bound; returns the rows."""
    checks = check_family(family, config, seed, examples)
    assert all(check.passed for check in checks), f"{family.name}'s twins disagree:\n{format_checks(checks)}"
    return checks


def format_checks(checks: list[Check]) -> str:
    rows = [("check", "measured", "bound", "", "what")]
    rows += [(c.name, f"{c.measured:.2e}", f"{c.bound:g}", "ok" if c.passed else "FAIL", c.what) for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4] for row in rows
    )


def worst(first: State, second: State, scale) -> float:
    """The largest max|first - second| / scale(first's tensor) over the tensors of two states (NaN if
    any is NaN); a tensor equal in both counts 0."""
    gaps = []
    for name, a in first.items():
        gap = float(np.max(np.abs(a - second[name]), initial=0.0))
        size = float(scale(a))
        gaps.append(gap if gap == 0 or math.isnan(gap) else (gap / size if size else math.inf))
    return max(gaps, key=lambda gap: math.inf if math.isnan(gap) else gap)


def changed(before: State, after: State) -> float:
    """The largest |change| of any tensor (inf if the names differ)."""
    if before.keys() != after.keys():
        return math.inf
    return worst(before, after, lambda a: 1.0)


class TorchSide:
    """The torch model of the family, its AdamW and clipping (the backend's), without Horovod."""

    def __init__(self, family: Family, config: RunConfig, model: torch.nn.Module | None = None):
        self.family, self.config = family, config
        self.model = model or torch_backend.build_model(family, config.model)
        own = dict(self.model.named_parameters())
        self.map = family.parameter_map("torch")
        shapes = family.state_shapes(config.model)
        bound = self.map.bind("the torch model", {n: tuple(p.shape) for n, p in own.items()}, shapes)
        self.parameters = {neutral: own[name] for neutral, (name, _) in bound.items()}
        self.layouts = {neutral: layout for neutral, (_, layout) in bound.items()}
        self.adamw = torch_backend.make_adamw(self.parameters, family.decayed(config.model), config.train)
        self.load_optimizer(zero_optimizer_state(shapes))  # moments up front, as the backend makes them

    def step(self, grads: State) -> None:
        for name, param in self.parameters.items():
            param.grad = torch.from_numpy(self.layouts[name].to_framework(grads[name]).copy())
        torch_backend.clip_gradients(self.parameters, self.config.train)
        self.adamw.step()

    def export(self) -> tuple[State, State]:
        model = torch_ops.export_state(self.model, self.map)
        slots = {n: self.adamw.state[p] for n, p in self.parameters.items()}
        moments = {
            n: tuple(self.layouts[n].to_neutral(torch_ops.read(s[k])) for k in ("exp_avg", "exp_avg_sq"))
            for n, s in slots.items()
        }
        return model, optimizer_state(int(next(iter(slots.values()))["step"]), moments)

    def load_model(self, model: State) -> None:
        torch_ops.import_state(self.model, model, self.map)

    def load_optimizer(self, optimizer: State) -> None:
        step, moments = optimizer_moments(self.family.state_shapes(self.config.model), optimizer)
        for name, param in self.parameters.items():
            exp_avg, exp_avg_sq = (torch.from_numpy(self.layouts[name].to_framework(m).copy()) for m in moments[name])
            self.adamw.state[param] = {"step": torch.tensor(float(step)), "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}


class TFSide:
    """The TF model of the family, its AdamW and clipping (the backend's), without Horovod."""

    def __init__(self, family: Family, config: RunConfig, model: Any = None):
        self.family, self.config = family, config
        self.model = model or tf_backend.build_model(family, config.model)
        own = dict(tf_ops.named_parameters(self.model))
        self.map = family.parameter_map("tf")
        shapes = family.state_shapes(config.model)
        bound = self.map.bind("the tf model", {n: tuple(v.shape) for n, v in own.items()}, shapes)
        self.parameters = {neutral: own[name] for neutral, (name, _) in bound.items()}
        self.layouts = {neutral: layout for neutral, (_, layout) in bound.items()}
        self.adamw = tf_backend.make_adamw(self.parameters, family.decayed(config.model), config.train)

    def step(self, grads: State) -> None:
        own = [tf.constant(self.layouts[n].to_framework(grads[n])) for n in self.parameters]
        clip, _ = tf_backend.clip_factor(own, self.config.train)
        lr = tf.constant(self.config.train.lr, tf.float32)
        self.adamw.apply(dict(zip(self.parameters, own, strict=True)), self.parameters, lr, clip)

    def export(self) -> tuple[State, State]:
        model = tf_ops.export_state(self.model, self.map)
        moments = {
            n: tuple(
                self.layouts[n].to_neutral(tf_ops.read(slot[n])) for slot in (self.adamw.exp_avg, self.adamw.exp_avg_sq)
            )
            for n in self.parameters
        }
        return model, optimizer_state(int(self.adamw.step.numpy()[0]), moments)

    def load_model(self, model: State) -> None:
        tf_ops.import_state(self.model, model, self.map)

    def load_optimizer(self, optimizer: State) -> None:
        step, moments = optimizer_moments(self.family.state_shapes(self.config.model), optimizer)
        self.adamw.step.assign([step])
        for name, (exp_avg, exp_avg_sq) in moments.items():
            self.adamw.exp_avg[name].assign(self.layouts[name].to_framework(exp_avg))
            self.adamw.exp_avg_sq[name].assign(self.layouts[name].to_framework(exp_avg_sq))
