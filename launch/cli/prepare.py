"""`harness prepare`: the configured inputs tokenized once into shards, for data.prepared."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from harness.runner.config import build_data_config, read_config_file
from launch.cli.options import data_options, non_empty


@click.command()
@click.option("--out", required=True, callback=non_empty, type=click.Path(file_okay=False), help="Directory to create.")
@click.option(
    "--shard-tokens",
    type=click.IntRange(1024, 2**31),
    default=1 << 28,
    show_default=True,
    help="Tokens per shard file.",
)
@data_options
def prepare(out, shard_tokens, config_file, overrides):
    """Tokenize the configured inputs once into token shards and an index, for data.prepared=OUT."""
    from tqdm import tqdm

    from harness.data.inputs import sources
    from harness.data.prepared import prepare as prepare_data

    try:
        data = build_data_config(read_config_file(config_file), list(overrides))
        if data.prepared:
            raise ValueError("data.prepared is set: prepare reads data.paths (and data.tokenizer), not prepared data")
        found = sources(data)
        known = all(source.kind == "text" for source in found)  # else the text's size is not known up front
        total = sum(source.path.stat().st_size for source in found) if known else None
        started = time.perf_counter()
        with tqdm(total=total, unit="B", unit_scale=True, desc="prepare", file=sys.stderr, delay=2) as bar:
            index = prepare_data(data, Path(out), shard_tokens, progress=lambda done: bar.update(done - bar.n))
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    seconds = time.perf_counter() - started
    megabytes = index["input_bytes"] / 1e6
    click.echo(
        f"prepared {index['total_tokens']} tokens ({index['dtype']}, {len(index['shards'])} shard(s)) from "
        f"{megabytes:.1f} MB of input in {seconds:.1f} s ({megabytes / seconds:.1f} MB/s); train "
        f"{index['train_tokens']} / validation {index['val_tokens']} tokens -> {out}"
    )
