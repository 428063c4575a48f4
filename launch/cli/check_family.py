"""`harness check-family`: a family's twins checked against each other (harness/testing/check.py)."""

from __future__ import annotations

import click

from harness.runner.config import load_run_config
from launch.cli.options import POSITIVE, SEED_RANGE, non_empty


@click.command("check-family")
@click.argument("family", callback=non_empty)
@click.option("--model", default="tiny", show_default=True, help="The family's model preset.")
@click.option("--seed", type=SEED_RANGE, default=0, show_default=True, help="Seed of the initial state and batch.")
@click.option("--examples", type=POSITIVE, default=2, show_default=True, help="Examples in the batch.")
@click.option("--config", "config_file", default=None, callback=non_empty, help="TOML file, as for train.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override one key, as for train.")
def check_family(family, model, seed, examples, config_file, overrides):
    """Check that FAMILY's torch and TF models agree, from the same state and the same batch of its
    task (one process, both frameworks, no Horovod), and print one row per check:

    \b
    logits                  largest |torch - TF| logit, over the largest |logit|
    loss                    |torch - TF| / |torch| of the family's loss
    gradients               largest |torch - TF| gradient element over that
                            parameter's gradient norm (after the maps), worst parameter;
                            a norm under 1e-4 of the whole gradient's counts as that
                            (a key bias's true gradient is 0: both hold rounding noise)
    adamw step              both frameworks' clipping and AdamW on the same gradients:
                            largest |torch - TF| in a parameter or moment over its
                            largest |value|, worst tensor
    state round trip FW     the state loaded into FW's model and read back: largest
                            |change| (0: the map's names and layouts invert exactly)
    checkpoint A -> B       the stepped state and AdamW moments written as a checkpoint
                            by A, loaded by B and read back: largest |change|

    FAMILY is gpt, bert, a registered name or MODULE:ATTR. Exits 1 when a check misses its bound.
    """
    try:
        chosen, config = load_run_config(model, config_file, list(overrides), family)
        chosen.enter_environment()  # before harness.testing imports TensorFlow
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    from harness.testing.check import check_family as run_checks
    from harness.testing.check import format_checks

    try:
        checks = run_checks(chosen, config, seed, examples)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{chosen.name} ({model}): torch vs TF, seed {seed}, {examples} examples")
    click.echo(format_checks(checks))
    failed = [check.name for check in checks if not check.passed]
    if failed:
        raise click.ClickException(f"{chosen.name}'s twins miss the bound of: {', '.join(failed)}")
