"""Byte-level data: corpus loading, the train/validation split, and the global batch order.

Every rank of every framework computes the same order from (seed, epoch) in numpy, so a torch run
and a TF run see identical batches, and a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.config import DataConfig

VOCAB_SIZE = 256  # bytes


def encode(text: str) -> np.ndarray:
    """UTF-8 bytes as token ids, (N,) uint8."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def decode(tokens) -> str:
    return bytes(int(t) for t in tokens).decode("utf-8", errors="replace")


def default_corpus() -> str:
    """CPython's documentation topics (``pydoc_data.topics``, ~465 KB): shipped with every Python."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def load_corpus(config: DataConfig) -> np.ndarray:
    """All tokens of the configured files (or the default corpus), concatenated: (N,) uint8."""
    if not config.paths:
        return encode(default_corpus())
    parts = []
    for path in map(Path, config.paths):
        if not path.is_file():
            raise ValueError(f"data file {str(path)!r} does not exist or is not a file")
        parts.append(path.read_bytes())
    return np.frombuffer(b"\n\n".join(parts), dtype=np.uint8).copy()


@dataclass(frozen=True)
class Split:
    """Non-overlapping windows of ``seq_len + 1`` tokens over one contiguous stretch of the corpus."""

    tokens: np.ndarray
    seq_len: int

    def __len__(self) -> int:
        """The number of windows."""
        return (len(self.tokens) - 1) // self.seq_len

    def windows(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and next-token targets for window ``indices``: two (len(indices), seq_len) int64."""
        starts = np.asarray(indices, dtype=np.int64)[:, None] * self.seq_len
        rows = self.tokens[starts + np.arange(self.seq_len + 1)].astype(np.int64)  # (n, T + 1)
        return rows[:, :-1], rows[:, 1:]


def train_val_split(tokens: np.ndarray, seq_len: int, val_fraction: float) -> tuple[Split, Split]:
    """The first ``1 - val_fraction`` of the corpus trains, the rest validates."""
    cut = int(len(tokens) * (1 - val_fraction))
    train, val = Split(tokens[:cut], seq_len), Split(tokens[cut:], seq_len)
    if len(train) == 0 or len(val) == 0:
        raise ValueError(
            f"corpus of {len(tokens)} bytes is too small for seq_len {seq_len} with val_fraction "
            f"{val_fraction}: each split needs at least {seq_len + 1} bytes"
        )
    return train, val


class BatchOrder:
    """Which training windows each rank reads at each global step.

    Epoch e uses one permutation of all windows drawn from (seed, e). Global step s of an epoch
    takes the next ``batch_size * world_size`` entries; rank r reads its contiguous slice of them.
    The windows left over at the end of an epoch (fewer than one global batch) are skipped, so
    every step has the same shape on every rank.
    """

    def __init__(self, num_windows: int, batch_size: int, world_size: int, seed: int):
        self.global_batch = batch_size * world_size
        if num_windows < self.global_batch:
            raise ValueError(
                f"the training split has {num_windows} windows, fewer than one global batch "
                f"({batch_size} per rank x {world_size} ranks)"
            )
        self.num_windows, self.batch_size, self.seed = num_windows, batch_size, seed
        self.steps_per_epoch = num_windows // self.global_batch
        self._epoch, self._permutation = -1, np.empty(0, np.int64)

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, step within the epoch) of global step ``step`` (0-based)."""
        return divmod(step, self.steps_per_epoch)

    def indices(self, step: int, rank: int) -> np.ndarray:
        epoch, offset = self.position(step)
        return self.window_slice(epoch, offset * self.global_batch + rank * self.batch_size, self.batch_size)

    def window_slice(self, epoch: int, start: int, count: int) -> np.ndarray:
        """Entries ``start:start + count`` of epoch ``epoch``'s permutation of the windows."""
        if epoch != self._epoch:
            self._epoch = epoch
            self._permutation = np.random.default_rng([self.seed, epoch]).permutation(self.num_windows)
        return self._permutation[start : start + count]
