"""The Horovod facade for TensorFlow processes."""

import os

import numpy as np
import tensorflow as tf

from harness.contract.distributed import Distributed, gpu_for_local_rank

HOROVOD_BINDING = "horovod.tensorflow"  # the one Horovod module this framework's processes load


def to_tensor(array: np.ndarray) -> tf.Tensor:
    return tf.convert_to_tensor(array)


def to_numpy(tensor: tf.Tensor) -> np.ndarray:
    return np.asarray(tensor)


def select_device(local_rank: int) -> str:
    """Show this rank only its own GPU, grown on demand (TF would otherwise take all of every GPU).

    Must run before TF initialises its devices (its first op). Returns the device name to place on.
    """
    gpus = tf.config.list_physical_devices("GPU")
    index = gpu_for_local_rank(local_rank, len(gpus))
    if index is None:
        return "/CPU:0"
    tf.config.set_visible_devices(gpus[index], "GPU")
    tf.config.experimental.set_memory_growth(gpus[index], True)
    return "/GPU:0"  # the one GPU this process sees


def gpu_info() -> dict:
    """The CUDA version this TensorFlow was built for (None: a CPU build) and how many GPUs it sees."""
    return {"cuda_version": tf.sysconfig.get_build_info().get("cuda_version"),
            "gpus": len(tf.config.list_physical_devices("GPU"))}  # fmt: skip


def init_distributed() -> Distributed:
    import horovod.tensorflow as hvd

    # Size TF's thread pools from the per-rank environment launch/horovodrun.py sets; this must
    # happen before TF runs its first op.
    for variable, setter in (
        ("TF_NUM_INTRAOP_THREADS", tf.config.threading.set_intra_op_parallelism_threads),
        ("TF_NUM_INTEROP_THREADS", tf.config.threading.set_inter_op_parallelism_threads),
    ):
        if os.environ.get(variable, "").isdigit():
            setter(int(os.environ[variable]))

    return Distributed(hvd, to_tensor=to_tensor, to_numpy=to_numpy, select_device=select_device)


def shutdown() -> None:
    """Horovod: leave the job (what Horovod's own exit hook would do), for a process about to end."""
    import horovod.tensorflow as hvd

    hvd.shutdown()
