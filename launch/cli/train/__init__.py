"""`harness train`: one framework's run of a model family, in this process or under horovodrun."""

from __future__ import annotations

import click

from harness.contract.distributed import check_hostname_resolves, launched_rank
from harness.contract.frameworks import check_framework
from harness.runner.config import load_run_config
from launch.cli.options import FAMILY_HELP, HANG_TIMEOUT_RANGE, OVERSUBSCRIBE_HELP, POSITIVE, non_empty
from launch.cli.train.checks import check_before_launch
from launch.cli.train.failure import explain_failure
from launch.cli.train.here import load_hook, train_here
from launch.cli.train.launcher import check_parameter_map, launch_ranks
from launch.cli.train.options import TrainOptions
from launch.horovodrun import CONTROLLERS, DEFAULT_HANG_TIMEOUT, check_local_slots, pin_to_local_cores


@click.command()
@click.option("--framework", required=True, help="torch or tf.")
@click.option(
    "--np", "num_ranks", type=POSITIVE, default=1, show_default=True, help="Number of ranks (horovodrun -np)."
)
@click.option("--steps", type=POSITIVE, default=None, help="Training steps (overrides train.steps).")
@click.option("--family", default=None, callback=non_empty, help=FAMILY_HELP)
@click.option("--model", default="default", show_default=True, help="The family's model preset, e.g. tiny or default.")
@click.option(
    "--run-dir",
    required=True,
    callback=non_empty,
    type=click.Path(file_okay=False),
    help="Checkpoints and metrics go here.",
)
@click.option(
    "--config",
    "config_file",
    default=None,
    callback=non_empty,
    help="TOML file with [model], [train], [data], ... tables.",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override one key, e.g. train.lr=1e-3.")
@click.option("--hook", "hook_specs", multiple=True, metavar="MODULE:ATTR", help="Add a Hook factory's hook.")
@click.option("--hosts", default=None, callback=non_empty, help="Comma-separated NAME:SLOTS, e.g. h1:2,h2:2.")
@click.option("--hostfile", default=None, type=click.Path(exists=True, dir_okay=False), help="horovodrun hostfile.")
@click.option(
    "--network-interface",
    default=None,
    callback=non_empty,
    help="NIC(s) for Horovod's traffic, e.g. eth0; default: detected.",
)
@click.option("--oversubscribe", is_flag=True, help=OVERSUBSCRIBE_HELP)
@click.option(
    "--hang-timeout",
    type=HANG_TIMEOUT_RANGE,
    default=DEFAULT_HANG_TIMEOUT,
    show_default=True,
    help="Seconds a rank may stop responding before the whole job fails.",
)
@click.option("--elastic", is_flag=True, help="Keep training when ranks fail or join (needs --hosts/--hostfile).")
@click.option("--min-np", type=POSITIVE, default=None, help="Elastic: fewest ranks to go on with (default 1).")
@click.option("--max-np", type=POSITIVE, default=None, help="Elastic: most ranks (default: --np).")
@click.option(
    "--elastic-timeout",
    type=HANG_TIMEOUT_RANGE,
    default=None,
    help="Elastic: seconds to wait for hosts when fewer than --min-np ranks are left (default: --hang-timeout).",
)
@click.option(
    "--commit-every",
    type=POSITIVE,
    default=10,
    show_default=True,
    help="Elastic: steps between in-memory commits; a failure loses at most this many steps.",
)
@click.option(
    "--controller",
    type=click.Choice(CONTROLLERS),
    default=None,
    help="Horovod's controller: mpi (Open MPI; the faster one, the default on one machine where Horovod has it) "
    "or gloo (the default elsewhere: several hosts, elastic jobs, a build without MPI).",
)
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --run-dir.")
@click.option(
    "--init-from",
    default=None,
    callback=non_empty,
    type=click.Path(file_okay=False),
    help="Start from the tensors this model shares with another run's newest checkpoint (e.g. a pretrained encoder).",
)
@click.option("--progress/--no-progress", default=True, help="Rank 0's progress bar.")
@click.option("--tensorboard/--no-tensorboard", default=True, help="Rank 0's TensorBoard event files in RUN_DIR/tb.")
@click.option(
    "--pin-cores/--no-pin-cores",
    default=True,
    help="Pin each rank to its own share of its host's cores (never for --elastic or --oversubscribe).",
)
def train(**params) -> None:
    """Train a model family with one framework, under horovodrun when --np > 1.

    Started by a user's own horovodrun, it runs as one rank of that job.
    """
    from harness.loop.elastic import collect_waiting_survivors

    pin_to_local_cores()  # a rank started with the pin asked for: before any framework starts a thread
    options = TrainOptions.from_click(params)
    try:
        check_framework(options.framework)
        check_hostname_resolves()
        family, config = load_run_config(options.model, options.config_file, options.sets, options.family)
        if not options.on_hosts and launched_rank() is None:
            check_local_slots(options.num_ranks, options.oversubscribe)
        hooks = [load_hook(spec) for spec in options.hook_specs]
        if launched_rank() is not None:  # one rank of a (possibly elastic) horovodrun job
            train_here(options, family, config, hooks)
            return
        start = check_before_launch(options, family, config)
        if options.num_ranks == 1 and not options.on_hosts and not options.elastic:
            train_here(options, family, config, hooks)
            return
        check_parameter_map(options.framework, family, config.model)
        result, stop, output = launch_ranks(options, family)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    survivors = collect_waiting_survivors(options.run_dir)
    # A stop is judged by what the ranks saved, not by horovodrun's exit code alone: once in the
    # suite (2026-11-24) horovodrun ended with 0 after its ranks had stopped on a SIGTERM and saved.
    if result.returncode != 0 or stop.requested:
        start_step = start.step if start else 0
        explain_failure(options, family, config, start_step, stop, result.returncode, survivors, output)
