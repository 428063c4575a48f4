"""Token data: the corpus as token ids and its train/validation split into windows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.contract.config import DataConfig
from harness.data.prepared import PreparedData, TokenView, split_point, token_stream
from harness.data.tokenizer import BYTES, ByteTokenizer, Tokenizer, load_tokenizer


def encode(text: str) -> np.ndarray:
    """UTF-8 bytes as token ids, (N,) uint8."""
    return ByteTokenizer().encode(text)


def decode(tokens) -> str:
    return ByteTokenizer().decode(tokens)


def data_tokenizer(config: DataConfig) -> Tokenizer:
    """The tokenizer the configured data is read with: ``data.tokenizer``, or for prepared data the
    one it was prepared with (``data.tokenizer``, when also set, must be that one)."""
    if not config.prepared:
        return load_tokenizer(config.tokenizer)
    prepared = PreparedData(config.prepared)
    tokenizer = load_tokenizer(str(prepared.tokenizer_file) if prepared.tokenizer_file else BYTES)
    if tokenizer.sha256 != prepared.tokenizer_sha256:
        raise ValueError(f"{prepared.tokenizer_file} changed after `harness prepare`: prepare the data again")
    if config.tokenizer != BYTES and load_tokenizer(config.tokenizer).sha256 != tokenizer.sha256:
        raise ValueError(
            f"data.tokenizer {config.tokenizer!r} is not the tokenizer data.prepared {config.prepared!r} was "
            f"made with ({tokenizer.name}); leave data.tokenizer unset to use that one"
        )
    return tokenizer


def load_corpus(config: DataConfig) -> np.ndarray | TokenView:
    """All tokens of the configured data: a prepared directory's, memory-mapped, or the inputs
    tokenized now, in memory ((N,) uint8 for bytes, uint16/uint32 for a BPE)."""
    if config.prepared:
        prepared = PreparedData(config.prepared)
        if prepared.pairs:
            raise ValueError(
                f"data.prepared {config.prepared!r} holds source/target pairs (`harness prepare --pairs`); this task "
                "reads a token stream: prepare its inputs without --pairs"
            )
        prepared.check_split(config.val_fraction)
        return prepared.tokens()
    parts = [ids for ids, _ in token_stream(config, load_tokenizer(config.tokenizer))]
    return np.concatenate(parts)


@dataclass(frozen=True)
class WindowSplit:
    """Non-overlapping windows of ``seq_len + 1`` tokens over one contiguous stretch of the corpus."""

    tokens: np.ndarray | TokenView  # in memory, or memory-mapped prepared shards
    seq_len: int

    def __len__(self) -> int:
        """The number of windows."""
        return (len(self.tokens) - 1) // self.seq_len

    def windows(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and next-token targets for window ``indices``: two (len(indices), seq_len) int64."""
        starts = np.asarray(indices, dtype=np.int64)[:, None] * self.seq_len
        rows = self.tokens[starts + np.arange(self.seq_len + 1)].astype(np.int64)  # (n, T + 1)
        return rows[:, :-1], rows[:, 1:]


def train_val_split(
    tokens: np.ndarray | TokenView, seq_len: int, val_fraction: float
) -> tuple[WindowSplit, WindowSplit]:
    """The first ``1 - val_fraction`` of the corpus trains, the rest validates."""
    cut = split_point(len(tokens), val_fraction)
    train, val = WindowSplit(tokens[:cut], seq_len), WindowSplit(tokens[cut:], seq_len)
    if len(train) == 0 or len(val) == 0:
        raise ValueError(
            f"corpus of {len(tokens)} tokens is too small for seq_len {seq_len} with val_fraction "
            f"{val_fraction}: each split needs at least {seq_len + 1} tokens"
        )
    return train, val
