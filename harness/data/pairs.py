"""Source/target pairs for a sequence-to-sequence task, from the configured inputs (``data.paths``).

Each entry of ``data.paths`` names (as for text: a file, a directory, a glob) TSV files (``*.tsv``:
tab-separated, a header line naming the columns, no quoting), JSON-lines files (``*.jsonl``: one
object per line), Parquet files or a ``datasets`` dataset saved with ``save_to_disk``; each record's
``data.source_field`` and ``data.target_field`` are one pair. No entry: the demo corpus
(``demo_pairs``). A record without either field, or with an empty side, is refused in one line
naming the file and its line (or row): nothing is skipped silently.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness.contract.config import DataConfig
from harness.data.inputs import READ_BATCH, Source, check_columns, expand, jsonl_records, load_dataset, parquet_file

PAIR_FILES = {".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}
# The demo corpus: numbers below DEMO_LIMIT written out in English (source) and French (target), by
# num2words (PyPI); a French number reorders and merges words ("quatre-vingt-dix-neuf" for 99),
# so the model has more to learn than a word-for-word table.
DEMO_PAIRS = 20_000
DEMO_LIMIT = 1_000_000
DEMO_LANGUAGES = ("en", "fr")


def demo_pairs(count: int = DEMO_PAIRS, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` distinct numbers below DEMO_LIMIT in a seeded random order, each as (English, French)
    words; the first thousand numbers come first, shuffled, so small numbers are well covered."""
    from num2words import num2words

    rng = np.random.default_rng(seed)
    small = rng.permutation(1000)
    large = 1000 + rng.choice(DEMO_LIMIT - 1000, size=max(0, count - len(small)), replace=False)
    numbers = np.concatenate([small, large])[:count]
    return [tuple(num2words(int(n), lang=lang) for lang in DEMO_LANGUAGES) for n in numbers]


def pair_sources(data: DataConfig) -> list[Source]:
    """The inputs ``data.paths`` names, each a pair format, with both fields where a header or schema
    tells; ``ValueError`` naming the first that is not."""
    if not data.paths:
        return [Source("default")]
    found = []
    for entry in data.paths:
        for source in expand(entry):
            if source.kind == "text":
                kind = PAIR_FILES.get(source.path.suffix)
                if kind is None:
                    raise ValueError(
                        f"{str(source.path)!r}: pairs are read from .tsv, .jsonl or .parquet files or a saved "
                        f"dataset, received a {source.path.suffix or 'file without a suffix'}"
                    )
                source = Source(kind, source.path)
            found.append(source)
    for source in found:
        columns = None
        if source.kind == "tsv":
            columns = _tsv_header(source.path)
        elif source.kind == "parquet":
            columns = parquet_file(source.path).schema_arrow.names
        elif source.kind == "dataset":
            columns = load_dataset(source.path).column_names
        if columns is not None:
            check_columns(source, columns, data.source_field, "data.source_field")
            check_columns(source, columns, data.target_field, "data.target_field")
    return found


def iter_pairs(data: DataConfig) -> Iterator[tuple[str, str]]:
    """Every pair of every input, in order, one at a time (every input checked first);
    ``ValueError`` (one line) for the first bad record."""
    for source in pair_sources(data):
        yield from _pairs(source, data)


def read_pairs(data: DataConfig) -> list[tuple[str, str]]:
    """Every pair of every input, in order; ``ValueError`` (one line) for the first bad record."""
    pairs = list(iter_pairs(data))
    if not pairs:
        raise ValueError(f"the inputs {list(data.paths)} hold no source/target pairs")
    return pairs


def _pairs(source: Source, data: DataConfig) -> Iterator[tuple[str, str]]:
    fields = (data.source_field, data.target_field)
    if source.kind == "default":
        yield from demo_pairs()
    elif source.kind == "tsv":
        with source.path.open(newline="", encoding="utf-8") as lines:
            rows = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(rows, [])
            for number, row in enumerate(rows, start=2):
                if not row:
                    continue  # a blank line
                if len(row) != len(header):
                    raise ValueError(f"{source.path} line {number} has {len(row)} columns, its header {len(header)}")
                yield _checked(dict(zip(header, row, strict=True)), fields, f"{source.path} line {number}")
    elif source.kind == "jsonl":
        for number, record in jsonl_records(source.path):
            yield _checked(record, fields, f"{source.path} line {number}")
    else:
        table = (
            (batch.to_pydict() for batch in parquet_file(source.path).iter_batches(READ_BATCH, columns=list(fields)))
            if source.kind == "parquet"
            else load_dataset(source.path).iter(batch_size=READ_BATCH)
        )
        row = 0
        for columns in table:
            for values in zip(columns[fields[0]], columns[fields[1]], strict=True):
                row += 1
                yield _checked(dict(zip(fields, values, strict=True)), fields, f"{source.describe()} row {row}")


def _checked(record: object, fields: tuple[str, str], where: str) -> tuple[str, str]:
    """The record's (source, target), both non-empty text."""
    settings = ("data.source_field", "data.target_field")
    values = []
    for field, setting in zip(fields, settings, strict=True):
        value = record.get(field) if isinstance(record, dict) else None
        if not isinstance(value, str):
            keys = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise ValueError(f"{where} has no text field {field!r} ({keys}); set {setting}")
        if not value.strip():
            raise ValueError(f"{where}: its {field!r} is empty; every pair needs a source and a target")
        values.append(value)
    return values[0], values[1]


def _tsv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as lines:
        return next(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), [])
