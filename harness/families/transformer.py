"""What the built-in Transformer families share: the blocks' parameter shapes, GPT-2's
initialisation rule, and the token checks both twins of each family raise word for word."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.contract.state import State


def check_token_shape(config: Any, shape: tuple, dtype_name: str) -> None:
    """Validate a token batch's static properties; both twins raise these exact messages (of any
    family whose config has ``block_size`` and ``vocab_size``)."""
    if len(shape) != 2:
        raise ValueError(f"tokens must have shape (batch, seq_len), received shape {tuple(shape)}")
    if "int" not in dtype_name:
        raise ValueError(f"tokens must be an integer tensor, received dtype {dtype_name}")
    if shape[1] is not None and shape[1] > config.block_size:
        raise ValueError(f"sequence length {shape[1]} exceeds the model's block_size {config.block_size}")


def token_range_message(config: Any) -> str:
    return f"token ids must be in [0, {config.vocab_size}), the model's vocab_size"


def check_token_range(config: Any, min_id: int, max_id: int) -> None:
    if min_id < 0 or max_id >= config.vocab_size:
        raise ValueError(f"{token_range_message(config)}; received ids in [{min_id}, {max_id}]")


def block_shapes(n_layer: int, d: int, h: int) -> dict[str, tuple[int, ...]]:
    """The Transformer blocks' parameters (``blocks.{i}.*``, width ``d``, MLP width ``h``), shared
    by every family built from these blocks."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(n_layer):
        p = f"blocks.{i}."
        shapes |= {
            p + "ln_1.weight": (d,),
            p + "ln_1.bias": (d,),
            p + "attn.qkv.weight": (3 * d, d),
            p + "attn.qkv.bias": (3 * d,),
            p + "attn.proj.weight": (d, d),
            p + "attn.proj.bias": (d,),
            p + "ln_2.weight": (d,),
            p + "ln_2.bias": (d,),
            p + "mlp.fc.weight": (h, d),
            p + "mlp.fc.bias": (h,),
            p + "mlp.proj.weight": (d, h),
            p + "mlp.proj.bias": (d,),
        }
    return shapes


def gpt2_init(shapes: dict[str, tuple[int, ...]], n_layer: int, seed: int) -> State:
    """GPT-2 initialisation of ``shapes``, drawn in numpy so both twins can start from the same numbers.

    Weights ~ N(0, 0.02), residual projections (``*proj.weight``) ~ N(0, 0.02 / sqrt(2 L)), biases
    (``*bias``) 0, LayerNorm scales (``*.ln*``, ``ln_*``) 1.
    """
    rng = np.random.default_rng(seed)
    residual_std = 0.02 / math.sqrt(2 * n_layer)
    state = {}
    for name, shape in shapes.items():
        if name.endswith("bias"):
            value = np.zeros(shape)
        elif ".ln" in name or name.startswith("ln_"):
            value = np.ones(shape)
        elif name.endswith("proj.weight"):
            value = rng.normal(0.0, residual_std, shape)
        else:
            value = rng.normal(0.0, 0.02, shape)
        state[name] = value.astype(np.float32)
    return state
