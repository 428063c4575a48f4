"""The pair's torch side, from torch's own layers; twin of keras_pair_tf.py."""

import torch
import torch.nn.functional as F
from torch import nn

Z_LOSS = 1e-4  # the z-loss's weight; keras_pair_tf.py's too


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        e, self.n_head = config.n_embd, config.n_head
        self.ln_1 = nn.LayerNorm(e)
        self.q, self.k, self.v, self.o = (nn.Linear(e, e, bias=name != "k") for name in "qkvo")  # no key bias
        self.ln_2 = nn.LayerNorm(e)
        self.up, self.down = nn.Linear(e, 4 * e), nn.Linear(4 * e, e)

    def forward(self, x, allowed):
        B, T, C = x.shape
        h = self.ln_1(x)
        q, k, v = (
            proj(h).view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for proj in (self.q, self.k, self.v)
        )
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # (B, nh, T, hs)
        x = x + self.o(y.transpose(1, 2).reshape(B, T, C))
        return x + self.down(F.gelu(self.up(self.ln_2(x))))


class TransformerLM(nn.Module):
    def __init__(self, config, compute_dtype=torch.float32):
        super().__init__()
        self.tok = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos = nn.Embedding(config.block_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size)

    def forward(self, input_ids, attention_mask):
        """input_ids (B, T); attention_mask (B, T), 1 for a token to attend to, 0 for padding."""
        T = input_ids.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool, device=input_ids.device).tril()  # (T, T)
        allowed = causal & attention_mask.bool()[:, None, None, :]  # (B, 1, T, T)
        x = self.tok(input_ids) + self.pos(torch.arange(T, device=input_ids.device))  # (B, T, C)
        for block in self.blocks:
            x = block(x, allowed)
        return self.head(self.ln_f(x))  # (B, T, V)


def loss(logits, targets, weights, label_smoothing):
    """The pair's own loss: cross-entropy plus PaLM's z-loss (Z_LOSS * log(Z)^2, which keeps the
    softmax normaliser near 1), each target weighted by ``weights`` (None: the plain mean)."""
    flat = logits.reshape(-1, logits.shape[-1])  # (N, V)
    losses = F.cross_entropy(flat, targets.reshape(-1), reduction="none", label_smoothing=label_smoothing)  # (N,)
    losses = losses + Z_LOSS * torch.logsumexp(flat, dim=-1) ** 2
    if weights is None:
        return losses.mean()
    return (losses * weights.reshape(-1)).sum() / weights.sum()
