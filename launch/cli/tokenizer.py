"""`harness tokenizer train`: a byte-level BPE or a SentencePiece model for the configured data."""

from __future__ import annotations

import time
from pathlib import Path

import click

from harness.runner.config import build_data_config, read_config_file
from launch.cli.options import data_options, non_empty


@click.group()
def tokenizer() -> None:
    """Train a tokenizer (byte-level BPE or SentencePiece) for the configured data."""


@tokenizer.command("train")
@click.option(
    "--vocab-size",
    type=click.IntRange(1, 2**20),
    required=True,
    help="Ids. BPE: the 256 bytes, the special ones, merges. SentencePiece: at most this many pieces.",
)
@click.option(
    "--out",
    required=True,
    callback=non_empty,
    type=click.Path(dir_okay=False),
    help="File to write: a tokenizer.json (BPE) or a SentencePiece .model.",
)
@click.option(
    "--sentencepiece",
    is_flag=True,
    help="Train a SentencePiece unigram model (as Marian and T5 use) instead of a byte-level BPE.",
)
@click.option(
    "--pairs",
    is_flag=True,
    help="The data are source/target pairs (data.source_field, data.target_field; none: the demo numbers): "
    "train on both sides, and add the <pad> and </s> tokens a translation model needs.",
)
@data_options
def tokenizer_train(vocab_size, out, sentencepiece, pairs, config_file, overrides):
    """Train a byte-level BPE (Hugging Face tokenizers) or a SentencePiece model over the configured
    data and write --out."""
    from harness.data.inputs import pieces
    from harness.data.pairs import read_pairs
    from harness.data.tokenizer import train_bpe, train_sentencepiece

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
            if sentencepiece:  # it trains on sentences, and skips any longer than a few KB
                texts = (line for text in texts for line in text.splitlines() if line.strip())
        trained = (train_sentencepiece if sentencepiece else train_bpe)(texts, vocab_size, out, pairs=pairs)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"tokenizer: {trained.vocab_size} ids, sha256 {trained.sha256[:12]}, "
               f"trained in {time.perf_counter() - started:.1f} s -> {out}")  # fmt: skip
