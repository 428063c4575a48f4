"""models_tf/kernels.py: each fused kernel and its hand-written gradient equal TF's own ops and
their autodiff gradients, eagerly and inside a tf.function."""

import numpy as np
import pytest
import tensorflow as tf

from models_tf import kernels


def reference_layer_norm(x, weight, bias, eps):
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + eps) * weight + bias


def reference_masked_softmax(scores, keep, scale):
    return tf.nn.softmax(tf.where(keep, scores * scale, -np.inf), axis=-1)


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
def test_masked_softmax_gives_masked_keys_no_weight_and_no_gradient(causal):
    rng = np.random.default_rng(2)
    scores = tf.constant(rng.standard_normal((2, 3, 6, 6)), tf.float32)
    if causal:
        keep = tf.linalg.band_part(tf.ones([6, 6], tf.bool), -1, 0)  # (T, T)
    else:
        keep = tf.constant([True] * 4 + [False] * 2, shape=(1, 1, 1, 6)) & tf.ones((2, 1, 1, 6), tf.bool)
    assert_same(
        lambda s: kernels.masked_softmax(s, keep, 0.4),
        lambda s: reference_masked_softmax(s, keep, 0.4),
        [scores],
        1e-6,
    )
    probs, (grad,) = values_and_gradients(
        lambda s: kernels.masked_softmax(s, keep, 0.4), [scores], tf.ones_like(scores) + scores
    )
    dropped = ~np.broadcast_to(keep.numpy(), probs.shape)
    assert np.all(probs[dropped] == 0) and np.all(grad[dropped] == 0)
    assert np.allclose(probs.sum(axis=-1), 1.0, atol=1e-6)
