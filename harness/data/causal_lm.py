"""The causal language-model task: next-token prediction over windows of the corpus."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.contract.config import DataConfig
from harness.contract.task import Batch
from harness.data.corpus import WindowSplit, load_corpus, train_val_split


@dataclass(frozen=True)
class CausalLMTask:
    """Next-token prediction over non-overlapping windows of ``seq_len + 1`` tokens of the corpus."""

    seq_len: int

    def splits(self, data: DataConfig) -> tuple[WindowSplit, WindowSplit]:
        return train_val_split(load_corpus(data), self.seq_len, data.val_fraction)

    def batch(self, split: WindowSplit, indices: np.ndarray, rng: np.random.Generator) -> Batch:
        inputs, targets = split.windows(indices)  # (N, T) each
        return Batch(inputs, targets)

    def eval_metrics(self, mean_loss: float, accuracy: float) -> dict[str, float]:
        return {"val_loss": mean_loss, "val_perplexity": math.exp(mean_loss)}
