"""The Horovod facade for PyTorch processes."""

import time

import numpy as np
import torch

from harness.distributed import Distributed


def to_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array))  # a writable copy: horovod may write into it


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def wait_for(hvd, handle, poll_interval_s: float = 2e-4) -> None:
    """Block until a Horovod async handle is done, sleeping between polls.

    ``horovod.torch.synchronize`` waits by spinning on ``sched_yield`` (``WaitAndClear`` in
    mpi_ops_v2.cc; py-spy put 83% of a waiting rank's samples there). With one core per rank that
    spin competes with Horovod's own background thread, which does the communication; sleeping
    instead gave 1.5-2x the 16-64 MB allreduce bandwidth on 2 ranks here (README, "Benchmarks").
    After this returns, ``synchronize(handle)`` does not wait.
    """
    while not hvd.poll(handle):
        time.sleep(poll_interval_s)


def init_distributed() -> Distributed:
    import horovod.torch as hvd

    return Distributed(hvd, to_tensor=to_tensor, to_numpy=to_numpy)
