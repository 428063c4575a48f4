"""BERT-style bidirectional Transformer encoder in TensorFlow; twin of models_torch/bert.py.

Parameter paths and shapes follow harness/bert.py; the building blocks the GPT twin already has
(LayerNorm, Linear, Embedding, MLP) are its own, imported from models_tf/model.py.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from harness.bert import PAD_ID, BERTConfig
from harness.gpt import check_token_range, check_token_shape, token_range_message
from models_tf.model import MLP, Embedding, LayerNorm, Linear, _dropout


class SelfAttention(tf.Module):
    """Multi-head self-attention over every position whose key is not padding."""

    def __init__(self, config: BERTConfig, compute_dtype=tf.float32):
        super().__init__()
        self.qkv = Linear(config.n_embd, 3 * config.n_embd, compute_dtype=compute_dtype)
        self.proj = Linear(config.n_embd, config.n_embd, compute_dtype=compute_dtype)
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.compute_dtype = compute_dtype

    def __call__(self, x: tf.Tensor, keep: tf.Tensor, training: bool = False) -> tf.Tensor:
        """x: (B, T, C); keep: (B, 1, 1, T) True where the key is a real token."""
        B, T, C = tf.shape(x)[0], tf.shape(x)[1], x.shape[-1]
        q, k, v = tf.split(self.qkv(x), 3, axis=2)  # 3 x (B, T, C)
        q = tf.transpose(tf.reshape(q, [B, T, self.n_head, C // self.n_head]), [0, 2, 1, 3])  # (B, nh, T, hs)
        k = tf.transpose(tf.reshape(k, [B, T, self.n_head, C // self.n_head]), [0, 2, 1, 3])  # (B, nh, T, hs)
        v = tf.transpose(tf.reshape(v, [B, T, self.n_head, C // self.n_head]), [0, 2, 1, 3])  # (B, nh, T, hs)
        q, k, v = (tf.cast(t, self.compute_dtype) for t in (q, k, v))
        scores = tf.cast(tf.matmul(q, k, transpose_b=True), tf.float32) * (1.0 / np.sqrt(C // self.n_head))
        scores = tf.where(keep, scores, tf.constant(-np.inf, scores.dtype))  # (B, nh, T, T)
        attention = tf.cast(tf.nn.softmax(scores, axis=-1), self.compute_dtype)
        y = tf.cast(tf.matmul(attention, v), tf.float32)  # (B, nh, T, hs)
        y = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, C])  # (B, T, C)
        return _dropout(self.proj(y), self.dropout, training)


class Block(tf.Module):
    """Pre-LayerNorm encoder block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: BERTConfig, compute_dtype=tf.float32):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, config.layer_norm_eps)
        self.attn = SelfAttention(config, compute_dtype)
        self.ln_2 = LayerNorm(config.n_embd, config.layer_norm_eps)
        self.mlp = MLP(config, compute_dtype)

    def __call__(self, x: tf.Tensor, keep: tf.Tensor, training: bool = False) -> tf.Tensor:
        x = x + self.attn(self.ln_1(x), keep, training)
        return x + self.mlp(self.ln_2(x), training)


class MaskedLMHead(tf.Module):
    """BERT's masked-LM head: dense, GELU, LayerNorm, then the token embedding (tied) plus a bias."""

    def __init__(self, config: BERTConfig, compute_dtype=tf.float32):
        super().__init__()
        self.dense = Linear(config.n_embd, config.n_embd, compute_dtype=compute_dtype)
        self.ln = LayerNorm(config.n_embd, config.layer_norm_eps)
        self.bias = tf.Variable(tf.zeros([config.vocab_size]))
        self.compute_dtype = compute_dtype

    def __call__(self, x: tf.Tensor, embedding: tf.Tensor) -> tf.Tensor:
        h = self.ln(tf.nn.gelu(self.dense(x), approximate=False))  # (B, T, C)
        logits = tf.matmul(tf.cast(h, self.compute_dtype), tf.cast(embedding, self.compute_dtype), transpose_b=True)
        return tf.cast(logits, tf.float32) + self.bias  # (B, T, vocab_size)


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
        self.blocks = [Block(config, compute_dtype) for _ in range(config.n_layer)]
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
        check_token_shape(self.config, tuple(tokens.shape), tokens.dtype.name)
        if tf.executing_eagerly():
            check_token_range(self.config, int(tf.reduce_min(tokens)), int(tf.reduce_max(tokens)))
        else:  # inside tf.function: check in the graph, before the embedding lookup
            message = token_range_message(self.config)
            checks = [
                tf.debugging.assert_non_negative(tokens, message=message),
                tf.debugging.assert_less(tokens, tf.cast(self.config.vocab_size, tokens.dtype), message=message),
            ]
            with tf.control_dependencies(checks):
                tokens = tf.identity(tokens)
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
