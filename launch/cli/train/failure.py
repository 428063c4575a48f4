"""Why a horovodrun job of `harness train` ended, in one line and an exit code."""

from __future__ import annotations

import os
import sys
import time

import click

from harness.contract.config import RunConfig
from harness.contract.family import Family
from harness.loop.preemption import StopRequest, exit_code, signal_name
from harness.storage.checkpoint import latest_checkpoint
from launch.cli.train.options import TrainOptions
from launch.horovodrun import GRACE_SECONDS, JobOutput, rank_hosts


def explain_failure(
    options: TrainOptions,
    family: Family,
    config: RunConfig,
    start_step: int,
    stop: StopRequest,
    returncode: int,
    survivors: list[dict],
    output: JobOutput,
) -> None:
    """The one line (and exit code) for a job that horovodrun ended with ``returncode``, or that was
    asked to stop; ``survivors``: the ranks of an elastic job that were still waiting for it to
    re-form when it ended; ``output``: what horovodrun's stderr said. Returns only for a job that
    finished before a stop took effect."""
    from harness.storage.rundir import wait_for_run_dir

    run_dir = options.run_dir
    if stop.requested:  # ranks whose shells a scheduler killed may outlive horovodrun: let rank 0 finish
        wait_for_run_dir(run_dir, float(os.environ.get("HOROVOD_GRACEFUL_TERMINATION_TIME_S", GRACE_SECONDS)))
    try:
        latest = latest_checkpoint(run_dir, family, config.model)
    except ValueError:
        latest = None
    resume_from = f"--resume continues from {latest.path} (step {latest.step})" if latest else "no checkpoint to resume"
    if survivors:
        waited = time.time() - min(record["since"] for record in survivors)
        raise click.ClickException(
            f"elastic job ended: {len(survivors)} rank(s) left, fewer than --min-np {options.min_np or 1}; "
            f"waited {waited:.0f} s for more hosts (--elastic-timeout); {resume_from}"
        )
    cause = signal_name(stop.signal) if stop.requested else "a stop signal sent to the ranks"
    if latest is not None and latest.step > start_step and latest.trainer.get("stopped"):
        # The ranks stopped on a signal (sent here, or to them directly) and rank 0 saved the step.
        click.echo(
            f"stopped by {cause} after step {latest.step}; checkpoint {latest.path}: --resume continues from it",
            err=True,
        )
        sys.exit(exit_code(stop.signal))
    if returncode == 0:
        return
    if stop.requested:
        click.echo(f"stopped by {cause} before a step completed; nothing new to resume", err=True)
        sys.exit(exit_code(stop.signal))
    traceback = f"; horovodrun's traceback: {output.log_path}" if output.traceback_logged else ""
    lost = output.lost_ranks(options.num_ranks) if not options.elastic else []
    if lost:
        hosts = rank_hosts(options.num_ranks, options.hosts, options.hostfile)
        names = ", ".join(f"rank {rank} on {hosts[rank]}" for rank in lost)
        seen = ", ".join(str(rank) for rank in sorted(output.reported_loss))
        raise click.ClickException(
            f"training failed: {names} was lost: rank {seen} saw it exit or stop responding for "
            f"{options.hang_timeout} s (--hang-timeout); {resume_from}{traceback}"
        )
    said = f" ({output.error})" if output.error else ""
    raise click.ClickException(
        f"training failed: horovodrun exited with code {returncode}{said}; {resume_from}{traceback}"
    )
