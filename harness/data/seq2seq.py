"""The sequence-to-sequence task: a target sequence from a source sequence (translation).

Pairs (harness/data/pairs.py) are tokenized with the one shared tokenizer of ``data.tokenizer``,
which must have a pad and an end token (harness/data/tokenizer.py): each side ends with the end token;
the decoder reads the target shifted right behind a start token (the pad token, as Marian and T5
start, or the end token, as BART does); padding is masked out of the encoder's attention and
weighted out of the loss. All batches are padded to the longest source and the longest target of
the data, so every step has one shape (one trace in TensorFlow). The last ``data.val_fraction`` of
the pairs validates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.contract.config import DataConfig
from harness.contract.task import Batch
from harness.data.corpus import data_tokenizer
from harness.data.pairs import read_pairs
from harness.data.tokenizer import END_TOKENS, PAD_TOKENS, Tokenizer


def seq2seq_ids(tokenizer: Tokenizer) -> tuple[int, int]:
    """(pad id, end id) of ``tokenizer``; ``ValueError`` naming what it lacks."""
    pad, end = tokenizer.special_id(PAD_TOKENS), tokenizer.special_id(END_TOKENS)
    if pad is None or end is None:
        lacks = " and ".join(what for what, found in (("a pad token", pad), ("an end token", end)) if found is None)
        raise ValueError(
            f"tokenizer {tokenizer.name} lacks {lacks} ({' or '.join(PAD_TOKENS)}; {' or '.join(END_TOKENS)}): "
            "a sequence-to-sequence task pads its batches and ends each side; train one with "
            "`harness tokenizer train --pairs`"
        )
    return pad, end


@dataclass(frozen=True)
class PairSplit:
    """Tokenized pairs, each side ending with the end token, and their texts (BLEU's references)."""

    sources: list[np.ndarray]
    targets: list[np.ndarray]
    texts: list[tuple[str, str]]
    source_len: int  # every batch's padded lengths: the longest of the data, both splits
    target_len: int
    pad: int
    start: int  # the decoder's first input

    def __len__(self) -> int:
        return len(self.sources)

    def padded(self, rows: list[np.ndarray], indices: np.ndarray, length: int) -> np.ndarray:
        """(len(indices), length) int64: ``rows[indices]``, each padded on the right."""
        out = np.full((len(indices), length), self.pad, np.int64)
        for i, index in enumerate(indices):
            row = rows[int(index)]
            out[i, : len(row)] = row
        return out

    @staticmethod
    def mask(rows: list[np.ndarray], indices: np.ndarray, length: int) -> np.ndarray:
        """(len(indices), length) int64: 1 on each row's tokens, 0 on its padding."""
        lengths = np.array([len(rows[int(i)]) for i in indices])
        return (np.arange(length) < lengths[:, None]).astype(np.int64)


@dataclass(frozen=True)
class Seq2SeqTask:
    """Sources of at most ``max_source_len`` tokens to targets of at most ``max_target_len`` (the end
    token included): what the model's positions hold. A longer side is refused, or with
    ``data.truncate`` cut to fit (its end token kept). ``start``: the decoder's start token, "pad"
    or "end" (a torch embedding with ``padding_idx`` never trains the pad row, where a Keras one
    does: a pair of such models agrees in training only when the decoder does not start on pad)."""

    max_source_len: int
    max_target_len: int
    start: str = "pad"

    def __post_init__(self) -> None:
        if self.start not in ("pad", "end"):
            raise ValueError(f"Seq2SeqTask.start must be 'pad' or 'end', received {self.start!r}")

    def splits(self, data: DataConfig) -> tuple[PairSplit, PairSplit]:
        if data.prepared:
            raise ValueError(
                f"data.prepared {data.prepared!r}: prepared directories hold token streams for language models; "
                "a sequence-to-sequence task reads its pairs from data.paths"
            )
        tokenizer = data_tokenizer(data)
        pad, end = seq2seq_ids(tokenizer)
        pairs = read_pairs(data)
        sides = []
        for side, limit, name in ((0, self.max_source_len, "source"), (1, self.max_target_len, "target")):
            texts = [pair[side] for pair in pairs]
            encoded = [np.append(ids.astype(np.int64), end) for ids in tokenizer.encode_batch(texts)]
            sides.append([self._fit(ids, limit, name, t, data.truncate) for ids, t in zip(encoded, texts, strict=True)])
        sources, targets = sides
        cut = int(len(pairs) * (1 - data.val_fraction))
        if cut == 0 or cut == len(pairs):
            raise ValueError(
                f"{len(pairs)} pairs are too few for data.val_fraction {data.val_fraction}: each split needs a pair"
            )
        fixed = max(map(len, sources)), max(map(len, targets)), pad, pad if self.start == "pad" else end
        return (
            PairSplit(sources[:cut], targets[:cut], pairs[:cut], *fixed),
            PairSplit(sources[cut:], targets[cut:], pairs[cut:], *fixed),
        )

    @staticmethod
    def _fit(ids: np.ndarray, limit: int, name: str, text: str, truncate: bool) -> np.ndarray:
        if len(ids) <= limit:
            return ids
        if truncate:
            return np.append(ids[: limit - 1], ids[-1])  # the end token stays last
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ValueError(
            f"a {name} of {len(ids)} tokens (its end token included) is longer than the model's {limit} positions: "
            f"{shown!r}; set data.truncate=true to cut such sides, or choose a model with more positions"
        )

    def source_inputs(self, split: PairSplit, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The encoder's inputs for pairs ``indices``: what decoding starts from."""
        input_ids = split.padded(split.sources, indices, split.source_len)  # (N, S)
        return {"input_ids": input_ids, "attention_mask": split.mask(split.sources, indices, split.source_len)}

    def batch(self, split: PairSplit, indices: np.ndarray, rng: np.random.Generator) -> Batch:
        targets = split.padded(split.targets, indices, split.target_len)  # (N, T)
        # The decoder reads the target shifted right: the start token, then all but its last token.
        decoder_input_ids = np.concatenate([np.full((len(indices), 1), split.start), targets[:, :-1]], axis=1)
        weights = split.mask(split.targets, indices, split.target_len).astype(np.float32)  # padding weighs 0
        inputs = self.source_inputs(split, indices) | {"decoder_input_ids": decoder_input_ids}
        return Batch(inputs, targets, weights)

    def eval_metrics(self, mean_loss: float, accuracy: float) -> dict[str, float]:
        return {"val_loss": mean_loss, "val_token_accuracy": accuracy}
