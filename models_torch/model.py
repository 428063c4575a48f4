"""GPT-style decoder-only Transformer LM in PyTorch; twin of models_tf/model.py.

Parameter paths and shapes follow harness/families/gpt/, so a state moves between the twins by copy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.families.gpt import GPTConfig, sinusoidal_positions
from harness.families.transformer import check_token_range, check_token_shape


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
        return F.linear(x.to(self.compute_dtype), self.weight.to(self.compute_dtype), bias).float()


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

    def __init__(self, config: GPTConfig, compute_dtype=torch.float32, *, causal: bool):
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

    def __init__(self, config: GPTConfig, compute_dtype=torch.float32):
        super().__init__()
        self.fc = Linear(config.n_embd, config.mlp_hidden, compute_dtype=compute_dtype)
        self.proj = Linear(config.mlp_hidden, config.n_embd, compute_dtype=compute_dtype)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.fc(x))  # (B, T, mlp_hidden)
        return F.dropout(self.proj(h), self.dropout, self.training)  # (B, T, C)


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: GPTConfig, compute_dtype=torch.float32, *, causal: bool):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, config.layer_norm_eps)
        self.attn = SelfAttention(config, compute_dtype, causal=causal)
        self.ln_2 = LayerNorm(config.n_embd, config.layer_norm_eps)
        self.mlp = MLP(config, compute_dtype)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), keep)
        return x + self.mlp(self.ln_2(x))


def check_tokens(config: GPTConfig, tokens: torch.Tensor) -> None:
    """Raise ValueError unless ``tokens`` is a (B, T) integer tensor of ids below config.vocab_size."""
    check_token_shape(config, tuple(tokens.shape), str(tokens.dtype).removeprefix("torch."))
    check_token_range(config, int(tokens.min()), int(tokens.max()))


class TransformerLM(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, vocab_size).

    ``compute_dtype`` bfloat16 is mixed precision: every matmul (the Linears, attention, the LM
    head) takes bfloat16 inputs; weights, LayerNorm and the loss stay float32 (the softmax runs
    inside scaled_dot_product_attention, at its kernel's precision).
    """

    def __init__(self, config: GPTConfig, compute_dtype=torch.float32):
        super().__init__()
        self.config = config
        self.compute_dtype = compute_dtype
        self.wte = Embedding(config.vocab_size, config.n_embd)
        if config.pos_encoding == "learned":
            self.wpe = Embedding(config.block_size, config.n_embd)
        else:
            table = torch.from_numpy(sinusoidal_positions(config.block_size, config.n_embd))
            self.register_buffer("sinusoid", table, persistent=False)
        self.blocks = nn.ModuleList(Block(config, compute_dtype, causal=True) for _ in range(config.n_layer))
        self.ln_f = LayerNorm(config.n_embd, config.layer_norm_eps)
        if not config.tie_embeddings:
            self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False, compute_dtype=compute_dtype)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        check_tokens(self.config, tokens)
        B, T = tokens.shape
        positions = self.wpe.weight[:T] if self.config.pos_encoding == "learned" else self.sinusoid[:T]  # (T, C)
        x = F.dropout(self.wte(tokens) + positions, self.config.dropout, self.training)  # (B, T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C)
        x = self.ln_f(x)
        head = self.wte.weight if self.config.tie_embeddings else self.lm_head.weight
        return (x.to(self.compute_dtype) @ head.to(self.compute_dtype).T).float()  # (B, T, vocab_size)
