"""Fused float32 kernels for the TF twins' elementwise work: GELU, LayerNorm, the masked softmax.

torch runs each of these as one fused kernel forward and one backward (F.gelu, F.layer_norm,
scaled_dot_product_attention). Written as plain TF ops, each is a chain of single-purpose kernels
forward and a longer one from autodiff backward, every one a pass over memory: on one CPU thread
they made TF's backward pass 1.35 x torch's (benchmarks/op_profile.py shows the kernels). Here
each function's forward and its hand-written gradient are one XLA-compiled function apiece, so
each is a single loop; the matmuls around them stay on TF's oneDNN kernels, which are faster than
XLA's on CPU. On a GPU the same functions run uncompiled, as TF's own kernels.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# ``fused``: a tf.function that XLA compiles, its elementwise work fused into few loops, where no GPU
# is visible (the kernels here, and AdamW's update in adamw.py); elsewhere a plain tf.function.
fused = tf.function(jit_compile=not tf.config.list_physical_devices("GPU"), autograph=False)

_SQRT_HALF = np.float32(np.sqrt(0.5))
_INV_SQRT_PI = np.float32(1.0 / np.sqrt(np.pi))


@fused
def _gelu_forward(x: tf.Tensor) -> tf.Tensor:
    return x * (0.5 + 0.5 * tf.math.erf(x * _SQRT_HALF))  # x Phi(x), as torch's erf kernel


@fused
def _gelu_backward(x: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
    s = x * _SQRT_HALF
    return dy * (0.5 + 0.5 * tf.math.erf(s) + s * _INV_SQRT_PI * tf.exp(-tf.square(s)))  # Phi(x) + x phi(x)


@tf.custom_gradient
def gelu(x: tf.Tensor):
    """Exact (erf) GELU of a float32 tensor of any shape."""
    return _gelu_forward(x), lambda dy: _gelu_backward(x, dy)


@fused
def _layer_norm_forward(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: float) -> tuple[tf.Tensor, tf.Tensor]:
    centred = x - tf.reduce_mean(x, axis=-1, keepdims=True)
    inv_std = tf.math.rsqrt(tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True) + eps)  # (..., 1)
    return centred * inv_std * weight + bias, inv_std


@fused
def _layer_norm_backward(
    x: tf.Tensor, weight: tf.Tensor, inv_std: tf.Tensor, dy: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    normed = (x - tf.reduce_mean(x, axis=-1, keepdims=True)) * inv_std
    dnormed = dy * weight
    dx = inv_std * (
        dnormed
        - tf.reduce_mean(dnormed, axis=-1, keepdims=True)
        - normed * tf.reduce_mean(dnormed * normed, axis=-1, keepdims=True)
    )
    rows = tf.reshape(dy, [-1, tf.shape(dy)[-1]])  # (N, C)
    dweight = tf.reduce_sum(rows * tf.reshape(normed, tf.shape(rows)), axis=0)
    return dx, dweight, tf.reduce_sum(rows, axis=0)


def layer_norm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: float) -> tf.Tensor:
    """LayerNorm of float32 x (..., C) over its last axis, scaled by weight (C,) and shifted by bias (C,)."""

    eps = float(eps)

    @tf.custom_gradient
    def normalise(x, weight, bias):
        y, inv_std = _layer_norm_forward(x, weight, bias, eps)
        return y, lambda dy: _layer_norm_backward(x, weight, inv_std, dy)

    return normalise(x, weight, bias)


@fused
def _masked_softmax_forward(scores: tf.Tensor, keep: tf.Tensor, scale: float) -> tf.Tensor:
    return tf.nn.softmax(tf.where(keep, scores * scale, tf.constant(-np.inf, scores.dtype)), axis=-1)


@fused
def _masked_softmax_backward(probs: tf.Tensor, dprobs: tf.Tensor, scale: float) -> tf.Tensor:
    return scale * probs * (dprobs - tf.reduce_sum(dprobs * probs, axis=-1, keepdims=True))


def masked_softmax(scores: tf.Tensor, keep: tf.Tensor, scale: float) -> tf.Tensor:
    """softmax(scale * scores) over the last axis of float32 scores (..., T_k), with the positions
    where the boolean ``keep`` (broadcast to scores) is False given no weight."""

    scale = float(scale)  # a trace-time constant, not a float64 tensor

    @tf.custom_gradient
    def attend(scores):
        probs = _masked_softmax_forward(scores, keep, scale)
        return probs, lambda dprobs: _masked_softmax_backward(probs, dprobs, scale)

    return attend(scores)
