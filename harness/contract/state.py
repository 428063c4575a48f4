"""The framework-neutral state: ``dict[str, numpy.ndarray]``, one naming scheme for both twins.

Model states are named by the family's parameter names (``Family.state_shapes``), every tensor
float32 in the family's documented layout, so a conversion between the twins is a copy. The
optimizer state is AdamW's, named after torch: ``step`` (1,) int64, then ``exp_avg.<param>`` and
``exp_avg_sq.<param>`` shaped like their parameter, float32; both frameworks store the same moments.
"""

from __future__ import annotations

import hashlib
import os
import re

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

State = dict[str, np.ndarray]
Shapes = dict[str, tuple[int, ...]]
OS_ERROR = re.compile(r"\(os error (\d+)\)")  # how safetensors reports a failed write


def check_state(shapes: Shapes, state: State) -> None:
    """Raise ``ValueError`` unless ``state`` has exactly these names and shapes, all float32."""
    missing = sorted(shapes.keys() - state.keys())
    unexpected = sorted(state.keys() - shapes.keys())
    if missing or unexpected:
        raise ValueError(f"model state does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, shape in shapes.items():
        if tuple(state[name].shape) != tuple(shape) or state[name].dtype != np.float32:
            raise ValueError(
                f"model state tensor {name!r} is {state[name].dtype}{tuple(state[name].shape)}, "
                f"the model needs float32{tuple(shape)}"
            )


def optimizer_state_names(shapes: Shapes) -> list[str]:
    """The neutral AdamW state's names, in order (module docstring)."""
    return ["step", *(f"exp_avg.{n}" for n in shapes), *(f"exp_avg_sq.{n}" for n in shapes)]


def optimizer_state(step: int, moments: dict[str, tuple[np.ndarray, np.ndarray]]) -> State:
    """The neutral AdamW state from its step count and each parameter's (exp_avg, exp_avg_sq)."""
    state = {"step": np.array([step], np.int64)}
    state |= {f"exp_avg.{name}": np.asarray(m, np.float32) for name, (m, _) in moments.items()}
    state |= {f"exp_avg_sq.{name}": np.asarray(v, np.float32) for name, (_, v) in moments.items()}
    return state


def zero_optimizer_state(shapes: Shapes) -> State:
    """AdamW before its first step: step 0, zero moments."""
    return optimizer_state(0, {name: (np.zeros(shape, np.float32),) * 2 for name, shape in shapes.items()})


def optimizer_moments(shapes: Shapes, state: State) -> tuple[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(step, {param: (exp_avg, exp_avg_sq)}) of a neutral AdamW state; ``ValueError`` if it does not
    fit a model of these shapes."""
    if sorted(state) != sorted(optimizer_state_names(shapes)):
        raise ValueError("the optimizer state does not match the model's parameters")
    for name, shape in shapes.items():
        for slot in (f"exp_avg.{name}", f"exp_avg_sq.{name}"):
            if tuple(state[slot].shape) != tuple(shape):
                raise ValueError(f"optimizer state {slot!r} is {tuple(state[slot].shape)}, the model needs {shape}")
    step = int(state["step"][0])
    return step, {name: (state[f"exp_avg.{name}"], state[f"exp_avg_sq.{name}"]) for name in shapes}


def save_state(path, state: State, metadata: dict[str, str] | None = None) -> None:
    """Write ``state`` as safetensors; a failed write (a full disk, say) is an ``OSError`` with its errno."""
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(path), metadata=metadata)
    except SafetensorError as err:
        code = OS_ERROR.search(str(err))
        if code is None:
            raise
        raise OSError(int(code[1]), os.strerror(int(code[1])), str(path)) from err


def load_state(path) -> State:
    return load_file(str(path))


def state_checksum(state: State) -> str:
    """SHA-256 over every tensor's name and bytes, in name order: equal iff the states are bitwise equal."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(state[name]).tobytes())
    return digest.hexdigest()
