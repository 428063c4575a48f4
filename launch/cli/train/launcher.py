"""`harness train`'s ranks, started under horovodrun from this process."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from harness.contract.family import Family
from harness.loop.preemption import StopRequest
from launch.cli.train.options import TrainOptions
from launch.horovodrun import JobOutput, default_controller, mpi_built, run_horovodrun, train_argv

HOROVODRUN_LOG = "horovodrun.log"  # in the run directory: horovodrun's own traceback, when it prints one


def launch_ranks(options: TrainOptions, family: Family) -> tuple[subprocess.CompletedProcess, StopRequest, JobOutput]:
    """Run the job until horovodrun ends; returns its result, the stop request that listened
    meanwhile (SIGTERM/SIGINT: the ranks checkpoint and stop) and what its stderr said."""
    from harness.loop.elastic import collect_waiting_survivors

    program = train_argv(
        options.framework, options.run_dir, options.model, options.num_ranks, options.sets, options.config_file,
        options.resume, options.progress, options.commit_every if options.elastic else 0, family=family.spec,
        hooks=options.hook_specs, tensorboard=options.tensorboard,
    )  # fmt: skip
    stop = StopRequest()  # SIGTERM/SIGINT while the ranks run: they checkpoint and stop
    output = JobOutput(Path(options.run_dir) / HOROVODRUN_LOG)
    collect_waiting_survivors(options.run_dir)  # marks a killed job may have left
    result = run_horovodrun(
        options.num_ranks,
        program,
        hosts=options.hosts,
        hostfile=options.hostfile,
        network_interface=options.network_interface,
        hang_timeout=options.hang_timeout,
        elastic=options.elastic_bounds,
        oversubscribe=options.oversubscribe,
        stop=stop,
        elastic_timeout=options.elastic_timeout or options.hang_timeout,
        controller=options.controller or default_controller(options.on_hosts, options.elastic, mpi_built(), notice),
        environment=family.environment,
        output=output,
        pin_cores=options.pin_cores,
    )
    return result, stop, output


def notice(line: str) -> None:
    """A line for the user, on stderr beside the ranks' own."""
    click.echo(line, err=True)


def check_parameter_map(framework: str, family: Family, model_config: Any) -> None:
    """For a family that maps ``framework``'s own parameters: build that model and bind the map in a
    process of its own, so that a mistake is refused in one line (``ValueError``) before any rank
    starts; a family without a map for it has nothing to check."""
    if framework not in family.parameter_maps:
        return
    config = json.dumps(dataclasses.asdict(model_config))
    cmd = [sys.executable, "-m", "launch.preflight", framework, family.spec, config]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise ValueError(lines[-1] if lines else f"checking {family.name}'s {framework} parameter map failed")
