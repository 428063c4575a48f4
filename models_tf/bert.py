"""BERT-style bidirectional Transformer encoder in TensorFlow; twin of models_torch/bert.py.

Parameter paths and shapes follow harness/families/bert/. Built from layers.py's pieces, as the GPT twin
is: its Block with bidirectional attention over the non-padding keys.
"""

from __future__ import annotations

import tensorflow as tf

from harness.families.bert import PAD_ID, BERTConfig
from models_tf import kernels
from models_tf.layers import Block, Embedding, LayerNorm, Linear, _dropout, check_tokens


class MaskedLMHead(tf.Module):
    """BERT's masked-LM head: dense, GELU, LayerNorm, then the token embedding (tied) plus a bias."""

    def __init__(self, config: BERTConfig, compute_dtype=tf.float32):
        super().__init__()
        self.dense = Linear(config.n_embd, config.n_embd, compute_dtype=compute_dtype)
        self.ln = LayerNorm(config.n_embd, config.layer_norm_eps)
        self.bias = tf.Variable(tf.zeros([config.vocab_size]))
        self.compute_dtype = compute_dtype

    def __call__(self, x: tf.Tensor, embedding: tf.Tensor) -> tf.Tensor:
        h = self.ln(kernels.gelu(self.dense(x)))  # (B, T, C)
        logits = tf.matmul(
            tf.cast(h, self.compute_dtype), tf.cast(embedding, self.compute_dtype), transpose_b=True
        )  # (B, T, vocab_size)
        return tf.cast(logits, tf.float32) + self.bias


class Encoder(tf.Module):
    """Token ids (B, T) -> masked-LM logits (B, T, vocab_size), or with ``head = "classify"`` class
    logits (B, num_labels) from the mean of the real positions' outputs; PAD_ID positions are padding.

    ``compute_dtype`` bfloat16 is mixed precision as in the GPT twin: matmuls in bfloat16,
    weights, LayerNorm, softmax and the loss in float32.
    """

    def __init__(self, config: BERTConfig, compute_dtype=tf.float32):
        super().__init__()
        self._config = config
        self.wte = Embedding(config.vocab_size, config.n_embd)
        self.wpe = Embedding(config.block_size, config.n_embd)
        self.blocks = [Block(config, compute_dtype, causal=False) for _ in range(config.n_layer)]
        self.ln_f = LayerNorm(config.n_embd, config.layer_norm_eps)
        if config.head == "mlm":
            self.mlm = MaskedLMHead(config, compute_dtype)
        else:
            self.pooler = Linear(config.n_embd, config.n_embd, compute_dtype=compute_dtype)
            self.classifier = Linear(config.n_embd, config.num_labels, compute_dtype=compute_dtype)

    @property
    def config(self) -> BERTConfig:
        return self._config

    def __call__(self, tokens: tf.Tensor, training: bool = False) -> tf.Tensor:
        tokens = check_tokens(self.config, tokens)
        T = tf.shape(tokens)[1]
        keep = (tokens != PAD_ID)[:, None, None, :]  # (B, 1, 1, T)
        x = _dropout(self.wte(tokens) + self.wpe.weight[:T], self.config.dropout, training)  # (B, T, C)
        for block in self.blocks:
            x = block(x, keep, training)  # (B, T, C)
        x = self.ln_f(x)
        if self.config.head == "mlm":
            return self.mlm(x, self.wte.weight)  # (B, T, vocab_size)
        weights = tf.cast(keep[:, 0, 0, :, None], tf.float32)  # (B, T, 1): 1 at real tokens
        mean = tf.reduce_sum(x * weights, axis=1) / tf.reduce_sum(weights, axis=1)  # (B, C): the mean over real tokens
        pooled = tf.tanh(self.pooler(mean))  # (B, C)
        return self.classifier(_dropout(pooled, self.config.dropout, training))  # (B, num_labels)
