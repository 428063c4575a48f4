"""A small facade over one of Horovod's framework bindings (torch or TensorFlow).

The training loop talks to this class only, so it never imports a framework. Both Horovod
bindings expose the same process-set API (``rank()``, ``size()``, ``allreduce`` ...); what
differs is the tensor type, which each framework package supplies as two converters.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import numpy as np

# What an error says when a collective failed because another rank died or froze: Horovod's
# shutdown notice, or any error of Gloo's TCP transport (a receive timeout, a connection reset or
# closed by the peer), which TF reports as op errors.
LOST_RANK_MARKERS = ("Horovod has been shut down", "gloo/transport/tcp/")
# What a rank's last line says when it gives up on the job ("rank R lost the job: why"): the
# launcher reads it to tell the ranks that saw a loss from the rank that was lost.
LOST_JOB = "lost the job"


def is_lost_rank_error(err: BaseException) -> bool:
    return type(err).__name__ == "HorovodInternalError" or any(m in str(err) for m in LOST_RANK_MARKERS)


def launched_rank() -> int | None:
    """This process's rank when horovodrun started it (Gloo sets HOROVOD_RANK, Open MPI's mpirun
    OMPI_COMM_WORLD_RANK), else None: the process is the launcher, or a single rank of its own."""
    for variable in ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK"):
        if variable in os.environ:
            return int(os.environ[variable])
    return None


def check_hostname_resolves(name: str | None = None) -> None:
    """``ValueError`` unless this host's own name (or ``name``) resolves: Gloo looks it up when a rank
    joins, and without it Horovod's init aborts or segfaults (seen in a container whose /etc/hosts
    lacks it)."""
    name = name or socket.gethostname()
    try:
        socket.getaddrinfo(name, None)
    except socket.gaierror:
        raise ValueError(
            f"this host's name {name!r} does not resolve, and Horovod's Gloo needs it: add it to /etc/hosts "
            "(a container: give it a resolvable --hostname, or share the host's with --uts host)"
        ) from None


class Distributed:
    """Rank/size queries and numpy-in, numpy-out collectives for one Horovod job."""

    def __init__(
        self,
        hvd: Any,
        to_tensor: Callable[[np.ndarray], Any],
        to_numpy: Callable[[Any], np.ndarray],
        select_device: Callable[[int], Any],
    ):
        check_hostname_resolves()
        # Horovod: start the background communication thread and join the job.
        hvd.init()
        self.hvd = hvd
        self._to_tensor = to_tensor
        self._to_numpy = to_numpy
        # Horovod: one GPU per rank, chosen by the rank's index on its host.
        self.device = select_device(self.local_rank)

    @property
    def rank(self) -> int:
        return self.hvd.rank()

    @property
    def size(self) -> int:
        return self.hvd.size()

    @property
    def local_rank(self) -> int:
        return self.hvd.local_rank()

    @property
    def local_size(self) -> int:
        return self.hvd.local_size()

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0

    def compression(self, name: str) -> Any:
        """Horovod's gradient compressor for ``train.compression``: "none" or "fp16" on the wire."""
        return {"none": self.hvd.Compression.none, "fp16": self.hvd.Compression.fp16}[name]

    def allreduce_mean(self, array: np.ndarray, name: str) -> np.ndarray:
        """Element-wise mean over ranks of an array of identical shape on every rank."""
        # Horovod: average across ranks.
        return self._to_numpy(self.hvd.allreduce(self._to_tensor(np.asarray(array)), op=self.hvd.Average, name=name))

    def allreduce_sum(self, array: np.ndarray, name: str) -> np.ndarray:
        """Element-wise sum over ranks of an array of identical shape on every rank."""
        # Horovod: sum across ranks.
        return self._to_numpy(self.hvd.allreduce(self._to_tensor(np.asarray(array)), op=self.hvd.Sum, name=name))

    def broadcast(self, array: np.ndarray, root_rank: int, name: str) -> np.ndarray:
        """``root_rank``'s array, returned on every rank."""
        # Horovod: copy root_rank's value to every rank.
        return self._to_numpy(self.hvd.broadcast(self._to_tensor(np.asarray(array)), root_rank=root_rank, name=name))

    def allgather(self, array: np.ndarray, name: str) -> np.ndarray:
        """Concatenation along axis 0 of every rank's array, in rank order (dim 0 may differ)."""
        # Horovod: gather every rank's rows.
        return self._to_numpy(self.hvd.allgather(self._to_tensor(np.asarray(array)), name=name))


def gpu_for_local_rank(local_rank: int, gpu_count: int) -> int | None:
    """The GPU that the rank with this host-local index pins, or None on a host without GPUs.

    One GPU per rank: more ranks than GPUs on a host is an error, not silent sharing.
    """
    if gpu_count == 0:
        return None
    if not 0 <= local_rank < gpu_count:
        raise ValueError(
            f"local rank {local_rank} has no GPU of its own: this host has {gpu_count} GPU(s); "
            f"start at most {gpu_count} ranks per host (NAME:{gpu_count} in --hosts)"
        )
    return local_rank
