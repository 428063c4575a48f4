"""The Horovod facade for PyTorch processes."""

import numpy as np
import torch

from harness.contract.distributed import Distributed, gpu_for_local_rank

HOROVOD_BINDING = "horovod.torch"  # the one Horovod module this framework's processes load


def to_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array))  # a writable copy: horovod may write into it


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def select_device(local_rank: int) -> torch.device:
    """This rank's GPU (made current, so NCCL and new tensors use it), or the CPU without CUDA."""
    index = gpu_for_local_rank(local_rank, torch.cuda.device_count() if torch.cuda.is_available() else 0)
    if index is None:
        return torch.device("cpu")
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def gpu_info() -> dict:
    """The CUDA version this torch was built for (None: a CPU build) and how many GPUs it sees."""
    return {"cuda_version": torch.version.cuda, "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0}


def init_distributed() -> Distributed:
    import horovod.torch as hvd

    return Distributed(hvd, to_tensor=to_tensor, to_numpy=to_numpy, select_device=select_device)


def shutdown() -> None:
    """Horovod: leave the job (what Horovod's own exit hook would do), for a process about to end."""
    import horovod.torch as hvd

    hvd.shutdown()
