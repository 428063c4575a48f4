"""The causal language-model task: next-token prediction over windows of the corpus."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.contract.config import DataConfig
from harness.contract.task import Batch, Inputs
from harness.data.corpus import WindowSplit, load_corpus, train_val_split


@dataclass(frozen=True)
class CausalLMTask:
    """Next-token prediction over non-overlapping windows of ``seq_len + 1`` tokens of the corpus.

    ``named_inputs``: the model takes ``input_ids`` and an all-ones ``attention_mask`` as keyword
    arguments (a transformers model's call) instead of one positional token array."""

    seq_len: int
    named_inputs: bool = False

    def model_inputs(self, tokens: np.ndarray) -> Inputs:
        """The model's inputs for token ids (B, T): what ``batch`` feeds it and ``harness generate`` too."""
        if not self.named_inputs:
            return tokens
        return {"input_ids": tokens, "attention_mask": np.ones_like(tokens)}

    def splits(self, data: DataConfig) -> tuple[WindowSplit, WindowSplit]:
        return train_val_split(load_corpus(data), self.seq_len, data.val_fraction)

    def batch(self, split: WindowSplit, indices: np.ndarray, rng: np.random.Generator) -> Batch:
        inputs, targets = split.windows(indices)  # (N, T) each
        return Batch(self.model_inputs(inputs), targets)

    def eval_metrics(self, mean_loss: float, accuracy: float) -> dict[str, float]:
        return {"val_loss": mean_loss, "val_perplexity": math.exp(mean_loss)}
