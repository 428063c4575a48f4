"""The Horovod facade for PyTorch processes."""

import numpy as np
import torch

from harness.distributed import Distributed

HOROVOD_BINDING = "horovod.torch"  # the one Horovod module this framework's processes load


def to_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array))  # a writable copy: horovod may write into it


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def init_distributed() -> Distributed:
    import horovod.torch as hvd

    return Distributed(hvd, to_tensor=to_tensor, to_numpy=to_numpy)
