"""Model configuration shared by both framework twins, its presets, and input validation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

POSITIONAL_ENCODINGS = ("learned", "sinusoidal")


@dataclass(frozen=True)
class ModelConfig:
    """A decoder-only Transformer LM; both twins build exactly this architecture.

    Attributes:
        vocab_size: number of token ids (256 for the byte-level tokenizer).
        n_layer: number of Transformer blocks (L).
        n_head: attention heads per block (H); ``n_embd`` must be divisible by it.
        n_embd: model width (d_model).
        mlp_hidden: width of each block's GELU MLP (usually 4 * n_embd).
        block_size: maximum sequence length (T_max).
        dropout: dropout rate on embeddings, attention output and MLP output (0 disables).
        pos_encoding: ``"learned"`` position embeddings (``wpe``) or fixed ``"sinusoidal"`` ones.
        tie_embeddings: share the LM head with the token embedding ``wte``.
        layer_norm_eps: epsilon of every LayerNorm.
    """

    vocab_size: int = 256
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 192
    mlp_hidden: int = 768
    block_size: int = 128
    dropout: float = 0.0
    pos_encoding: Literal["learned", "sinusoidal"] = "learned"
    tie_embeddings: bool = True
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_layer", "n_head", "n_embd", "mlp_hidden", "block_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, received {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"ModelConfig.n_embd must be divisible by n_head, received n_embd={self.n_embd}, n_head={self.n_head}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), received {self.dropout!r}")
        if self.pos_encoding not in POSITIONAL_ENCODINGS:
            raise ValueError(
                f"ModelConfig.pos_encoding must be one of {POSITIONAL_ENCODINGS}, received {self.pos_encoding!r}"
            )
        if not self.layer_norm_eps > 0:
            raise ValueError(f"ModelConfig.layer_norm_eps must be positive, received {self.layer_norm_eps!r}")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def replace(self, **changes) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def num_params(self) -> int:
        """Trainable parameters, counting a tied LM head once."""
        d, L = self.n_embd, self.n_layer
        per_block = (
            2 * 2 * d  # ln_1, ln_2
            + d * 3 * d
            + 3 * d  # attn.qkv
            + d * d
            + d  # attn.proj
            + d * self.mlp_hidden
            + self.mlp_hidden  # mlp.fc
            + self.mlp_hidden * d
            + d  # mlp.proj
        )
        embeddings = self.vocab_size * d + (self.block_size * d if self.pos_encoding == "learned" else 0)
        head = 0 if self.tie_embeddings else self.vocab_size * d
        return embeddings + L * per_block + 2 * d + head

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token, 6N + 12·L·H·Q·T (PaLM appendix B; nanoGPT's estimate_mfu)."""
        T = seq_len or self.block_size
        return 6 * self.num_params() + 12 * self.n_layer * self.n_head * self.head_size * T


# `tiny` runs a training step in milliseconds: for tests. `default` (~1.85 M parameters,
# ~12 MFLOP per token) is sized for the byte-level default corpus (~420 K training tokens) on
# 2 CPU cores: a few thousand tokens/s, so a few hundred steps take about a minute per framework,
# while 4 layers of width 192 are enough to learn words and Python-doc structure at byte level.
MODEL_PRESETS = {
    "tiny": ModelConfig(n_layer=2, n_head=2, n_embd=32, mlp_hidden=128, block_size=32),
    "default": ModelConfig(),
}


def model_preset(name: str) -> ModelConfig:
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown model preset {name!r}; expected one of {sorted(MODEL_PRESETS)}")
    return MODEL_PRESETS[name]


def check_token_shape(config: ModelConfig, shape: tuple, dtype_name: str) -> None:
    """Validate a token batch's static properties; both twins raise these exact messages."""
    if len(shape) != 2:
        raise ValueError(f"tokens must have shape (batch, seq_len), received shape {tuple(shape)}")
    if "int" not in dtype_name:
        raise ValueError(f"tokens must be an integer tensor, received dtype {dtype_name}")
    if shape[1] is not None and shape[1] > config.block_size:
        raise ValueError(f"sequence length {shape[1]} exceeds the model's block_size {config.block_size}")


def token_range_message(config: ModelConfig) -> str:
    return f"token ids must be in [0, {config.vocab_size}), the model's vocab_size"


def check_token_range(config: ModelConfig, min_id: int, max_id: int) -> None:
    if min_id < 0 or max_id >= config.vocab_size:
        raise ValueError(f"{token_range_message(config)}; received ids in [{min_id}, {max_id}]")
