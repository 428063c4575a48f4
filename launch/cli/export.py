"""`harness export`: a checkpoint in one of its family's external formats."""

from __future__ import annotations

from pathlib import Path

import click

from harness.storage.checkpoint import checkpoint_tokenizer
from launch.cli.options import non_empty


@click.command()
@click.option(
    "--run-dir", required=True, callback=non_empty, type=click.Path(file_okay=False), help="A training run's directory."
)
@click.option(
    "--format",
    "export_format",
    default="hf",
    show_default=True,
    callback=non_empty,
    help="One of the run's family's external formats (gpt: hf, a Hugging Face GPT-2 directory).",
)
@click.option("--out", required=True, callback=non_empty, type=click.Path(file_okay=False), help="Directory to create.")
def export(run_dir, export_format, out):
    """Export the newest checkpoint of --run-dir in an external format of its family."""
    from harness.contract.family import format_keys
    from harness.runner.resume import newest_checkpoint, say_skipped

    out = Path(out)
    try:
        if export_format not in format_keys():
            raise ValueError(f"--format {export_format!r} is no family's format; expected one of {format_keys()}")
        if out.exists():
            raise ValueError(f"--out {out} already exists; choose a new directory")
        checkpoint = newest_checkpoint(run_dir, "--run-dir")
        say_skipped(checkpoint)
        known = checkpoint.family.format(export_format)
        written = known.export(checkpoint.model, checkpoint.model_config, out, checkpoint_tokenizer(checkpoint).path)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(
        f"exported {checkpoint.path} (step {checkpoint.step}) as {known.description}: {', '.join(written)} -> {out}"
    )
