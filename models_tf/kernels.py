"""Fused float32 kernels for the TF twins' elementwise work: GELU and LayerNorm.

torch runs each of these as one fused kernel forward and one backward (F.gelu, F.layer_norm).
Written as plain TF ops, each is a chain of single-purpose kernels forward and a longer one from
autodiff backward, every one a pass over memory: on one CPU thread they made TF's backward pass
1.35 x torch's (benchmarks/op_profile.py shows the kernels). Here each function's forward and its
hand-written gradient are one XLA-compiled function apiece; the matmuls around them stay on TF's
oneDNN kernels, which are faster than XLA's on CPU. On a GPU the same functions run uncompiled, as
TF's own kernels. (The attention softmax is TF's own oneDNN kernel: an XLA-compiled masked softmax
with its gradient was no faster in the default model.)
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

# ``fused``: a tf.function that XLA compiles, its elementwise work fused into few loops, where no GPU
# is visible (the kernels here, and AdamW's update in adamw.py); elsewhere a plain tf.function.
fused = tf.function(jit_compile=not tf.config.list_physical_devices("GPU"), autograph=False)

# XLA's CPU code takes 256-bit vectors unless told to prefer wider ones. On a CPU with AVX-512 the
# GELU's erf, forward and backward, then runs 1.87 -> 1.48 ms a layer (`benchmarks/kernel_times.py
# tf`, default model, one thread; LayerNorm unchanged), AdamW's update 2.95 -> 3.16 ms a step: about
# 1.4 ms a step less (not measured on a CPU without AVX-512). XLA reads its flags when it first
# compiles, so this is set before any kernel here runs; a user's own setting of the flag is kept.
if "--xla_cpu_prefer_vector_width" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_prefer_vector_width=512".strip()

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


def _row_sums(x: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
    """x (N, C) @ v (C,) as (N, 1): each row's sum of x * v as a matrix-vector product. XLA's CPU
    code materialises the operand of a reduction along rows and splits the sum in windows; its dot
    reads x once (`benchmarks/kernel_times.py tf`, default model, one thread: LayerNorm forward +
    backward 1.29 -> 0.67-0.76 ms; torch's 0.61-0.94)."""
    return tf.matmul(x, v[:, None])


def _row_means(x: tf.Tensor) -> tf.Tensor:
    """Each row's mean of x (N, C), as (N, 1)."""
    return _row_sums(x, tf.fill([x.shape[-1]], 1.0 / x.shape[-1]))


@fused
def _layer_norm_forward(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: float) -> tuple[tf.Tensor, tf.Tensor]:
    rows = tf.reshape(x, [-1, x.shape[-1]])  # (N, C)
    centred = rows - _row_means(rows)
    inv_std = tf.math.rsqrt(_row_means(tf.square(centred)) + eps)  # (N, 1)
    return tf.reshape(centred * inv_std * weight + bias, tf.shape(x)), inv_std


@fused
def _layer_norm_backward(
    x: tf.Tensor, weight: tf.Tensor, inv_std: tf.Tensor, dy: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    C = x.shape[-1]
    rows, dy = tf.reshape(x, [-1, C]), tf.reshape(dy, [-1, C])  # (N, C)
    normed = (rows - _row_means(rows)) * inv_std
    dy_normed = dy * normed
    # dnormed = dy * weight; dx = inv_std (dnormed - mean(dnormed) - normed mean(dnormed normed))
    dx = inv_std * (dy * weight - (_row_sums(dy, weight) + normed * _row_sums(dy_normed, weight)) / C)
    return tf.reshape(dx, tf.shape(x)), tf.reduce_sum(dy_normed, axis=0), tf.reduce_sum(dy, axis=0)


def layer_norm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: float) -> tf.Tensor:
    """LayerNorm of float32 x (..., C) over its last axis, scaled by weight (C,) and shifted by bias (C,)."""

    eps = float(eps)

    @tf.custom_gradient
    def normalise(x, weight, bias):
        y, inv_std = _layer_norm_forward(x, weight, bias, eps)
        return y, lambda dy: _layer_norm_backward(x, weight, inv_std, dy)

    return normalise(x, weight, bias)
