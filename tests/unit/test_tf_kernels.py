"""models_tf/kernels.py: each fused kernel and its hand-written gradient equal TF's own ops and
their autodiff gradients, eagerly and inside a tf.function; the TF twins' attention gives masked keys
no weight and no gradient."""

import numpy as np
import pytest
import tensorflow as tf

from harness.families.transformer import TransformerConfig
from models_tf import kernels
from models_tf.layers import SelfAttention


def reference_layer_norm(x, weight, bias, eps):
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + eps) * weight + bias


def values_and_gradients(function, inputs, upstream):
    """function(*inputs) and the gradients of sum(upstream * output) with respect to every input."""
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        output = function(*inputs)
        objective = tf.reduce_sum(upstream * output)
    return output.numpy(), [g.numpy() for g in tape.gradient(objective, inputs)]


def assert_same(function, reference, inputs, tolerance):
    rng = np.random.default_rng(3)
    upstream = tf.constant(rng.standard_normal(function(*inputs).shape), tf.float32)
    for run in (function, tf.function(function)):
        value, grads = values_and_gradients(run, inputs, upstream)
        expected_value, expected_grads = values_and_gradients(reference, inputs, upstream)
        assert np.max(np.abs(value - expected_value)) <= tolerance
        for grad, expected in zip(grads, expected_grads, strict=True):
            assert np.max(np.abs(grad - expected)) <= tolerance * max(1.0, np.max(np.abs(expected)))


@pytest.mark.parametrize("shape", [(2, 5, 7), (33,)])
def test_gelu_is_the_exact_gelu_with_its_gradient(shape):
    x = tf.constant(np.random.default_rng(0).normal(0, 3, shape), tf.float32)
    assert_same(kernels.gelu, lambda x: tf.nn.gelu(x, approximate=False), [x], 2e-6)


def test_layer_norm_gives_tfs_moments_formula_and_its_gradients():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(2, 3, (3, 4, 21)), tf.float32)
    weight, bias = (tf.constant(rng.standard_normal(21), tf.float32) for _ in range(2))
    assert_same(
        lambda x, w, b: kernels.layer_norm(x, w, b, 1e-5),
        lambda x, w, b: reference_layer_norm(x, w, b, 1e-5),
        [x, weight, bias],
        2e-5,
    )


@pytest.mark.parametrize("causal", [True, False])
def test_attention_gives_masked_keys_no_weight_and_no_gradient(causal):
    rng = np.random.default_rng(2)
    attention = SelfAttention(TransformerConfig(n_embd=12, n_head=3), causal=causal)
    for variable in attention.trainable_variables:
        variable.assign(rng.standard_normal(variable.shape) * 0.5)
    x = tf.constant(rng.standard_normal((2, 6, 12)), tf.float32)
    keep = None if causal else tf.constant([[True] * 4 + [False] * 2, [True] * 6], shape=(2, 1, 1, 6))
    # Position 3's output (a real token) against every position's input: nothing from a key it must not see.
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = attention(x, keep)
        y = out[:, 3]
    grad = tape.gradient(y, x, output_gradients=tf.ones_like(y) + y).numpy()  # (2, 6, 12)
    hidden = [(0, 4), (0, 5), (1, 4), (1, 5)] if causal else [(0, 4), (0, 5)]
    assert all(np.all(grad[b, t] == 0) for b, t in hidden)
    seen = [(b, t) for b in range(2) for t in range(6) if (b, t) not in hidden and (causal or b == 1 or t < 4)]
    assert all(np.any(grad[b, t] != 0) for b, t in seen)
    assert np.all(np.isfinite(out.numpy()))
