"""How one framework's own parameters map onto a family's neutral state: a name rule, and a layout
per tensor (torch's ``nn.Linear`` stores (out, in), Keras's ``Dense`` (in, out)).

A family declares one ``ParameterMap`` per framework that needs one (``Family.parameter_maps``);
without one, a framework's names and layouts are the neutral state's. ``ParameterMap.bind`` checks a
built model against the neutral shapes and refuses, in one line naming the parameters, a parameter
left unmapped, two mapped onto one, a neutral tensor nobody holds, a shape that does not match after
its layout, or a model with no weights yet. Numpy only: the backends read and write the arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import numpy as np

from harness.contract.state import Shapes, State, check_state

SHOWN = 5  # names listed in a refusal, at most


@dataclass(frozen=True)
class Layout:
    """The framework's array is the neutral one with its axes permuted by ``axes`` (None: as they are),
    then size-1 axes inserted at ``unit_axes`` (transformers' TF Conv1D keeps a bias (n,) as (1, n))."""

    axes: tuple[int, ...] | None = None
    unit_axes: tuple[int, ...] = ()

    def framework_shape(self, neutral: tuple[int, ...]) -> tuple[int, ...]:
        permuted = tuple(neutral) if self.axes is None else tuple(neutral[a] for a in self.axes)
        shape = list(permuted)
        for axis in sorted(self.unit_axes):
            shape.insert(axis, 1)
        return tuple(shape)

    def neutral_shape(self, framework: tuple[int, ...]) -> tuple[int, ...]:
        squeezed = tuple(n for i, n in enumerate(framework) if i not in self.unit_axes)
        return squeezed if self.axes is None else tuple(squeezed[a] for a in np.argsort(self.axes))

    def to_framework(self, neutral: np.ndarray) -> np.ndarray:
        permuted = neutral if self.axes is None else np.ascontiguousarray(neutral.transpose(self.axes))
        return np.expand_dims(permuted, self.unit_axes) if self.unit_axes else permuted

    def to_neutral(self, framework: np.ndarray) -> np.ndarray:
        squeezed = np.squeeze(framework, self.unit_axes) if self.unit_axes else framework
        return squeezed if self.axes is None else np.ascontiguousarray(squeezed.transpose(np.argsort(self.axes)))


IDENTITY = Layout()
TRANSPOSED = Layout((1, 0))  # a 2-D matrix stored the other way round: Dense (in, out) vs Linear (out, in)
ROW = Layout(unit_axes=(0,))  # a vector (n,) stored as a (1, n) row


@dataclass(frozen=True)
class ParameterMap:
    """One framework's names and layouts. ``name``: the neutral name of each of the framework's own
    parameter names (a table, or a rule returning None for a parameter it does not map); ``layout``:
    the layout of each neutral tensor in this framework (a table or a rule; identity where absent)."""

    name: Mapping[str, str] | Callable[[str], str | None] = field(default_factory=dict)
    layout: Mapping[str, Layout] | Callable[[str], Layout | None] = field(default_factory=dict)
    # A second parameter of this framework holding a neutral tensor that the map already gives to one
    # (an LM head kept apart from the embedding where the other framework ties them): own name ->
    # (neutral name, its layout). The backends train the two as one tensor: their gradients summed
    # into the first, whose update the copy then takes.
    tied: Mapping[str, tuple[str, Layout]] = field(default_factory=dict)
    # The framework's parameters that are no part of the neutral state: computed by the model itself
    # and never trained (Marian's sinusoidal position tables, which transformers' TF model holds as
    # trainable variables and its torch model as frozen ones). No backend trains, saves or loads them.
    fixed: Collection[str] = ()

    def neutral_name(self, own: str) -> str | None:
        if callable(self.name):
            return self.name(own)
        return self.name.get(own) if self.name else own  # no table: the names are the neutral ones

    def layout_of(self, neutral: str) -> Layout:
        found = self.layout(neutral) if callable(self.layout) else self.layout.get(neutral)
        return found or IDENTITY

    def resolve(self, what: str, own: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[str, Layout]]:
        """neutral name -> (the framework's parameter name, its layout), in the model's own order, for a
        built model whose own parameters have shapes ``own``; ``ValueError`` for a model without weights,
        a parameter the map leaves out and two mapped onto one. ``what`` names the model in messages."""
        if not own:
            raise ValueError(f"{what} has no weights yet: build it (call it once on an input) before training")
        resolved: dict[str, tuple[str, Layout]] = {}
        unmapped, doubled = [], []
        for name in own:
            if name in self.tied or name in self.fixed:
                continue
            target = self.neutral_name(name)
            if target is None:
                unmapped.append(name)
            elif target in resolved:
                doubled.append(f"{resolved[target][0]} and {name} -> {target}")
            else:
                resolved[target] = (name, self.layout_of(target))
        refuse(
            what, [("parameters mapped to no neutral tensor", unmapped), ("parameters mapped onto one tensor", doubled)]
        )
        return resolved

    def to_neutral(self, what: str, own: Mapping[str, np.ndarray], gradients: bool = False) -> State:
        """The model's own arrays as the neutral tensors: its parameters (a tied copy is the same
        tensor again), or with ``gradients`` their gradients (a tied copy's added in)."""
        resolved = self.resolve(what, {name: array.shape for name, array in own.items()})
        neutral = {target: layout.to_neutral(own[name]) for target, (name, layout) in resolved.items()}
        for name, (target, layout) in self.tied.items():
            if gradients and name in own:
                neutral[target] = neutral[target] + layout.to_neutral(own[name])
        return neutral

    def to_framework(self, what: str, own: Mapping[str, tuple[int, ...]], state: State) -> dict[str, np.ndarray]:
        """``state`` as arrays for the model's own parameters (tied copies too), whose shapes are
        ``own``; ``ValueError`` unless it has exactly their neutral names and shapes."""
        resolved = self.resolve(what, own)
        check_state({neutral: layout.neutral_shape(own[name]) for neutral, (name, layout) in resolved.items()}, state)
        arrays = {name: layout.to_framework(state[neutral]) for neutral, (name, layout) in resolved.items()}
        copies = {name: layout.to_framework(state[target]) for name, (target, layout) in self.copies(own).items()}
        return arrays | copies

    def copies(self, own: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[str, Layout]]:
        """The tied copies among a model's own parameters: own name -> (neutral name, layout)."""
        return {name: self.tied[name] for name in own if name in self.tied}

    def bind(self, what: str, own: Mapping[str, tuple[int, ...]], neutral: Shapes) -> dict[str, tuple[str, Layout]]:
        """``resolve``, checked against the neutral shapes: every neutral tensor held, by a parameter
        of its shape after its layout."""
        resolved = self.resolve(what, own)
        unknown = [f"{name} -> {target}" for target, (name, _) in resolved.items() if target not in neutral]
        missing = [name for name in neutral if name not in resolved]
        absent = [name for name in self.tied if name not in own]
        absent_fixed = [name for name in self.fixed if name not in own]
        unknown += [f"{name} -> {target}" for name, (target, _) in self.copies(own).items() if target not in neutral]
        shapes = []
        pairs = [(name, target, layout) for target, (name, layout) in resolved.items()]
        for name, target, layout in pairs + [(n, t, layout) for n, (t, layout) in self.copies(own).items()]:
            expected = layout.framework_shape(tuple(neutral[target])) if target in neutral else None
            if expected is not None and tuple(own[name]) != expected:
                shapes.append(f"{name} is {tuple(own[name])}, {target} needs {expected}")
        refuse(
            what,
            [
                ("parameters mapped to no neutral tensor", unknown),
                ("neutral tensors no parameter holds", missing),
                ("tied parameters the model does not have", absent),
                ("fixed parameters the model does not have", absent_fixed),
                ("shapes that do not match", shapes),
            ],
        )
        return resolved


IDENTITY_MAP = ParameterMap()  # a framework's names and layouts are the neutral ones


def refuse(what: str, problems: list[tuple[str, list[str]]]) -> None:
    """One ``ValueError`` line listing each kind of problem found (a few names of each), if any."""
    found = [
        f"{label}: {', '.join(items[:SHOWN])}{' ...' * (len(items) > SHOWN)}" for label, items in problems if items
    ]
    if found:
        raise ValueError(f"{what} does not map onto its neutral state: {'; '.join(found)}")
