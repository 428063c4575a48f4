"""Prepared data: the configured inputs tokenized once (``harness prepare``) into shards of token ids
and a small JSON index; training reads its windows through memory maps of the shards (numpy arrays
over ``mmap``, see ``Shard``), so a rank's memory does not grow with the corpus.

    OUT/index.json            format, tokenizer (sha256, vocabulary), dtype, val_fraction, the
                              train/validation cut, and each shard's token count and SHA-256
    OUT/tokens-00000.bin      token ids, uint16 (uint32 when the vocabulary needs it), in order
    OUT/tokenizer.json        the tokenizer the ids come from (none for bytes)

The token stream is exactly the one an unprepared run builds in memory (harness/data/corpus.py): the same
documents, separators and tokenizer, cut into train and validation at the same token; so a run on
prepared data sees the same windows, in the same global order, as one on the raw inputs.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from harness.contract.config import DataConfig
from harness.data.inputs import pieces
from harness.data.tokenizer import BPETokenizer, Tokenizer, load_tokenizer, token_dtype

INDEX_FILE = "index.json"
FORMAT = "harness-prepared/1"
SHARD_TOKENS = 1 << 28  # 256 Mi tokens a shard: 512 MiB of uint16
ENCODE_BATCH_BYTES = 8 << 20  # documents are tokenized in batches of about this many bytes
DOCUMENT_SEPARATOR = b"\n\n"


def token_stream(data: DataConfig, tokenizer: Tokenizer) -> Iterator[tuple[np.ndarray, int]]:
    """The corpus as consecutive arrays of token ids, each with the input bytes it covers: the
    documents in order (a long text file in pieces), DOCUMENT_SEPARATOR's tokens between two."""
    separator = tokenizer.encode(DOCUMENT_SEPARATOR)
    batch: list[tuple[bytes, bool]] = []
    size, first = 0, True
    for piece, starts in pieces(data):
        batch.append((piece, starts and not first))
        size, first = size + len(piece), False
        if size >= ENCODE_BATCH_BYTES:
            yield from _encoded(batch, tokenizer, separator)
            batch, size = [], 0
    if batch:
        yield from _encoded(batch, tokenizer, separator)


def _encoded(batch: list[tuple[bytes, bool]], tokenizer: Tokenizer, separator: np.ndarray):
    """Each piece's ids, after the separator's where a new document (not the first) begins."""
    for (piece, separated), ids in zip(batch, tokenizer.encode_batch([p for p, _ in batch]), strict=True):
        if separated:
            yield separator, len(DOCUMENT_SEPARATOR)
        yield ids, len(piece)


def split_point(total_tokens: int, val_fraction: float) -> int:
    """The first token of the validation split: the last ``val_fraction`` of the corpus validates."""
    return int(total_tokens * (1 - val_fraction))


