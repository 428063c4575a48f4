"""The gradient check both twin test files make: torch and TF gradients of the same loss, from the
same weights, agree for every parameter within 1e-4 of that parameter's gradient norm."""

import numpy as np
import tensorflow as tf
import torch

from models_tf import ops as tf_ops
from models_torch import ops as torch_ops


def assert_gradients_agree(pt, tfm, names, inputs, targets, weights=None) -> None:
    """``pt`` and ``tfm`` hold the same weights; ``names`` are the family's parameter names."""
    pt_weights = None if weights is None else torch.from_numpy(weights)
    torch_ops.cross_entropy(pt(torch.from_numpy(inputs)), torch.from_numpy(targets), pt_weights).backward()
    pt_grads = {n: p.grad.numpy() for n, p in pt.named_parameters()}
    tf_names, variables = zip(*tf_ops.named_parameters(tfm), strict=True)
    tf_weights = None if weights is None else tf.constant(weights)
    with tf.GradientTape() as tape:
        loss = tf_ops.cross_entropy(tfm(tf.constant(inputs), training=False), tf.constant(targets), tf_weights)
    grads = (tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, variables))
    tf_grads = dict(zip(tf_names, grads, strict=True))
    assert pt_grads.keys() == tf_grads.keys() == names
    for n, g in pt_grads.items():
        norm = np.linalg.norm(g)
        assert norm > 0, f"{n} has a zero gradient"
        assert np.max(np.abs(g - tf_grads[n])) <= 1e-4 * norm, n
