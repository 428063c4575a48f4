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

from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.contract.state import State
from harness.families.transformer import TransformerConfig, block_shapes, gpt2_init

POSITIONAL_ENCODINGS = ("learned", "sinusoidal")


@dataclass(frozen=True)
class GPTConfig(TransformerConfig):
    """A decoder-only Transformer LM; both twins build exactly this architecture. The common fields
    are ``TransformerConfig``'s (``vocab_size`` is 256 for the byte-level tokenizer); besides:

    Attributes:
        pos_encoding: ``"learned"`` position embeddings (``wpe``) or fixed ``"sinusoidal"`` ones.
        tie_embeddings: share the LM head with the token embedding ``wte``.
    """

    pos_encoding: Literal["learned", "sinusoidal"] = "learned"
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pos_encoding not in POSITIONAL_ENCODINGS:
            raise ValueError(
                f"GPTConfig.pos_encoding must be one of {POSITIONAL_ENCODINGS}, received {self.pos_encoding!r}"
            )

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape, in the twins' registration order."""
        d, h = self.n_embd, self.mlp_hidden
        shapes: dict[str, tuple[int, ...]] = {"wte.weight": (self.vocab_size, d)}
        if self.pos_encoding == "learned":
            shapes["wpe.weight"] = (self.block_size, d)
        shapes |= block_shapes(self.n_layer, d, h)
        shapes |= {"ln_f.weight": (d,), "ln_f.bias": (d,)}
        if not self.tie_embeddings:
            shapes["lm_head.weight"] = (self.vocab_size, d)
        return shapes


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


def init_state(config: GPTConfig, seed: int) -> State:
    """GPT-2 initialisation (``gpt2_init``)."""
    return gpt2_init(config.state_shapes(), config.n_layer, seed)


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
