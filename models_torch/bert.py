"""BERT-style bidirectional Transformer encoder in PyTorch; twin of models_tf/bert.py.

Parameter paths and shapes follow harness/families/bert/. Built from layers.py's pieces, as the GPT twin
is: its Block with bidirectional attention over the non-padding keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.families.bert import PAD_ID, BERTConfig
from models_torch.layers import Block, Embedding, LayerNorm, Linear, check_tokens


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
        self.blocks = nn.ModuleList(Block(config, compute_dtype, causal=False) for _ in range(config.n_layer))
        self.ln_f = LayerNorm(config.n_embd, config.layer_norm_eps)
        if config.head == "mlm":
            self.mlm = MaskedLMHead(config, compute_dtype)
        else:
            self.pooler = Linear(config.n_embd, config.n_embd, compute_dtype=compute_dtype)
            self.classifier = Linear(config.n_embd, config.num_labels, compute_dtype=compute_dtype)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        check_tokens(self.config, tokens)
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
