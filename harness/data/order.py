"""The global batch order: which examples each rank reads at each step.

Every rank of every framework computes the same order from (seed, epoch) in numpy, so a torch run
and a TF run see identical batches, and a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import numpy as np

from harness.contract.config import TrainConfig


class BatchOrder:
    """Which training windows each rank reads at each global step.

    Epoch e uses one permutation of all windows drawn from (seed, e). Global step s of an epoch
    takes the next ``windows_per_rank * world_size`` entries; rank r reads its contiguous slice of them.
    The windows left over at the end of an epoch (fewer than one global batch) are skipped, so
    every step has the same shape on every rank.
    """

    def __init__(self, num_windows: int, windows_per_rank: int, world_size: int, seed: int):
        self.global_batch = windows_per_rank * world_size
        if num_windows < self.global_batch:
            raise ValueError(
                f"the training split has {num_windows} windows, fewer than one global batch "
                f"({windows_per_rank} per rank x {world_size} ranks)"
            )
        self.num_windows, self.windows_per_rank, self.seed = num_windows, windows_per_rank, seed
        self.steps_per_epoch = num_windows // self.global_batch
        self._epoch, self._permutation = -1, np.empty(0, np.int64)

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, step within the epoch) of global step ``step`` (0-based)."""
        return divmod(step, self.steps_per_epoch)

    def indices(self, step: int, rank: int) -> np.ndarray:
        epoch, offset = self.position(step)
        return self.window_slice(
            epoch, offset * self.global_batch + rank * self.windows_per_rank, self.windows_per_rank
        )

    def window_slice(self, epoch: int, start: int, count: int) -> np.ndarray:
        """Entries ``start:start + count`` of epoch ``epoch``'s permutation of the windows."""
        if epoch != self._epoch:
            self._epoch = epoch
            self._permutation = np.random.default_rng([self.seed, epoch]).permutation(self.num_windows)
        return self._permutation[start : start + count]


def batch_order(train: TrainConfig, num_windows: int, world_size: int) -> BatchOrder:
    """The run's order over ``num_windows`` training examples at ``world_size`` ranks."""
    return BatchOrder(num_windows, train.windows_per_rank, world_size, train.seed)
