"""BERT-style bidirectional Transformer encoder in PyTorch; twin of models_tf/bert.py.

Parameter paths and shapes follow harness/bert.py; the building blocks the GPT twin already has
(LayerNorm, Linear, Embedding, MLP) are its own, imported from models_torch/model.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.bert import PAD_ID, BERTConfig
from harness.gpt import check_token_range, check_token_shape
from models_torch.model import MLP, Embedding, LayerNorm, Linear


class SelfAttention(nn.Module):
    """Multi-head self-attention over every position whose key is not padding."""

    def __init__(self, config: BERTConfig, compute_dtype=torch.float32):
        super().__init__()
        self.qkv = Linear(config.n_embd, 3 * config.n_embd, compute_dtype=compute_dtype)
        self.proj = Linear(config.n_embd, config.n_embd, compute_dtype=compute_dtype)
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.compute_dtype = compute_dtype

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C); keep: (B, 1, 1, T) True where the key is a real token."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        q, k, v = (t.to(self.compute_dtype) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).float()  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return F.dropout(self.proj(y), self.dropout, self.training)


class Block(nn.Module):
    """Pre-LayerNorm encoder block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: BERTConfig, compute_dtype=torch.float32):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, config.layer_norm_eps)
        self.attn = SelfAttention(config, compute_dtype)
        self.ln_2 = LayerNorm(config.n_embd, config.layer_norm_eps)
        self.mlp = MLP(config, compute_dtype)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), keep)
        return x + self.mlp(self.ln_2(x))


class MaskedLMHead(nn.Module):
    """BERT's masked-LM head: dense, GELU, LayerNorm, then the token embedding (tied) plus a bias."""

    def __init__(self, config: BERTConfig, compute_dtype=torch.float32):
        super().__init__()
        self.dense = Linear(config.n_embd, config.n_embd, compute_dtype=compute_dtype)
        self.ln = LayerNorm(config.n_embd, config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.compute_dtype = compute_dtype

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        h = self.ln(F.gelu(self.dense(x)))  # (B, T, C)
        logits = h.to(self.compute_dtype) @ embedding.to(self.compute_dtype).T  # (B, T, vocab_size)
        return logits.float() + self.bias


class Encoder(nn.Module):
    """Token ids (B, T) -> masked-LM logits (B, T, vocab_size), or with ``head = "classify"`` class
    logits (B, num_labels) from the mean of the real positions' outputs; PAD_ID positions are padding.

    ``compute_dtype`` bfloat16 is mixed precision as in the GPT twin: matmuls in bfloat16,
    weights, LayerNorm and the loss in float32.
    """

    def __init__(self, config: BERTConfig, compute_dtype=torch.float32):
        super().__init__()
        self.config = config
        self.wte = Embedding(config.vocab_size, config.n_embd)
        self.wpe = Embedding(config.block_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config, compute_dtype) for _ in range(config.n_layer))
        self.ln_f = LayerNorm(config.n_embd, config.layer_norm_eps)
        if config.head == "mlm":
            self.mlm = MaskedLMHead(config, compute_dtype)
        else:
            self.pooler = Linear(config.n_embd, config.n_embd, compute_dtype=compute_dtype)
            self.classifier = Linear(config.n_embd, config.num_labels, compute_dtype=compute_dtype)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        check_token_shape(self.config, tuple(tokens.shape), str(tokens.dtype).removeprefix("torch."))
        check_token_range(self.config, int(tokens.min()), int(tokens.max()))
        B, T = tokens.shape
        keep = (tokens != PAD_ID)[:, None, None, :]  # (B, 1, 1, T)
        x = F.dropout(self.wte(tokens) + self.wpe.weight[:T], self.config.dropout, self.training)  # (B, T, C)
        for block in self.blocks:
            x = block(x, keep)  # (B, T, C)
        x = self.ln_f(x)
        if self.config.head == "mlm":
            return self.mlm(x, self.wte.weight)  # (B, T, vocab_size)
        weights = keep[:, 0, 0, :, None].float()  # (B, T, 1): 1 at real tokens
        mean = (x * weights).sum(dim=1) / weights.sum(dim=1)  # (B, C): the mean over real tokens
        pooled = torch.tanh(self.pooler(mean))  # (B, C)
        return self.classifier(F.dropout(pooled, self.config.dropout, self.training))  # (B, num_labels)
