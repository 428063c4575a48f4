"""`harness bench`: the measurements of launch/bench.py, written as bench.json and bench.md."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from launch.cli.options import FAMILY_HELP, non_empty


@click.command()
@click.option("--quick", is_flag=True, help="Tiny model, few steps, 1 MB allreduce, no tuning: checks the plumbing.")
@click.option(
    "--out", required=True, callback=non_empty, type=click.Path(file_okay=False), help="Writes bench.json and bench.md."
)
@click.option("--family", default=None, callback=non_empty, help=FAMILY_HELP)
@click.option(
    "--model", default=None, callback=non_empty, help="The family's preset [default: default, or tiny with --quick]."
)
def bench(quick, out, family, model):
    """Measure step time, tokens/s, MFU, harness overhead, scaling and allreduce bandwidth in one run."""
    from harness.contract.family import load_family
    from launch.bench import FULL, QUICK, markdown_table, run_bench

    plan = QUICK if quick else FULL
    try:
        chosen = load_family(family or plan.family)
        plan = dataclasses.replace(plan, family=chosen.spec, model=model or plan.model)
        chosen.preset(plan.model)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    result = run_bench(plan, log=lambda text: click.echo(f"bench: {text}", err=True))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown_table(result)
    (out / "bench.md").write_text(table)
    click.echo(table)
