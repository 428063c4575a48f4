"""The framework-neutral model state: ``dict[str, numpy.ndarray]``, one naming scheme for both twins.

Names are the twins' parameter paths (PyTorch ``state_dict`` style). Every tensor is float32 in
the layout below; both twins store their variables in this same layout, so a conversion is a
copy and never a transpose.

    wte.weight                    (vocab_size, n_embd)      token embedding; also the LM head when tied
    wpe.weight                    (block_size, n_embd)      learned positions only
    blocks.{i}.ln_1.weight|bias   (n_embd,)
    blocks.{i}.attn.qkv.weight    (3 * n_embd, n_embd)      (out_features, in_features): y = x W^T + b
    blocks.{i}.attn.qkv.bias      (3 * n_embd,)             rows: queries, keys, values; heads contiguous
    blocks.{i}.attn.proj.weight   (n_embd, n_embd)
    blocks.{i}.attn.proj.bias     (n_embd,)
    blocks.{i}.ln_2.weight|bias   (n_embd,)
    blocks.{i}.mlp.fc.weight      (mlp_hidden, n_embd)
    blocks.{i}.mlp.fc.bias        (mlp_hidden,)
    blocks.{i}.mlp.proj.weight    (n_embd, mlp_hidden)
    blocks.{i}.mlp.proj.bias      (n_embd,)
    ln_f.weight|bias              (n_embd,)
    lm_head.weight                (vocab_size, n_embd)      untied only
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
from safetensors.numpy import load_file, save_file

from harness.config import ModelConfig

State = dict[str, np.ndarray]


def state_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, in the twins' registration order."""
    d, h = config.n_embd, config.mlp_hidden
    shapes: dict[str, tuple[int, ...]] = {"wte.weight": (config.vocab_size, d)}
    if config.pos_encoding == "learned":
        shapes["wpe.weight"] = (config.block_size, d)
    for i in range(config.n_layer):
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
    shapes |= {"ln_f.weight": (d,), "ln_f.bias": (d,)}
    if not config.tie_embeddings:
        shapes["lm_head.weight"] = (config.vocab_size, d)
    return shapes


def init_state(config: ModelConfig, seed: int) -> State:
    """GPT-2 initialisation, drawn in numpy so both twins can start from the same numbers.

    Weights ~ N(0, 0.02), residual projections ~ N(0, 0.02 / sqrt(2 L)), biases 0, LayerNorm
    scales 1.
    """
    rng = np.random.default_rng(seed)
    residual_std = 0.02 / math.sqrt(2 * config.n_layer)
    state = {}
    for name, shape in state_shapes(config).items():
        if name.endswith(".bias"):
            value = np.zeros(shape)
        elif ".ln_" in name or name.startswith("ln_"):
            value = np.ones(shape)
        elif name.endswith("proj.weight"):
            value = rng.normal(0.0, residual_std, shape)
        else:
            value = rng.normal(0.0, 0.02, shape)
        state[name] = value.astype(np.float32)
    return state


def check_state(config: ModelConfig, state: State) -> None:
    """Raise ``ValueError`` unless ``state`` has exactly the names, shapes and dtype ``config`` needs."""
    expected = state_shapes(config)
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise ValueError(f"model state does not match the config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, shape in expected.items():
        if tuple(state[name].shape) != shape or state[name].dtype != np.float32:
            raise ValueError(
                f"model state tensor {name!r} is {state[name].dtype}{tuple(state[name].shape)}, "
                f"the config needs float32{shape}"
            )


def sinusoidal_positions(block_size: int, n_embd: int) -> np.ndarray:
    """Fixed encodings of "Attention Is All You Need": PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(.).

    Returns (block_size, n_embd) float32; shared by both twins so they add identical numbers.
    """
    positions = np.arange(block_size, dtype=np.float64)[:, None]  # (T, 1)
    rates = 1.0 / 10000.0 ** (np.arange(0, n_embd, 2, dtype=np.float64) / n_embd)  # (ceil(d/2),)
    table = np.zeros((block_size, n_embd))
    table[:, 0::2] = np.sin(positions * rates)
    table[:, 1::2] = np.cos(positions * rates[: n_embd // 2])
    return table.astype(np.float32)


def save_state(path, state: State, metadata: dict[str, str] | None = None) -> None:
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(path), metadata=metadata)


def load_state(path) -> State:
    return load_file(str(path))


def weight_decay_names(config: ModelConfig) -> set[str]:
    """Parameters AdamW decays in both twins: matrices and embeddings, not biases or LayerNorms."""
    return {name for name, shape in state_shapes(config).items() if len(shape) >= 2}


def optimizer_state_names(config: ModelConfig) -> list[str]:
    """The neutral AdamW state: ``step`` (1,) int64, then ``exp_avg.<param>`` and ``exp_avg_sq.<param>``
    shaped like their parameter, float32 (torch's names; both twins store the same moments)."""
    params = list(state_shapes(config))
    return ["step", *(f"exp_avg.{n}" for n in params), *(f"exp_avg_sq.{n}" for n in params)]


def state_checksum(state: State) -> str:
    """SHA-256 over every tensor's name and bytes, in name order: equal iff the states are bitwise equal."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(state[name]).tobytes())
    return digest.hexdigest()
