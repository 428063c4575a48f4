"""GPT-style decoder-only Transformer LM in TensorFlow; twin of models_torch/gpt.py.

Parameter paths and shapes follow harness/families/gpt/, so a state moves between the twins by copy.
Built from layers.py's pieces, as the BERT-style twin is: its Block with causal attention. Variables are
plain tf.Variables, not Keras 3's (layers.py says why).
"""

from __future__ import annotations

import tensorflow as tf

from harness.families.gpt import GPTConfig, sinusoidal_positions
from models_tf.layers import Block, Embedding, LayerNorm, Linear, _dropout, check_tokens, project


class TransformerLM(tf.Module):
    """Token ids (B, T) -> next-token logits (B, T, vocab_size).

    ``compute_dtype`` bfloat16 is mixed precision: every matmul (the Linears, attention, the LM
    head) takes bfloat16 inputs; weights, LayerNorm, softmax and the loss stay float32.
    """

    def __init__(self, config: GPTConfig, compute_dtype=tf.float32):
        super().__init__()
        self._config = config
        self._compute_dtype = compute_dtype
        self.wte = Embedding(config.vocab_size, config.n_embd)
        if config.pos_encoding == "learned":
            self.wpe = Embedding(config.block_size, config.n_embd)
        else:
            self._sinusoid = tf.constant(sinusoidal_positions(config.block_size, config.n_embd))
        self.blocks = [Block(config, compute_dtype, causal=True) for _ in range(config.n_layer)]
        self.ln_f = LayerNorm(config.n_embd, config.layer_norm_eps)
        if not config.tie_embeddings:
            self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False, compute_dtype=compute_dtype)

    @property
    def config(self) -> GPTConfig:
        return self._config

    def __call__(self, tokens: tf.Tensor, training: bool = False) -> tf.Tensor:
        tokens = check_tokens(self.config, tokens)
        T = tf.shape(tokens)[1]
        positions = self.wpe.weight[:T] if self.config.pos_encoding == "learned" else self._sinusoid[:T]  # (T, C)
        x = _dropout(self.wte(tokens) + positions, self.config.dropout, training)  # (B, T, C)
        for block in self.blocks:
            x = block(x, training=training)  # (B, T, C)
        x = self.ln_f(x)
        head = self.wte.weight if self.config.tie_embeddings else self.lm_head.weight
        return project(x, head, self._compute_dtype)  # (B, T, vocab_size)
