"""Prepared data: the configured inputs tokenized once (``harness prepare``) into shards of token ids
and a small JSON index; training reads its windows through memory maps of the shards (numpy arrays
over ``mmap``, see ``Shard``), so a rank's memory does not grow with the corpus.

    OUT/index.json            format, tokenizer (sha256, vocabulary), dtype, val_fraction, the
                              train/validation cut, and each shard's token count and SHA-256
    OUT/tokens-00000.bin      token ids, uint16 (uint32 when the vocabulary needs it), in order
    OUT/tokenizer.json        the tokenizer the ids come from (tokenizer.model for SentencePiece;
                              none for bytes)

The token stream is exactly the one an unprepared run builds in memory (harness/data/corpus.py): the same
documents, separators and tokenizer, cut into train and validation at the same token; so a run on
prepared data sees the same windows, in the same global order, as one on the raw inputs.

Source/target pairs (``harness prepare --pairs``, for a sequence-to-sequence task) are two such
streams, each pair's ids (no end token) one after another, and where each pair starts:

    OUT/source-00000.bin, OUT/target-00000.bin    each side's token ids
    OUT/source-offsets.npy, OUT/target-offsets.npy  (pairs + 1,) int64: pair i is ids [o[i], o[i + 1])
    OUT/validation.jsonl      the validation pairs' texts (BLEU's references), {"source", "target"}

cut into train and validation at the same pair as the in-memory pairs (harness/data/seq2seq.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from harness.contract.config import DataConfig
from harness.data.inputs import pieces
from harness.data.pairs import iter_pairs
from harness.data.tokenizer import Tokenizer, load_tokenizer, seq2seq_ids, token_dtype

INDEX_FILE = "index.json"
FORMAT = "harness-prepared/1"
PAIRS_FORMAT = "harness-prepared-pairs/1"
SIDES = ("source", "target")
VALIDATION_FILE = "validation.jsonl"
ENCODE_BATCH_PAIRS = 4096  # pairs are tokenized this many at a time
SHARD_TOKENS = 1 << 28  # 256 Mi tokens a shard: 512 MiB of uint16
ENCODE_BATCH_BYTES = 8 << 20  # documents are tokenized in batches of about this many bytes
DOCUMENT_SEPARATOR = b"\n\n"


def token_stream(data: DataConfig, tokenizer: Tokenizer) -> Iterator[tuple[np.ndarray, int]]:
    """The corpus as consecutive arrays of token ids, each with the input bytes it covers: the
    documents in order (a long text file in pieces), DOCUMENT_SEPARATOR's tokens between two."""
    separator = tokenizer.encode(DOCUMENT_SEPARATOR)
    if len(separator) == 0:  # SentencePiece normalises blank lines away
        raise ValueError(
            f"tokenizer {tokenizer.name} encodes the blank line between documents to nothing, so a language "
            "model's documents would run together: use a tokenizer.json (or bytes); SentencePiece serves pairs"
        )
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


