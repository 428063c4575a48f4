"""What the built-in Transformer families share: their config's common fields and checks, the
blocks' parameter shapes, GPT-2's initialisation rule, and the token checks both twins of each
family raise word for word."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from harness.contract.state import State


@dataclass(frozen=True)
class TransformerConfig:
    """The fields every built-in Transformer family's config has; each family's config adds its own.

    Attributes:
        vocab_size: number of token ids.
        n_layer: number of Transformer blocks (L).
        n_head: attention heads per block (H); ``n_embd`` must be divisible by it.
        n_embd: model width (d_model).
        mlp_hidden: width of each block's GELU MLP (usually 4 * n_embd).
        block_size: maximum sequence length (T_max).
        dropout: dropout rate on embeddings, attention output and MLP output (0 disables).
        layer_norm_eps: epsilon of every LayerNorm.
    """

    vocab_size: int = 256
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 192
    mlp_hidden: int = 768
    block_size: int = 128
    dropout: float = 0.0
    layer_norm_eps: float = 1e-5

    POSITIVE: ClassVar[tuple[str, ...]] = ("vocab_size", "n_layer", "n_head", "n_embd", "mlp_hidden", "block_size")

    def __post_init__(self) -> None:
        name = type(self).__name__
        for field in self.POSITIVE:
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}.{field} must be a positive integer, received {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"{name}.n_embd must be divisible by n_head, received n_embd={self.n_embd}, n_head={self.n_head}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{name}.dropout must be in [0, 1), received {self.dropout!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"{name}.layer_norm_eps must be positive, received {self.layer_norm_eps!r}")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def replace(self, **changes) -> Self:
        return dataclasses.replace(self, **changes)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape, in the twins' registration order (the family's)."""
        raise NotImplementedError

    def num_params(self) -> int:
        """Trainable parameters (a tied head is one tensor of the state, so it counts once)."""
        return sum(math.prod(shape) for shape in self.state_shapes().values())

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token, 6N + 12·L·H·Q·T (PaLM appendix B; nanoGPT's estimate_mfu); for
        an encoder too (its attention is bidirectional, but the dense kernels compute all T x T scores)."""
        T = seq_len or self.block_size
        return 6 * self.num_params() + 12 * self.n_layer * self.n_head * self.head_size * T


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
