"""Training text from the configured inputs (``data.paths``), one document at a time, so that the size
of a corpus never reaches memory by itself.

Each entry of ``data.paths`` is a text file, a directory (every file below it, in name order, hidden
ones skipped), a glob (``corpus/**/*.txt``), a JSON-lines file (``*.jsonl``: one object per line,
its ``data.text_field`` the document), a Parquet file (``*.parquet``: the ``data.text_field`` column),
or a Hugging Face ``datasets`` dataset saved with ``save_to_disk`` (its ``train`` split when it is a
DatasetDict). No entry: CPython's documentation (``pydoc_data.topics``), one document.

``sources`` checks every entry (existence, formats, the text column where a schema tells it) before
anything is read, so a bad entry fails at once with one line naming it.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.contract.config import DataConfig

GLOB_CHARACTERS = "*?["
READ_BATCH = 1024  # rows per read from Parquet and datasets
PIECE_BYTES = 1 << 20  # a text file is read and tokenized in pieces of about this size


def default_corpus() -> str:
    """CPython's documentation topics (``pydoc_data.topics``, ~465 KB): shipped with every Python."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


@dataclass(frozen=True)
class Source:
    """One input: ``kind`` is "text", "jsonl", "parquet", "dataset" or "default"."""

    kind: str
    path: Path | None = None

    def describe(self) -> str:
        return "CPython's documentation (pydoc_data.topics)" if self.path is None else f"{self.kind} {self.path}"


def _saved_dataset(directory: Path) -> bool:
    return (directory / "dataset_dict.json").is_file() or (directory / "state.json").is_file()


def expand(entry: str) -> list[Source]:
    if any(c in entry for c in GLOB_CHARACTERS):
        matches = sorted(glob.glob(entry, recursive=True))
        if not matches:
            raise ValueError(f"data.paths entry {entry!r} matches no files")
        return [source for match in matches for source in _expand_path(Path(match), entry)]
    return _expand_path(Path(entry), entry)


def _expand_path(path: Path, entry: str) -> list[Source]:
    if path.is_dir():
        if _saved_dataset(path):
            return [Source("dataset", path)]
        hidden = lambda p: any(part.startswith(".") for part in p.relative_to(path).parts)  # noqa: E731
        files = sorted(p for p in path.rglob("*") if p.is_file() and not hidden(p))
        if not files:
            raise ValueError(f"data.paths entry {entry!r}: directory {str(path)!r} holds no files")
        return [_file_source(p) for p in files]
    if path.is_file():
        return [_file_source(path)]
    raise ValueError(f"data file {str(path)!r} does not exist or is not a file")


def _file_source(path: Path) -> Source:
    kind = {".jsonl": "jsonl", ".parquet": "parquet"}.get(path.suffix, "text")
    return Source(kind, path)


def sources(data: DataConfig) -> list[Source]:
    """The inputs ``data.paths`` names, expanded and checked; ``ValueError`` naming the first bad one."""
    if not data.paths:
        return [Source("default")]
    found = [source for entry in data.paths for source in expand(entry)]
    for source in found:
        if source.kind == "parquet":
            check_columns(source, parquet_file(source.path).schema_arrow.names, data.text_field)
        elif source.kind == "dataset":
            check_columns(source, load_dataset(source.path).column_names, data.text_field)
    return found


def check_columns(source: Source, columns: list[str], field: str, setting: str = "data.text_field") -> None:
    if field not in columns:
        raise ValueError(f"{source.describe()} has no column {field!r} (columns: {columns}); set {setting}")


def parquet_file(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises ArrowInvalid (and others) for a file that is not Parquet
        raise ValueError(f"{str(path)!r} is not a readable Parquet file: {err}") from None


def load_dataset(path: Path):
    try:
        import datasets
    except ImportError:
        raise ValueError(
            f"{str(path)!r} is a saved Hugging Face dataset; reading it needs the datasets package "
            "(pip install 'horovod-harness[hf]')"
        ) from None
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            raise ValueError(f"dataset {str(path)!r} has splits {sorted(loaded)} and no 'train' split")
        loaded = loaded["train"]
    return loaded


def documents(source: Source, text_field: str) -> Iterator[bytes]:
    """The documents of a source other than a text file (those are read in ``pieces``), as UTF-8."""
    if source.kind == "default":
        yield default_corpus().encode("utf-8")
    elif source.kind == "jsonl":
        yield from _jsonl_documents(source.path, text_field)
    elif source.kind == "parquet":
        for batch in parquet_file(source.path).iter_batches(batch_size=READ_BATCH, columns=[text_field]):
            yield from _texts(batch.column(0).to_pylist(), source, text_field)
    else:
        for rows in load_dataset(source.path).iter(batch_size=READ_BATCH):
            yield from _texts(rows[text_field], source, text_field)


def pieces(data: DataConfig) -> Iterator[tuple[bytes, bool]]:
    """Every document of every source, in order, as (piece, starts a document): records whole, a
    text file in pieces of about PIECE_BYTES cut after a newline that precedes a non-space byte,
    so that no file has to fit in memory at once. Tokenizing piece by piece keeps a word whole
    (pieces end at a line end); the prepared and the in-memory corpus are both made this way."""
    for source in sources(data):
        if source.kind != "text":
            for document in documents(source, data.text_field):
                yield document, True
            continue
        with source.path.open("rb") as text:
            first, rest = True, b""
            while block := text.read(PIECE_BYTES):
                rest += block
                cut = _last_line_start(rest)
                if cut > 0:
                    yield rest[:cut], first
                    first, rest = False, rest[cut:]
            if rest or first:
                yield rest, first


def _last_line_start(data: bytes) -> int:
    """The offset just after the last newline of ``data`` that a non-space byte follows (0: none)."""
    end = len(data) - 1  # a newline at the very end: what follows it is not read yet
    while (at := data.rfind(b"\n", 0, end)) >= 0:
        if not data[at + 1 : at + 2].isspace():
            return at + 1
        end = at
    return 0


def jsonl_records(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) of each non-blank line of a JSON-lines file; ``ValueError`` naming
    the first line that is not JSON."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path} line {number} is not JSON: {err.msg}") from None
            yield number, record


def _jsonl_documents(path: Path, text_field: str) -> Iterator[bytes]:
    for number, record in jsonl_records(path):
        text = record.get(text_field) if isinstance(record, dict) else None
        if not isinstance(text, str):
            keys = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise ValueError(f"{path} line {number} has no string field {text_field!r} ({keys}); set data.text_field")
        yield text.encode("utf-8")


def _texts(values: list, source: Source, text_field: str) -> Iterator[bytes]:
    for value in values:
        if not isinstance(value, str):
            raise ValueError(f"{source.describe()}: column {text_field!r} holds {type(value).__name__}, expected text")
        yield value.encode("utf-8")
