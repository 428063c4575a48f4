"""GPT-style decoder-only Transformer LM in PyTorch; twin of models_tf/gpt.py.

Parameter paths and shapes follow harness/families/gpt/, so a state moves between the twins by copy.
Built from layers.py's pieces, as the BERT-style twin is: its Block with causal attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.families.gpt import GPTConfig, sinusoidal_positions
from models_torch.layers import Block, Embedding, LayerNorm, Linear, check_tokens


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
