"""`harness parity`: the twins trained alike in both frameworks (launch/parity.py), judged against --tol."""

from __future__ import annotations

from pathlib import Path

import click

from harness.runner.config import load_run_config
from launch.cli.options import FAMILY_HELP, OVERSUBSCRIBE_HELP, POSITIVE, finite, non_empty
from launch.horovodrun import check_local_slots


@click.command()
@click.option("--steps", type=POSITIVE, required=True, help="Training steps for each framework.")
@click.option("--np", "num_ranks", type=POSITIVE, default=1, show_default=True, help="Ranks per run.")
@click.option("--family", default=None, callback=non_empty, help=FAMILY_HELP)
@click.option("--model", default="tiny", show_default=True, help="The family's model preset.")
@click.option("--out", required=True, callback=non_empty, type=click.Path(file_okay=False), help="Report directory.")
@click.option("--oversubscribe", is_flag=True, help=OVERSUBSCRIBE_HELP)
@click.option(
    "--tol",
    type=click.FloatRange(0, 1),
    callback=finite,
    default=None,
    help="Largest allowed relative loss gap [default: 1e-3 fp32, 1e-2 bf16/fp16].",
)
@click.option("--config", "config_file", default=None, callback=non_empty, help="TOML file, as for train.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override one key, as for train.")
def parity(steps, num_ranks, family, model, out, oversubscribe, tol, config_file, overrides):
    """Train the torch and the TF twin from the same weights on the same batches and compare them.

    Dropout is off and deterministic kernels are on in both. Writes OUT/parity.json and
    OUT/parity.png; exits 1 when the largest per-step relative loss difference exceeds --tol.
    """
    from harness.runner.parity import DEFAULT_TOLERANCES, parity_failure
    from launch.parity import ParityPlan, compare_twins, train_twins

    try:
        chosen, config = load_run_config(model, config_file, list(overrides), family)
        check_local_slots(num_ranks, oversubscribe)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    tol = DEFAULT_TOLERANCES[config.train.precision] if tol is None else tol
    out = Path(out).resolve()
    plan = ParityPlan(chosen, model, steps, num_ranks, out, config_file, overrides, oversubscribe)
    try:
        train_twins(plan, log=click.echo)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    report = compare_twins(plan, tol)
    click.echo(
        f"parity: max relative loss difference {report['max_rel_loss_diff']:.2e} over {steps} steps "
        f"(tolerance {tol:g}); largest final weight difference (relative norm) "
        f"{report['max_weight_rel_norm_diff']:.2e}; report {out / 'parity.json'}, plot {out / 'parity.png'}"
    )
    if failure := parity_failure(report, tol):
        raise click.ClickException(failure)
