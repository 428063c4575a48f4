"""Tokenizers: ``bytes`` (the 256 byte values, the default) or a byte-level BPE stored as a Hugging
Face ``tokenizer.json`` (trained here with ``harness tokenizer train``, or any such file).

Both frameworks see the ids this module makes in numpy, so they train on identical tokens. A
tokenizer is named by its ``sha256`` (of the file; ``"bytes"`` for bytes), which checkpoints and
prepared data record so that a run cannot silently mix tokenizers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

BYTES = "bytes"  # data.tokenizer's name for the byte-level tokenizer
TOKENIZER_FILE = "tokenizer.json"  # a tokenizer as a file beside a model: in checkpoints and exports
END_OF_TEXT = "<|endoftext|>"  # the trained tokenizer's one special token, as in GPT-2
# What a sequence-to-sequence task pads with and ends each side with: a tokenizer.json's padding
# setting, else the first of these tokens it has (Marian/T5/BART's, then BERT's conventions).
# `harness tokenizer train --pairs` adds the first of each.
PAD_TOKENS = ("<pad>", "[PAD]")
END_TOKENS = ("</s>", END_OF_TEXT, "[SEP]")


class ByteTokenizer:
    """UTF-8 bytes as ids 0..255."""

    name = BYTES
    sha256 = BYTES
    vocab_size = 256
    path = None

    def encode(self, text: str | bytes) -> np.ndarray:
        """(N,) uint8 ids."""
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        return np.frombuffer(data, dtype=np.uint8).copy()

    def encode_batch(self, texts: Sequence[str | bytes]) -> list[np.ndarray]:
        return [self.encode(text) for text in texts]

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def special_id(self, tokens: Sequence[str]) -> None:
        return None  # 256 byte values, nothing else


class BPETokenizer:
    """A Hugging Face ``tokenizers`` tokenizer loaded from a ``tokenizer.json`` file."""

    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer

        self.path = Path(path)
        try:
            data = self.path.read_bytes()
        except OSError as err:
            raise ValueError(f"tokenizer file {str(path)!r} cannot be read: {err.strerror}") from None
        try:
            self._tokenizer = Tokenizer.from_str(data.decode("utf-8"))
        except Exception as err:  # tokenizers raises a bare Exception for malformed JSON or schema
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(f"tokenizer file {str(path)!r} is not a valid tokenizer.json: {reason}") from None
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.name = f"{self.path.name} (sha256 {self.sha256[:12]})"
        self.vocab_size = self._tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str | bytes) -> np.ndarray:
        """(N,) ids, the smallest unsigned dtype that holds the vocabulary."""
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str | bytes]) -> list[np.ndarray]:
        """Many texts at once: the Rust encoder spreads them over threads."""
        strings = [t.decode("utf-8", errors="replace") if isinstance(t, bytes) else t for t in texts]
        dtype = token_dtype(self.vocab_size)
        encoded = self._tokenizer.encode_batch_fast(strings, add_special_tokens=False)  # ids only, no offsets
        return [np.asarray(e.ids, dtype) for e in encoded]

    def decode(self, ids: Iterable[int]) -> str:
        return self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    def special_id(self, tokens: Sequence[str]) -> int | None:
        """The id of the first of ``tokens`` in the vocabulary (a padding setting's pad token first,
        when asked for a pad token); None: it has none of them."""
        padding = self._tokenizer.padding
        if padding and padding.get("pad_token") in tokens:
            return padding["pad_id"]
        return next((i for i in map(self._tokenizer.token_to_id, tokens) if i is not None), None)


Tokenizer = ByteTokenizer | BPETokenizer


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 where every id fits (vocabularies up to 65536), else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


def load_tokenizer(spec: str) -> Tokenizer:
    """``"bytes"``, or the path of a ``tokenizer.json``; ``ValueError`` for anything else."""
    if spec == BYTES:
        return ByteTokenizer()
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"data.tokenizer must be 'bytes' or a tokenizer.json file, received {spec!r} (no such file)")
    return BPETokenizer(path)


def train_bpe(texts: Iterable[str], vocab_size: int, out: Path, pairs: bool = False) -> BPETokenizer:
    """Train a byte-level BPE of ``vocab_size`` ids (END_OF_TEXT, with ``pairs`` also a pad and an end
    token, the 256 bytes, merges) on ``texts`` and write it to ``out`` whole (a temporary file renamed
    into place)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    special = [END_OF_TEXT, *((PAD_TOKENS[0], END_TOKENS[0]) if pairs else ())]
    minimum = len(pre_tokenizers.ByteLevel.alphabet()) + len(special)
    if not minimum <= vocab_size <= 2**32:
        raise ValueError(f"--vocab-size must be in [{minimum}, {2**32}] (the 256 bytes and {', '.join(special)}), "
                         f"received {vocab_size}")  # fmt: skip
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    partial = out.with_name(f".{out.name}.partial")
    tokenizer.save(str(partial))
    partial.replace(out)
    return BPETokenizer(out)
