"""`harness smoke`: one allreduce per framework under horovodrun."""

from __future__ import annotations

import sys

import click

from harness.contract.frameworks import FRAMEWORK_PACKAGES
from launch.cli.options import OVERSUBSCRIBE_HELP, POSITIVE, non_empty
from launch.horovodrun import run_horovodrun


@click.command()
@click.option("--framework", type=click.Choice([*FRAMEWORK_PACKAGES, "all"]), default="all", show_default=True)
@click.option("--np", "num_ranks", type=POSITIVE, default=2, show_default=True, help="Number of ranks.")
@click.option("--hosts", default=None, callback=non_empty, help="Comma-separated NAME:SLOTS; default: this machine.")
@click.option("--oversubscribe", is_flag=True, help=OVERSUBSCRIBE_HELP)
def smoke(framework: str, num_ranks: int, hosts: str | None, oversubscribe: bool) -> None:
    """Run one allreduce per framework under horovodrun, to check the install end to end."""
    frameworks = list(FRAMEWORK_PACKAGES) if framework == "all" else [framework]
    for name in frameworks:
        try:
            program = [sys.executable, "-m", "launch.smoke", name]
            result = run_horovodrun(num_ranks, program, hosts=hosts, oversubscribe=oversubscribe)
        except ValueError as err:
            raise click.ClickException(str(err)) from None
        if result.returncode != 0:
            raise click.ClickException(f"{name} smoke run failed with exit code {result.returncode}")
