"""The ``harness`` command line: one module per command, the option plumbing they share in ``options``."""

from __future__ import annotations

import click

from launch.cli import (
    bench,
    check_family,
    doctor,
    export,
    generate,
    parity,
    prepare,
    smoke,
    tokenizer,
    train,
    translate,
)
from launch.cli.options import OneLineErrors


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Train twin PyTorch and TensorFlow models with one Horovod data-parallel loop."""


for command in (
    doctor.doctor,
    smoke.smoke,
    train.train,
    generate.generate,
    translate.translate,
    export.export,
    tokenizer.tokenizer,
    prepare.prepare,
    parity.parity,
    check_family.check_family,
    bench.bench,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="harness")
