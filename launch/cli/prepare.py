"""`harness prepare`: the configured inputs (text, or with --pairs source/target pairs) tokenized once into
shards, for data.prepared."""

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
@click.option(
    "--pairs",
    is_flag=True,
    help="The inputs are source/target pairs (data.source_field, data.target_field; none: the demo numbers), "
    "for a sequence-to-sequence task: both sides' tokens, where each pair starts, and the validation pairs' texts.",
)
@data_options
def prepare(out, shard_tokens, pairs, config_file, overrides):
    """Tokenize the configured inputs once into token shards and an index, for data.prepared=OUT."""
    from tqdm import tqdm

    from harness.data.inputs import sources
    from harness.data.prepared import prepare as prepare_data
    from harness.data.prepared import prepare_pairs

    try:
        data = build_data_config(read_config_file(config_file), list(overrides))
        if data.prepared:
            raise ValueError("data.prepared is set: prepare reads data.paths (and data.tokenizer), not prepared data")
        started = time.perf_counter()
        if pairs:
            with tqdm(unit=" pairs", unit_scale=True, desc="prepare", file=sys.stderr, delay=2) as bar:
                index = prepare_pairs(data, Path(out), shard_tokens, progress=lambda done: bar.update(done - bar.n))
        else:
            found = sources(data)
            known = all(source.kind == "text" for source in found)  # else the text's size is not known up front
            total = sum(source.path.stat().st_size for source in found) if known else None
            with tqdm(total=total, unit="B", unit_scale=True, desc="prepare", file=sys.stderr, delay=2) as bar:
                index = prepare_data(data, Path(out), shard_tokens, progress=lambda done: bar.update(done - bar.n))
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    seconds = time.perf_counter() - started
    if pairs:
        tokens = {side: index[side]["tokens"] for side in ("source", "target")}
        click.echo(
            f"prepared {index['pairs']} pairs ({tokens['source']} source and {tokens['target']} target tokens, "
            f"{index['dtype']}) in {seconds:.1f} s ({index['pairs'] / seconds:.0f} pairs/s); train "
            f"{index['train_pairs']} / validation {index['val_pairs']} pairs -> {out}"
        )
        return
    megabytes = index["input_bytes"] / 1e6
    click.echo(
        f"prepared {index['total_tokens']} tokens ({index['dtype']}, {len(index['shards'])} shard(s)) from "
        f"{megabytes:.1f} MB of input in {seconds:.1f} s ({megabytes / seconds:.1f} MB/s); train "
        f"{index['train_tokens']} / validation {index['val_tokens']} tokens -> {out}"
    )
