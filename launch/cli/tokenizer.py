"""`harness tokenizer train`: a byte-level BPE for the configured data."""

from __future__ import annotations

import time
from pathlib import Path

import click

from harness.runner.config import build_data_config, read_config_file
from launch.cli.options import data_options, non_empty


@click.group()
def tokenizer() -> None:
    """Train a byte-level BPE tokenizer for the configured data."""


@tokenizer.command("train")
@click.option(
    "--vocab-size", type=click.IntRange(257, 2**20), required=True, help="Ids: 256 bytes, the special ones, merges."
)
@click.option(
    "--out", required=True, callback=non_empty, type=click.Path(dir_okay=False), help="tokenizer.json to write."
)
@click.option(
    "--pairs",
    is_flag=True,
    help="The data are source/target pairs (data.source_field, data.target_field; none: the demo numbers): "
    "train on both sides, and add the <pad> and </s> tokens a translation model needs.",
)
@data_options
def tokenizer_train(vocab_size, out, pairs, config_file, overrides):
    """Train a byte-level BPE (Hugging Face tokenizers) over the configured data and write --out."""
    from harness.data.inputs import pieces
    from harness.data.pairs import read_pairs
    from harness.data.tokenizer import train_bpe

    out = Path(out)
    try:
        if out.exists():
            raise ValueError(f"--out {out} already exists; choose another path (a tokenizer is never overwritten)")
        if not out.parent.resolve().is_dir():
            raise ValueError(f"--out {out}: its directory does not exist")
        data = build_data_config(read_config_file(config_file), list(overrides))
        started = time.perf_counter()
        if pairs:
            texts = (side for pair in read_pairs(data) for side in pair)
        else:
            texts = (piece.decode("utf-8", errors="replace") for piece, _ in pieces(data))
        trained = train_bpe(texts, vocab_size, out, pairs=pairs)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"tokenizer: {trained.vocab_size} ids, sha256 {trained.sha256[:12]}, "
               f"trained in {time.perf_counter() - started:.1f} s -> {out}")  # fmt: skip