@contextlib.contextmanager
def _whole_directory(out: Path) -> Iterator[Path]:
    """A fresh hidden sibling of ``out`` to write into: renamed to ``out`` when the block ends, removed
    if it raises, so ``out`` is whole or absent; ``ValueError`` if ``out`` exists or has no parent."""
    if out.exists():
        raise ValueError(f"--out {out} already exists; choose a new directory (prepared data is never overwritten)")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: its parent directory does not exist")
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _tokenizer_record(tokenizer: Tokenizer, directory: Path) -> dict:
    """The index's record of ``tokenizer``, its file copied into ``directory``."""
    if tokenizer.path:
        shutil.copyfile(tokenizer.path, directory / tokenizer.file_name)
    return {"sha256": tokenizer.sha256, "vocab_size": tokenizer.vocab_size, "file": tokenizer.file_name}


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
    tokenizer = load_tokenizer(data.tokenizer)
    with _whole_directory(out) as tmp:
        writer, input_bytes = ShardWriter(tmp, "tokens", token_dtype(tokenizer.vocab_size), shard_tokens), 0
        with writer:
            for ids, covered in token_stream(data, tokenizer):
                writer.write(ids)
                input_bytes += covered
                progress(input_bytes)
        total = sum(shard["tokens"] for shard in writer.shards)
        cut = split_point(total, data.val_fraction)
        if cut == 0 or cut == total:
            raise ValueError(f"the inputs make {total} tokens: too few to split with val_fraction {data.val_fraction}")
        index = {
            "format": FORMAT,
            "tokenizer": _tokenizer_record(tokenizer, tmp),
            "dtype": writer.dtype.name,
            "input_bytes": input_bytes,
            "total_tokens": total,
            "val_fraction": data.val_fraction,
            "train_tokens": cut,
            "val_tokens": total - cut,
            "shards": writer.shards,
        }
        (tmp / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
    return index


def pair_split_point(pairs: int, val_fraction: float) -> int:
    """The first validation pair: the last ``val_fraction`` of the pairs validates; ``ValueError``
    when a split would be empty."""
    cut = split_point(pairs, val_fraction)
    if cut == 0 or cut == pairs:
        raise ValueError(f"{pairs} pairs are too few for data.val_fraction {val_fraction}: each split needs a pair")
    return cut


def prepare_pairs(
    data: DataConfig,
    out: Path,
    shard_tokens: int = SHARD_TOKENS,
    progress: Callable[[int], None] = lambda pairs: None,
) -> dict:
    """Tokenize ``data``'s source/target pairs into ``out`` (which must not exist yet), whole or not
    at all as ``prepare`` does, and return the index. ``progress`` hears the pairs done so far."""
    out = Path(out)
    tokenizer = load_tokenizer(data.tokenizer)
    seq2seq_ids(tokenizer)  # a tokenizer training would refuse is refused before anything is written
    dtype = token_dtype(tokenizer.vocab_size)
    with _whole_directory(out) as tmp:
        writers = [ShardWriter(tmp, side, dtype, shard_tokens) for side in SIDES]
        lengths: list[list[np.ndarray]] = [[], []]  # each side's pair lengths, a batch at a time
        texts = tmp / f"{VALIDATION_FILE}.all"  # every pair's texts; the validation ones are kept below
        with writers[0], writers[1], texts.open("w", encoding="utf-8") as every_text:
            for batch in _batched(iter_pairs(data), ENCODE_BATCH_PAIRS):
                for side, (writer, sizes) in enumerate(zip(writers, lengths, strict=True)):
                    encoded = tokenizer.encode_batch([pair[side] for pair in batch])
                    writer.write(np.concatenate(encoded))
                    sizes.append(np.array([len(ids) for ids in encoded], np.int64))
                every_text.writelines(json.dumps(dict(zip(SIDES, pair, strict=True))) + "\n" for pair in batch)
                progress(sum(map(len, lengths[0])))
        count = sum(map(len, lengths[0]))
        if count == 0:
            raise ValueError(f"the inputs {list(data.paths)} hold no source/target pairs")
        cut = pair_split_point(count, data.val_fraction)
        for side, writer in zip(SIDES, writers, strict=True):
            if not writer.shards:
                raise ValueError(f"every {side} of the {count} pairs encodes to no tokens with {tokenizer.name}")
        with texts.open(encoding="utf-8") as every, (tmp / VALIDATION_FILE).open("w", encoding="utf-8") as validation:
            validation.writelines(line for number, line in enumerate(every) if number >= cut)
        texts.unlink()
        sides = {}
        for side, writer, sizes in zip(SIDES, writers, lengths, strict=True):
            name, starts = f"{side}-offsets.npy", np.concatenate([[0], np.cumsum(np.concatenate(sizes))])
            np.save(tmp / name, starts.astype(np.int64))
            sides[side] = {
                "tokens": int(starts[-1]), "shards": writer.shards, "offsets": name,
                "offsets_sha256": _file_sha256(tmp / name),
            }  # fmt: skip
        index = {
            "format": PAIRS_FORMAT,
            "tokenizer": _tokenizer_record(tokenizer, tmp),
            "dtype": dtype.name,
            "pairs": count,
            "val_fraction": data.val_fraction,
            "train_pairs": cut,
            "val_pairs": count - cut,
            **sides,
            "validation": {"file": VALIDATION_FILE, "sha256": _file_sha256(tmp / VALIDATION_FILE)},
        }
        (tmp / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
    return index


def _batched(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class ShardWriter:
    """Token ids written in order into ``{name}-00000.bin``, ``{name}-00001.bin``, ... of at most
    ``shard_tokens`` each; ``shards`` records each file's token count and SHA-256 as it grows."""

    def __init__(self, directory: Path, name: str, dtype: np.dtype, shard_tokens: int):
        self.directory, self.name, self.dtype, self.shard_tokens = directory, name, dtype, shard_tokens
        self.shards: list[dict] = []
        self._handle, self._digest, self._count = None, None, 0

    def write(self, ids: np.ndarray) -> None:
        ids = ids.astype(self.dtype, copy=False)
        while len(ids):
            if self._handle is None:
                file = f"{self.name}-{len(self.shards):05d}.bin"
                self._handle, self._digest, self._count = (self.directory / file).open("wb"), hashlib.sha256(), 0
                self.shards.append({"file": file, "tokens": 0, "sha256": ""})
            piece, ids = ids[: self.shard_tokens - self._count], ids[self.shard_tokens - self._count :]
            data = piece.tobytes()
            self._handle.write(data)
            self._digest.update(data)
            self._count += len(piece)
            self.shards[-1].update(tokens=self._count, sha256=self._digest.hexdigest())
            if self._count == self.shard_tokens:
                self.close()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
    """An opened prepared directory: its index, tokenizer and memory-mapped tokens (a token stream,
    or with ``pairs`` each side's tokens and offsets)."""

    def __init__(self, directory: Path | str, verify: bool = False):
        """``ValueError`` unless the index reads and every shard has its recorded size (and, with
        ``verify``, its recorded SHA-256: the whole corpus is read once)."""
        self.directory = Path(directory)
        try:
            self.index = json.loads((self.directory / INDEX_FILE).read_text())
            if self.index.get("format") not in (FORMAT, PAIRS_FORMAT):
                raise ValueError(f"format {self.index.get('format')!r}, expected {FORMAT!r} or {PAIRS_FORMAT!r}")
            self.pairs = self.index["format"] == PAIRS_FORMAT
            self.dtype = np.dtype(self.index["dtype"])
            streams = {side: self.index[side] for side in SIDES} if self.pairs else {"tokens": self.index}
            shards = {name: stream["shards"] for name, stream in streams.items()}
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"data.prepared {str(self.directory)!r} has no readable {INDEX_FILE}: {err}") from None
        self._paths = {name: [self._checked(shard, verify) for shard in files] for name, files in shards.items()}
        if self.pairs:
            checked = [(self.index[side]["offsets"], self.index[side]["offsets_sha256"]) for side in SIDES]
            for name, digest in [*checked, (self.index["validation"]["file"], self.index["validation"]["sha256"])]:
                path = self.directory / name
                if not path.is_file() or (verify and _file_sha256(path) != digest):
                    raise ValueError(f"prepared file {path} is missing or changed: prepare the data again")

    def check_split(self, val_fraction: float) -> None:
        """``ValueError`` unless these data were split with ``val_fraction`` (data.val_fraction)."""
        if self.index["val_fraction"] != val_fraction:
            raise ValueError(
                f"data.prepared {str(self.directory)!r} was split with val_fraction {self.index['val_fraction']}; "
                f"data.val_fraction is {val_fraction}: set it to that, or prepare again"
            )

    def _checked(self, shard: dict, verify: bool) -> Path:
        path = self.directory / shard["file"]
        expected = shard["tokens"] * self.dtype.itemsize
        if not path.is_file() or path.stat().st_size != expected:
            raise ValueError(f"prepared shard {path} is missing or not {expected} bytes: prepare the data again")
        if verify and _file_sha256(path) != shard["sha256"]:
            raise ValueError(
                f"prepared shard {path} does not match its checksum in {INDEX_FILE}: the file changed "
                "after `harness prepare`; prepare the data again"
            )
        return path

    @property
    def tokenizer_sha256(self) -> str:
        return self.index["tokenizer"]["sha256"]

    @property
    def tokenizer_file(self) -> Path | None:
        name = self.index["tokenizer"].get("file")
        return self.directory / name if name else None

    def tokens(self, stream: str = "tokens") -> TokenView:
        """Every token of ``stream`` ("tokens", or a side of pairs), the shards memory-mapped now
        (opening the directory to read its index or tokenizer, as the config and checkpoint checks
        do, maps nothing)."""
        return TokenView([Shard(path, self.dtype) for path in self._paths[stream]])

    def offsets(self, side: str) -> np.ndarray:
        """(pairs + 1,) int64, memory-mapped: where each pair's ids start on ``side``, and the end."""
        offsets = np.load(self.directory / self.index[side]["offsets"], mmap_mode="r")
        if offsets.shape != (self.index["pairs"] + 1,) or offsets[-1] != self.index[side]["tokens"]:
            raise ValueError(f"prepared offsets of the {side}s in {self.directory} do not match {INDEX_FILE}")
        return offsets

    def validation_texts(self) -> list[tuple[str, str]]:
        """The validation pairs' (source, target) texts."""
        path = self.directory / self.index["validation"]["file"]
        with path.open(encoding="utf-8") as lines:
            texts = [tuple(json.loads(line)[side] for side in SIDES) for line in lines]
        if len(texts) != self.index["val_pairs"]:
            raise ValueError(f"prepared file {path} holds {len(texts)} pairs, not {self.index['val_pairs']}: "
                             "prepare the data again")  # fmt: skip
        return texts


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()
