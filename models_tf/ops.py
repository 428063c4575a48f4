"""TensorFlow's side of the generic pieces: a module's neutral state in and out, and the loss."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np
import tensorflow as tf

from harness.contract.mapping import IDENTITY_MAP, Layout, ParameterMap
from harness.contract.state import State


def named_parameters(module: tf.Module, prefix: str = "") -> Iterator[tuple[str, tf.Variable]]:
    """(path, variable) pairs in attribute order, named like torch's ``named_parameters``: attribute
    names joined by dots, list items by their index; attributes starting with ``_`` are skipped.

    A Keras model (Keras 3 or tf-keras) gives its trainable weights instead, named by Keras's own
    paths below the model ("proj/kernel"; a family's ``parameter_maps`` maps them), each as the ``tf.Variable`` that
    holds it: Keras 3 wraps one in a ``keras.Variable``, and Horovod needs the ``tf.Variable``."""
    if is_keras(module):
        for weight in module.trainable_weights:
            path = getattr(weight, "path", None) or weight.name.removesuffix(":0")  # Keras 3, tf-keras
            # Relative to the model: a subclassed model's paths start with its name, unique per process.
            path = path.removeprefix(f"{module.name}/")
            yield prefix + path, weight if isinstance(weight, tf.Variable) else weight.value
        return
    for attr, value in vars(module).items():
        if attr.startswith("_"):
            continue
        if isinstance(value, tf.Variable):
            yield prefix + attr, value
        elif isinstance(value, tf.Module):
            yield from named_parameters(value, f"{prefix}{attr}.")
        elif isinstance(value, list | tuple) or type(value).__name__ == "ListWrapper":
            for i, child in enumerate(value):
                if isinstance(child, tf.Variable):
                    yield f"{prefix}{attr}.{i}", child
                else:
                    yield from named_parameters(child, f"{prefix}{attr}.{i}.")


def is_keras(model: object) -> bool:
    """Whether ``model`` is a Keras 3 or a tf-keras (Keras 2) model or layer."""
    return any(cls.__module__.split(".")[0] in ("keras", "tf_keras") for cls in type(model).__mro__)


def read(variable: tf.Variable) -> np.ndarray:
    """A float32 numpy copy of one variable (a parameter or an optimizer slot)."""
    return variable.numpy().copy()


def write(variable: tf.Variable, value: np.ndarray) -> None:
    variable.assign(value)


def export_state(module: tf.Module, parameter_map: ParameterMap = IDENTITY_MAP) -> State:
    """The module's variables as the neutral state (harness/contract/state.py), float32 numpy copies,
    through the family's ``parameter_map`` for TF."""
    return parameter_map.to_neutral("the tf model", {name: read(p) for name, p in named_parameters(module)})


def import_state(module: tf.Module, state: State, parameter_map: ParameterMap = IDENTITY_MAP) -> None:
    """Load a neutral state in place through ``parameter_map``; ``ValueError`` unless it has exactly
    the module's names and shapes (after their layouts)."""
    named = dict(named_parameters(module))
    own = parameter_map.to_framework("the tf model", {name: tuple(p.shape) for name, p in named.items()}, state)
    for name, value in own.items():
        write(named[name], value)


def relayout(tensor: tf.Tensor, source: Layout, target: Layout) -> tf.Tensor:
    """A tensor held in ``source``'s layout, in ``target``'s: a tied copy's gradient for its
    parameter, or that parameter for the copy."""
    if source.unit_axes:
        tensor = tf.squeeze(tensor, source.unit_axes)
    if source.axes is not None:
        tensor = tf.transpose(tensor, np.argsort(source.axes))
    if target.axes is not None:
        tensor = tf.transpose(tensor, target.axes)
    for axis in sorted(target.unit_axes):
        tensor = tf.expand_dims(tensor, axis)
    return tensor


def call(model: tf.Module, inputs: tf.Tensor | Mapping[str, tf.Tensor], training: bool):
    """The model on a batch's inputs: one tensor positionally, named tensors as keyword arguments."""
    if isinstance(inputs, Mapping):
        return model(**inputs, training=training)
    return model(inputs, training=training)


def cross_entropy(
    logits: tf.Tensor, targets: tf.Tensor, weights: tf.Tensor | None = None, label_smoothing: float = 0.0
) -> tf.Tensor:
    """Mean cross-entropy of logits (..., C) against class ids (...), weighted by ``weights`` (...).

    With label smoothing epsilon each target's loss is (1 - epsilon) * (-log p_target) +
    epsilon * mean_c(-log p_c), torch's ``F.cross_entropy(label_smoothing=epsilon)``.
    """
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)  # (...)
    if label_smoothing:
        uniform = -tf.reduce_mean(tf.nn.log_softmax(logits), axis=-1)  # (...)
        losses = (1.0 - label_smoothing) * losses + label_smoothing * uniform
    if weights is None:
        return tf.reduce_mean(losses)
    return tf.reduce_sum(losses * weights) / tf.reduce_sum(weights)


def eval_sums(
    logits: tf.Tensor, targets: tf.Tensor, weights: tf.Tensor | None, loss: Callable | None = None
) -> tuple[tf.Tensor, ...]:
    """(weighted loss sum, weighted count of correct argmax predictions, sum of weights): the loss is
    cross-entropy, or a family's own ``loss`` (its weighted mean times the weights' sum)."""
    counted = tf.ones(tf.shape(targets), tf.float32) if weights is None else weights
    if loss is None:
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)  # (...)
        loss_sum = tf.reduce_sum(losses * counted)
    else:
        loss_sum = loss(logits, targets, weights, 0.0) * tf.reduce_sum(counted)
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=targets.dtype), targets), tf.float32)
    return loss_sum, tf.reduce_sum(correct * counted), tf.reduce_sum(counted)
