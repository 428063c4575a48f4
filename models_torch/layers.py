"""Transformer layers in PyTorch, the pieces both twins here are built from (gpt.py, bert.py); twin of
models_tf/layers.py.

A Block's parameter paths and shapes follow harness/families/transformer.py, the same in both frameworks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.families.transformer import TransformerConfig, check_token_range, check_token_shape


class LayerNorm(nn.Module):
    """LayerNorm over the last axis with a scale ``weight`` and a shift ``bias``."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class Linear(nn.Module):
    """y = x W^T + b with W stored as (out_features, in_features), computed in ``compute_dtype``
    from the float32 weights and returned as float32."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, compute_dtype=torch.float32):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.compute_dtype = compute_dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(self.compute_dtype)
        return F.linear(x.to(self.compute_dtype), self.weight.to(self.compute_dtype), bias).float()  # (..., out)


class Embedding(nn.Module):
    """A (num_embeddings, dim) table ``weight`` looked up by integer ids."""

    def __init__(self, num_embeddings: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_embeddings, dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight)  # (*ids.shape, dim)


class SelfAttention(nn.Module):
    """Multi-head self-attention: causal (position t attends to positions <= t), or bidirectional
    over the keys that ``keep`` marks as real tokens."""

    def __init__(self, config: TransformerConfig, compute_dtype=torch.float32, *, causal: bool):
        super().__init__()
        self.qkv = Linear(config.n_embd, 3 * config.n_embd, compute_dtype=compute_dtype)
        self.proj = Linear(config.n_embd, config.n_embd, compute_dtype=compute_dtype)
        self.n_head = config.n_head
        self.causal = causal
        self.dropout = config.dropout
        self.compute_dtype = compute_dtype

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, C); keep: (B, 1, 1, T) True where the key is a real token (bidirectional only)."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        q, k, v = (t.to(self.compute_dtype) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, is_causal=self.causal).float()  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return F.dropout(self.proj(y), self.dropout, self.training)


class MLP(nn.Module):
    """Position-wise feed-forward network with an exact (erf) GELU."""

    def __init__(self, config: TransformerConfig, compute_dtype=torch.float32):
        super().__init__()
        self.fc = Linear(config.n_embd, config.mlp_hidden, compute_dtype=compute_dtype)
        self.proj = Linear(config.mlp_hidden, config.n_embd, compute_dtype=compute_dtype)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.fc(x))  # (B, T, mlp_hidden)
        return F.dropout(self.proj(h), self.dropout, self.training)  # (B, T, C)


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: TransformerConfig, compute_dtype=torch.float32, *, causal: bool):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, config.layer_norm_eps)
        self.attn = SelfAttention(config, compute_dtype, causal=causal)
        self.ln_2 = LayerNorm(config.n_embd, config.layer_norm_eps)
        self.mlp = MLP(config, compute_dtype)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), keep)
        return x + self.mlp(self.ln_2(x))


def check_tokens(config: TransformerConfig, tokens: torch.Tensor) -> None:
    """Raise ValueError unless ``tokens`` is a (B, T) integer tensor of ids below config.vocab_size.
    The ids' range is read off host tensors only: on a GPU the read would make every forward wait
    for the device (a run's ids come from its tokenizer, whose size is the model's vocab_size)."""
    check_token_shape(config, tuple(tokens.shape), str(tokens.dtype).removeprefix("torch."))
    if tokens.device.type == "cpu":
        check_token_range(config, int(tokens.min()), int(tokens.max()))
