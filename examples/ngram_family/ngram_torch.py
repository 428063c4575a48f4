"""The n-gram LM in PyTorch; twin of ngram_tf.py."""

import torch
import torch.nn.functional as F
from torch import nn


class NGramLM(nn.Module):
    def __init__(self, config, compute_dtype=torch.float32):
        super().__init__()
        self.context = config.context
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.hidden = nn.Linear(config.context * config.n_embd, config.hidden)
        self.out = nn.Linear(config.hidden, config.vocab_size)

    def forward(self, tokens):
        T = tokens.shape[1]
        x = self.embed(tokens)  # (B, T, E)
        shifted = [F.pad(x, (0, 0, k, 0))[:, :T] for k in reversed(range(self.context))]  # context x (B, T, E)
        return self.out(torch.tanh(self.hidden(torch.cat(shifted, dim=-1))))  # (B, T, V)
