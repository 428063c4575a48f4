"""The built-in GPT family: a decoder-only Transformer LM, the twin of models_torch/gpt.py and
models_tf/gpt.py, trained on next-token prediction.

Its neutral state (harness/contract/state.py) is named by the twins' parameter paths (PyTorch
``state_dict`` style). Every tensor is float32 in the layout below; both twins store their
variables in this same layout, so a conversion is a copy and never a transpose. It is GPT-2's
layout with every Linear transposed (GPT-2's Conv1D stores (in, out)).

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

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.contract.state import State
from harness.families.transformer import block_shapes, gpt2_init

POSITIONAL_ENCODINGS = ("learned", "sinusoidal")


@dataclass(frozen=True)
class GPTConfig:
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
                raise ValueError(f"GPTConfig.{name} must be a positive integer, received {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"GPTConfig.n_embd must be divisible by n_head, received n_embd={self.n_embd}, n_head={self.n_head}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), received {self.dropout!r}")
        if self.pos_encoding not in POSITIONAL_ENCODINGS:
            raise ValueError(
                f"GPTConfig.pos_encoding must be one of {POSITIONAL_ENCODINGS}, received {self.pos_encoding!r}"
            )
        if not self.layer_norm_eps > 0:
            raise ValueError(f"GPTConfig.layer_norm_eps must be positive, received {self.layer_norm_eps!r}")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def replace(self, **changes) -> GPTConfig:
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
# `gpt2-small` is GPT-2 small's shape (12 layers of width 768, 12 heads, 1,024 positions): 124.4 M
# parameters with GPT-2's 50,257-id vocabulary, 86.0 M with the 256 byte ids (vocab_size follows the
# tokenizer). `medium` (10.8 M) sits between it and `default`. Both are for `harness bench`'s size
# table and for real corpora; on 2 CPU cores a gpt2-small step of one 1,024-token window takes seconds.
PRESETS = {
    "tiny": GPTConfig(n_layer=2, n_head=2, n_embd=32, mlp_hidden=128, block_size=32),
    "default": GPTConfig(),
    "medium": GPTConfig(n_layer=6, n_head=6, n_embd=384, mlp_hidden=1536, block_size=256),
    "gpt2-small": GPTConfig(n_layer=12, n_head=12, n_embd=768, mlp_hidden=3072, block_size=1024),
}


def state_shapes(config: GPTConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, in the twins' registration order."""
    d, h = config.n_embd, config.mlp_hidden
    shapes: dict[str, tuple[int, ...]] = {"wte.weight": (config.vocab_size, d)}
    if config.pos_encoding == "learned":
        shapes["wpe.weight"] = (config.block_size, d)
    shapes |= block_shapes(config.n_layer, d, h)
    shapes |= {"ln_f.weight": (d,), "ln_f.bias": (d,)}
    if not config.tie_embeddings:
        shapes["lm_head.weight"] = (config.vocab_size, d)
    return shapes


def init_state(config: GPTConfig, seed: int) -> State:
    """GPT-2 initialisation (``gpt2_init``)."""
    return gpt2_init(state_shapes(config), config.n_layer, seed)


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
