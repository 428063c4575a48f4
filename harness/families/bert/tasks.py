"""The BERT family's tasks: masked-LM pretraining on the corpus, and topic classification of
CPython's documentation paragraphs."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from harness.contract.config import DataConfig
from harness.contract.task import Batch
from harness.data.corpus import WindowSplit, load_corpus, train_val_split
from harness.families.bert.config import BYTE_IDS, CLS_ID, MASK_ID, PAD_ID


class AccuracyMetrics:
    """What both tasks report: the validation loss and accuracy (masked tokens, or paragraphs)."""

    def eval_metrics(self, mean_loss: float, accuracy: float) -> dict[str, float]:
        return {"val_loss": mean_loss, "val_accuracy": accuracy}


@dataclass(frozen=True)
class MaskedLMTask(AccuracyMetrics):
    """BERT's masked-LM objective over windows of the corpus, each [CLS] + ``seq_len - 1`` bytes.

    In every sequence ``round(mask_rate * (seq_len - 1))`` byte positions (at least one) are chosen;
    of those, 80 % become MASK_ID, 10 % a random byte and 10 % stay, and the loss is taken on the
    chosen positions only (weight 1; all others 0). The draws come from the step's numpy generator,
    so both frameworks train on identical masked batches.
    """

    seq_len: int
    mask_rate: float = 0.15

    def splits(self, data: DataConfig) -> tuple[WindowSplit, WindowSplit]:
        return train_val_split(load_corpus(data), self.seq_len - 1, data.val_fraction)

    def batch(self, split: WindowSplit, indices: np.ndarray, rng: np.random.Generator) -> Batch:
        windows, _ = split.windows(indices)  # (N, T - 1) bytes
        count, length = windows.shape
        tokens = np.concatenate([np.full((count, 1), CLS_ID, np.int64), windows.astype(np.int64)], axis=1)  # (N, T)
        chosen_per_row = max(1, round(self.mask_rate * length))
        order = np.argsort(rng.random((count, length)), axis=1)[:, :chosen_per_row] + 1  # (N, k), never [CLS]
        chosen = np.zeros(tokens.shape, bool)
        np.put_along_axis(chosen, order, True, axis=1)
        action = rng.random(tokens.shape)
        random_bytes = rng.integers(0, BYTE_IDS, tokens.shape)
        inputs = np.where(chosen & (action < 0.8), MASK_ID, tokens)
        inputs = np.where(chosen & (action >= 0.8) & (action < 0.9), random_bytes, inputs)
        return Batch(inputs, tokens, chosen.astype(np.float32))


@dataclass(frozen=True)
class LabelledSplit:
    """Padded examples and their labels: ``inputs`` (N, block_size) int64, ``labels`` (N,) int64."""

    inputs: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class TopicTask(AccuracyMetrics):
    """Which CPython documentation topic (``pydoc_data.topics``, shipped with every interpreter) a
    paragraph comes from: real labelled text with no download.

    The ``num_labels`` topics with the most paragraphs of at least MIN_BYTES bytes are the classes;
    each contributes its first PER_TOPIC such paragraphs, cut to ``block_size - 1`` bytes after
    [CLS] and padded with PAD_ID (so inputs vary in length), and a seeded shuffle holds out
    ``data.val_fraction`` of them. The masked-LM pretraining read the same text, without labels.
    """

    block_size: int
    num_labels: int

    MIN_BYTES = 48
    PER_TOPIC = 64

    def examples(self) -> tuple[np.ndarray, np.ndarray]:
        from pydoc_data.topics import topics

        paragraphs = {
            name: [p.strip().encode() for p in re.split(r"\n\s*\n", text) if len(p.strip().encode()) >= self.MIN_BYTES]
            for name, text in sorted(topics.items())
        }
        chosen = sorted(paragraphs, key=lambda name: (-len(paragraphs[name]), name))[: self.num_labels]
        if len(chosen) < self.num_labels:
            raise ValueError(f"model.num_labels must be at most {len(chosen)} topics, received {self.num_labels}")
        inputs, labels = [], []
        for label, name in enumerate(chosen):
            for paragraph in paragraphs[name][: self.PER_TOPIC]:
                ids = [CLS_ID, *paragraph[: self.block_size - 1]]
                inputs.append(ids + [PAD_ID] * (self.block_size - len(ids)))
                labels.append(label)
        return np.array(inputs, np.int64), np.array(labels, np.int64)

    def splits(self, data: DataConfig) -> tuple[LabelledSplit, LabelledSplit]:
        if data.paths:
            raise ValueError("the classify head trains on CPython's documentation topics; data.paths must be empty")
        inputs, labels = self.examples()
        order = np.random.default_rng(0).permutation(len(labels))  # fixed: the same held-out set for every run
        held_out = max(1, round(data.val_fraction * len(labels)))
        val, train = order[:held_out], order[held_out:]
        return LabelledSplit(inputs[train], labels[train]), LabelledSplit(inputs[val], labels[val])

    def batch(self, split: LabelledSplit, indices: np.ndarray, rng: np.random.Generator) -> Batch:
        return Batch(split.inputs[indices], split.labels[indices])


def majority_baseline(split: LabelledSplit) -> float:
    """The accuracy of always answering the split's most frequent label."""
    return float(np.bincount(split.labels).max() / len(split))
