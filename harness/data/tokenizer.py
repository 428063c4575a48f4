"""Tokenizers: ``bytes`` (the 256 byte values, the default), a Hugging Face ``tokenizer.json`` (a
byte-level BPE trained here with ``harness tokenizer train``, or any such file) or a SentencePiece
model (``harness tokenizer train --sentencepiece``, or any ``.model``/``.spm`` file, as Marian and
T5 ship theirs).

Both frameworks see the ids this module makes in numpy, so they train on identical tokens. A
tokenizer is named by its ``sha256`` (of the file; ``"bytes"`` for bytes), which checkpoints and
prepared data record so that a run cannot silently mix tokenizers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

BYTES = "bytes"  # data.tokenizer's name for the byte-level tokenizer
# A tokenizer as a file beside a model (in checkpoints, prepared data and exports), by its kind.
TOKENIZER_FILE = "tokenizer.json"
SENTENCEPIECE_FILE = "tokenizer.model"
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
    file_name = None

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


def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ValueError(f"tokenizer file {str(path)!r} cannot be read: {err.strerror}") from None


class BPETokenizer:
    """A Hugging Face ``tokenizers`` tokenizer loaded from a ``tokenizer.json`` file."""

    file_name = TOKENIZER_FILE

    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer

        self.path = Path(path)
        data = _read(path)
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


class SentencePieceTokenizer:
    """A SentencePiece model (``sentencepiece``'s own encoder, so ids are the ones the model's authors
    get), loaded from its serialized ``.model`` file."""

    file_name = SENTENCEPIECE_FILE

    def __init__(self, path: str | Path):
        import sentencepiece

        self.path = Path(path)
        data = _read(path)
        self._processor = sentencepiece.SentencePieceProcessor()
        try:
            self._processor.LoadFromSerializedProto(data)
        except (RuntimeError, OSError, TypeError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(
                f"tokenizer file {str(path)!r} is neither a tokenizer.json nor a SentencePiece model: {reason}"
            ) from None
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.name = f"{self.path.name} (sha256 {self.sha256[:12]})"
        self.vocab_size = self._processor.get_piece_size()

    def encode(self, text: str | bytes) -> np.ndarray:
        """(N,) ids, the smallest unsigned dtype that holds the vocabulary; no start or end token."""
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str | bytes]) -> list[np.ndarray]:
        strings = [t.decode("utf-8", errors="replace") if isinstance(t, bytes) else t for t in texts]
        dtype = token_dtype(self.vocab_size)
        return [np.asarray(ids, dtype) for ids in self._processor.encode(strings, out_type=int, num_threads=-1)]

    def decode(self, ids: Iterable[int]) -> str:
        return self._processor.decode([int(i) for i in ids])

    def special_id(self, tokens: Sequence[str]) -> int | None:
        """The id of the first of ``tokens`` that is one of the model's pieces; None: it has none."""
        ids = (self._processor.piece_to_id(token) for token in tokens)
        return next((i for i, t in zip(ids, tokens, strict=True) if self._processor.id_to_piece(i) == t), None)


Tokenizer = ByteTokenizer | BPETokenizer | SentencePieceTokenizer


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


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 where every id fits (vocabularies up to 65536), else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


def load_tokenizer(spec: str) -> Tokenizer:
    """``"bytes"``, or the path of a ``tokenizer.json`` or a SentencePiece model (told apart by their
    contents: JSON or not); ``ValueError`` for anything else."""
    if spec == BYTES:
        return ByteTokenizer()
    path = Path(spec)
    if not path.is_file():
        raise ValueError(
            f"data.tokenizer must be 'bytes', a tokenizer.json or a SentencePiece model file, received {spec!r} "
            "(no such file)"
        )
    return BPETokenizer(path) if _read(path)[:64].lstrip().startswith(b"{") else SentencePieceTokenizer(path)


def tokenizer_beside(directory: str | Path) -> Path | None:
    """The tokenizer file stored in ``directory`` (a checkpoint, an export), if any."""
    found = (Path(directory) / name for name in (TOKENIZER_FILE, SENTENCEPIECE_FILE))
    return next((path for path in found if path.is_file()), None)


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


def train_sentencepiece(
    texts: Iterable[str], vocab_size: int, out: Path, pairs: bool = False
) -> SentencePieceTokenizer:
    """Train a SentencePiece unigram model (Marian's kind) of at most ``vocab_size`` pieces (fewer
    where the texts hold fewer; <unk>, with ``pairs`` also <pad> and </s>, first) on ``texts`` and
    write it to ``out`` whole."""
    import io

    import sentencepiece

    model = io.BytesIO()
    special = {"unk_id": 0, "bos_id": -1, "pad_id": 1 if pairs else -1, "eos_id": 2 if pairs else -1}
    failed: list[ValueError] = []  # a bad input record, raised inside the trainer's read of the texts

    def sentences() -> Iterator[str]:
        try:
            yield from texts
        except ValueError as err:
            failed.append(err)
            raise

    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=sentences(), model_writer=model, vocab_size=vocab_size, model_type="unigram",
            character_coverage=1.0, hard_vocab_limit=False, minloglevel=2, **special,
        )  # fmt: skip
    except RuntimeError as err:  # e.g. too few pieces for the characters: its reason, without the C++ location
        if failed:
            raise failed[0] from None
        reason = re.sub(r"^\w+: \S+\(\d+\) \[.*?\] ", "", str(err).splitlines()[0])
        raise ValueError(f"SentencePiece training failed: {reason}") from None
    partial = out.with_name(f".{out.name}.partial")
    partial.write_bytes(model.getvalue())
    partial.replace(out)
    return SentencePieceTokenizer(out)
