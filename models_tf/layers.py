"""Transformer layers in TensorFlow, the pieces both twins here are built from (gpt.py, bert.py); twin of
models_torch/layers.py.

A Block's parameter paths and shapes follow harness/families/transformer.py, the same in both frameworks.
Variables are plain ``tf.Variable``s inside ``tf.Module``s, not Keras 3 layers: Horovod's
DistributedGradientTape needs real tf.Variables (horovod/horovod#4290).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from harness.families.transformer import TransformerConfig, check_token_range, check_token_shape, token_range_message
from models_tf import kernels


def _dropout(x: tf.Tensor, rate: float, training: bool) -> tf.Tensor:
    """Inverted dropout drawn from TF's global Generator, whose state a tf.function advances on every
    call (``tf.nn.dropout``'s op seeds would repeat the same mask); the loop reseeds it per step."""
    if not training or rate == 0:
        return x
    keep = tf.random.get_global_generator().uniform(tf.shape(x)) >= rate
    return tf.where(keep, x / (1.0 - rate), tf.zeros_like(x))


class LayerNorm(tf.Module):
    """LayerNorm over the last axis with a scale ``weight`` and a shift ``bias``."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = tf.Variable(tf.ones([dim]))
        self.bias = tf.Variable(tf.zeros([dim]))
        self.eps = eps

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return kernels.layer_norm(x, self.weight, self.bias, self.eps)


def project(x: tf.Tensor, weight: tf.Variable, compute_dtype, bias: tf.Tensor | None = None) -> tf.Tensor:
    """x (..., in) @ weight (out, in)^T (+ bias) in ``compute_dtype``, returned as float32 (..., out).

    One GEMM over all positions, as torch's linear does: a (B, T, in) @ (in, out) matmul would run
    as B batched GEMMs, and its weight gradient as B GEMMs summed (6 % of the default model's step).
    """
    rows = tf.reshape(tf.cast(x, compute_dtype), [-1, x.shape[-1]])  # (B*T, in)
    y = tf.matmul(rows, tf.cast(weight, compute_dtype), transpose_b=True)  # (B*T, out)
    y = y if bias is None else tf.nn.bias_add(y, bias)  # its gradient is one BiasAddGrad, not a Sum
    return tf.reshape(tf.cast(y, tf.float32), tf.concat([tf.shape(x)[:-1], [weight.shape[0]]], 0))  # (..., out)


class Linear(tf.Module):
    """y = x W^T + b with W stored as (out_features, in_features), computed in ``compute_dtype``
    from the float32 weights and returned as float32."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, compute_dtype=tf.float32):
        super().__init__()
        self.weight = tf.Variable(tf.zeros([out_features, in_features]))
        self.bias = tf.Variable(tf.zeros([out_features])) if bias else None
        self.compute_dtype = compute_dtype

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        bias = None if self.bias is None else tf.cast(self.bias, self.compute_dtype)
        return project(x, self.weight, self.compute_dtype, bias)  # (..., out)


class Embedding(tf.Module):
    """A (num_embeddings, dim) table ``weight`` looked up by integer ids."""

    def __init__(self, num_embeddings: int, dim: int):
        super().__init__()
        self.weight = tf.Variable(tf.zeros([num_embeddings, dim]))

    def __call__(self, ids: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.weight, ids)  # (*ids.shape, dim)


class SelfAttention(tf.Module):
    """Multi-head self-attention: causal (position t attends to positions <= t), or bidirectional
    over the keys that ``keep`` marks as real tokens."""

    def __init__(self, config: TransformerConfig, compute_dtype=tf.float32, *, causal: bool):
        super().__init__()
        self.qkv = Linear(config.n_embd, 3 * config.n_embd, compute_dtype=compute_dtype)
        self.proj = Linear(config.n_embd, config.n_embd, compute_dtype=compute_dtype)
        self.n_head = config.n_head
        self.causal = causal
        self.dropout = config.dropout
        self.compute_dtype = compute_dtype
        # q's 1/sqrt(hs), applied to the projection's query rows rather than to q: (3C, C) elements a
        # pass instead of (B, T, C), forward and backward. Default model, one thread, forward + backward
        # timed in turns with the torch twin's in one process: TF / torch 1.037-1.042 -> 1.020-1.029.
        head_size = config.n_embd // config.n_head
        self.qkv_scale = np.repeat(np.array([1 / np.sqrt(head_size), 1, 1], np.float32), config.n_embd)  # (3C,)

    def __call__(self, x: tf.Tensor, keep: tf.Tensor | None = None, training: bool = False) -> tf.Tensor:
        """x: (B, T, C); keep: (B, 1, 1, T) True where the key is a real token (bidirectional only)."""
        B, T, C = tf.shape(x)[0], tf.shape(x)[1], x.shape[-1]
        weight = self.qkv.weight * self.qkv_scale[:, None]  # (3C, C), the query rows scaled
        bias = tf.cast(self.qkv.bias * self.qkv_scale, self.compute_dtype)
        qkv = project(x, weight, self.compute_dtype, bias)  # (B, T, 3C)
        qkv = tf.reshape(qkv, [B, T, 3, self.n_head, C // self.n_head])  # (B, T, 3, nh, hs)
        # One transpose for q, k and v together (and one for their gradient): three transposes after a
        # split took 2 ms more per layer, forward and backward, on the default model (one thread).
        q, k, v = tf.unstack(tf.transpose(qkv, [2, 0, 3, 1, 4]))  # 3 x (B, nh, T, hs)
        q, k, v = (tf.cast(t, self.compute_dtype) for t in (q, k, v))
        scores = tf.cast(tf.matmul(q, k, transpose_b=True), tf.float32)  # (B, nh, T, T)
        if self.causal:
            keep = tf.linalg.band_part(tf.ones([T, T], tf.bool), -1, 0)  # (T, T) lower triangle
        scores += tf.where(keep, 0.0, -np.inf)  # a masked key gets no weight, and no gradient
        attention = tf.cast(tf.nn.softmax(scores), self.compute_dtype)
        y = tf.cast(tf.matmul(attention, v), tf.float32)  # (B, nh, T, hs)
        y = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B, T, C])  # (B, T, C)
        return _dropout(self.proj(y), self.dropout, training)


class MLP(tf.Module):
    """Position-wise feed-forward network with an exact (erf) GELU."""

    def __init__(self, config: TransformerConfig, compute_dtype=tf.float32):
        super().__init__()
        self.fc = Linear(config.n_embd, config.mlp_hidden, compute_dtype=compute_dtype)
        self.proj = Linear(config.mlp_hidden, config.n_embd, compute_dtype=compute_dtype)
        self.dropout = config.dropout

    def __call__(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        h = kernels.gelu(self.fc(x))  # (B, T, mlp_hidden)
        return _dropout(self.proj(h), self.dropout, training)  # (B, T, C)


class Block(tf.Module):
    """Pre-LayerNorm Transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: TransformerConfig, compute_dtype=tf.float32, *, causal: bool):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, config.layer_norm_eps)
        self.attn = SelfAttention(config, compute_dtype, causal=causal)
        self.ln_2 = LayerNorm(config.n_embd, config.layer_norm_eps)
        self.mlp = MLP(config, compute_dtype)

    def __call__(self, x: tf.Tensor, keep: tf.Tensor | None = None, training: bool = False) -> tf.Tensor:
        x = x + self.attn(self.ln_1(x), keep, training)
        return x + self.mlp(self.ln_2(x), training)


def check_tokens(config: TransformerConfig, tokens: tf.Tensor) -> tf.Tensor:
    """Raise ValueError unless ``tokens`` is a (B, T) integer tensor of ids below config.vocab_size;
    inside a tf.function the range check is a graph assertion, so use the tokens this returns."""
    check_token_shape(config, tuple(tokens.shape), tokens.dtype.name)
    if tf.executing_eagerly():
        check_token_range(config, int(tf.reduce_min(tokens)), int(tf.reduce_max(tokens)))
        return tokens
    message = token_range_message(config)
    checks = [
        tf.debugging.assert_non_negative(tokens, message=message),
        tf.debugging.assert_less(tokens, tf.cast(config.vocab_size, tokens.dtype), message=message),
    ]
    with tf.control_dependencies(checks):  # before the embedding lookup
        return tf.identity(tokens)