def prepare(
    data: DataConfig,
    out: Path,
    shard_tokens: int = SHARD_TOKENS,
    progress: Callable[[int], None] = lambda input_bytes: None,
) -> dict:
    """Tokenize ``data``'s inputs into ``out`` (which must not exist yet) and return the index.

    Everything is written into a hidden sibling directory that is renamed to ``out`` only when
    complete; on any error it is removed, so ``out`` is either whole or absent. ``progress`` hears
    the input bytes consumed so far.
    """
    out = Path(out)
    if out.exists():
        raise ValueError(f"--out {out} already exists; choose a new directory (prepared data is never overwritten)")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: its parent directory does not exist")
    tokenizer = load_tokenizer(data.tokenizer)
    dtype = token_dtype(tokenizer.vocab_size)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        shards, input_bytes = _write_shards(token_stream(data, tokenizer), dtype, tmp, shard_tokens, progress)
        total = sum(shard["tokens"] for shard in shards)
        cut = split_point(total, data.val_fraction)
        if cut == 0 or cut == total:
            raise ValueError(f"the inputs make {total} tokens: too few to split with val_fraction {data.val_fraction}")
        if isinstance(tokenizer, BPETokenizer):
            shutil.copyfile(tokenizer.path, tmp / "tokenizer.json")
        index = {
            "format": FORMAT,
            "tokenizer": {
                "sha256": tokenizer.sha256,
                "vocab_size": tokenizer.vocab_size,
                "file": "tokenizer.json" if isinstance(tokenizer, BPETokenizer) else None,
            },
            "dtype": dtype.name,
            "input_bytes": input_bytes,
            "total_tokens": total,
            "val_fraction": data.val_fraction,
            "train_tokens": cut,
            "val_tokens": total - cut,
            "shards": shards,
        }
        (tmp / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return index


def _write_shards(stream, dtype: np.dtype, directory: Path, shard_tokens: int, progress) -> tuple[list[dict], int]:
    shards: list[dict] = []
    handle, digest, count, input_bytes = None, None, 0, 0
    try:
        for ids, covered in stream:
            ids = ids.astype(dtype, copy=False)
            while len(ids):
                if handle is None:
                    name = f"tokens-{len(shards):05d}.bin"
                    handle, digest, count = (directory / name).open("wb"), hashlib.sha256(), 0
                    shards.append({"file": name, "tokens": 0, "sha256": ""})
                piece, ids = ids[: shard_tokens - count], ids[shard_tokens - count :]
                data = piece.tobytes()
                handle.write(data)
                digest.update(data)
                count += len(piece)
                shards[-1].update(tokens=count, sha256=digest.hexdigest())
                if count == shard_tokens:
                    handle.close()
                    handle = None
            input_bytes += covered
            progress(input_bytes)
    finally:
        if handle is not None:
            handle.close()
    return shards, input_bytes


class Shard:
    """One shard file memory-mapped read-only as a numpy array. Reads are random (MADV_RANDOM: no
    read-ahead), and ``release`` drops the pages this process has mapped: they stay in the page
    cache, but a rank's resident memory does not grow with the corpus or with the steps it reads."""

    def __init__(self, path: Path, dtype: np.dtype):
        with path.open("rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._map.madvise(mmap.MADV_RANDOM)
        self.tokens = np.frombuffer(self._map, dtype)

    def __len__(self) -> int:
        return len(self.tokens)

    def release(self) -> None:
        self._map.madvise(mmap.MADV_DONTNEED)


class TokenView:
    """Tokens ``start:stop`` of the shards read as one sequence: ``len``, slices (views), and integer
    array indexing (any shape; the result has it), reading only the pages the indices touch."""

    def __init__(self, shards: list[Shard], start: int = 0, stop: int | None = None):
        self._shards = shards
        self._offsets = np.cumsum([0, *(len(s) for s in shards)])  # (shards + 1,) first token of each
        self.dtype = shards[0].tokens.dtype
        self.start, self.stop = start, int(self._offsets[-1]) if stop is None else stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, stride = key.indices(len(self))
            if stride != 1:
                raise ValueError("a TokenView slices with step 1 only")
            return TokenView(self._shards, self.start + start, self.start + max(start, stop))
        positions = np.asarray(key, np.int64) + self.start
        flat = positions.ravel()
        out = np.empty(flat.shape, self.dtype)
        shard_of = np.searchsorted(self._offsets, flat, side="right") - 1
        for shard in np.unique(shard_of):
            chosen = shard_of == shard
            out[chosen] = self._shards[shard].tokens[flat[chosen] - self._offsets[shard]]
            self._shards[shard].release()
        return out.reshape(positions.shape)


class PreparedData:
    """An opened prepared directory: its index, tokenizer and memory-mapped tokens."""

    def __init__(self, directory: Path | str, verify: bool = False):
        """``ValueError`` unless the index reads and every shard has its recorded size (and, with
        ``verify``, its recorded SHA-256: the whole corpus is read once)."""
        self.directory = Path(directory)
        try:
            self.index = json.loads((self.directory / INDEX_FILE).read_text())
            if self.index.get("format") != FORMAT:
                raise ValueError(f"format {self.index.get('format')!r}, expected {FORMAT!r}")
            self.dtype = np.dtype(self.index["dtype"])
            shards = self.index["shards"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"data.prepared {str(self.directory)!r} has no readable {INDEX_FILE}: {err}") from None
        self._paths = []
        for shard in shards:
            path = self.directory / shard["file"]
            expected = shard["tokens"] * self.dtype.itemsize
            if not path.is_file() or path.stat().st_size != expected:
                raise ValueError(f"prepared shard {path} is missing or not {expected} bytes: prepare the data again")
            if verify and _file_sha256(path) != shard["sha256"]:
                raise ValueError(
                    f"prepared shard {path} does not match its checksum in {INDEX_FILE}: the file changed "
                    "after `harness prepare`; prepare the data again"
                )
            self._paths.append(path)

    @property
    def tokenizer_sha256(self) -> str:
        return self.index["tokenizer"]["sha256"]

    @property
    def tokenizer_file(self) -> Path | None:
        name = self.index["tokenizer"].get("file")
        return self.directory / name if name else None

    def tokens(self) -> TokenView:
        """Every token, the shards memory-mapped now (opening the directory to read its index or
        tokenizer, as the config and checkpoint checks do, maps nothing)."""
        return TokenView([Shard(path, self.dtype) for path in self._paths])


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()
