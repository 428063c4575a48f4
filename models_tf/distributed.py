"""The Horovod facade for TensorFlow processes."""

import numpy as np
import tensorflow as tf

from harness.distributed import Distributed


def to_tensor(array: np.ndarray) -> tf.Tensor:
    return tf.convert_to_tensor(array)


def to_numpy(tensor: tf.Tensor) -> np.ndarray:
    return np.asarray(tensor)


def init_distributed() -> Distributed:
    import horovod.tensorflow as hvd

    return Distributed(hvd, to_tensor=to_tensor, to_numpy=to_numpy)
