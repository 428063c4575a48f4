"""`harness train`'s ranks, started under horovodrun from this process."""

from __future__ import annotations

import subprocess

from harness.contract.family import Family
from harness.loop.preemption import StopRequest
from launch.cli.train.options import TrainOptions
from launch.horovodrun import run_horovodrun, train_argv


def launch_ranks(options: TrainOptions, family: Family) -> tuple[subprocess.CompletedProcess, StopRequest]:
    """Run the job until horovodrun ends; returns its result and the stop request that listened
    meanwhile (SIGTERM/SIGINT: the ranks checkpoint and stop)."""
    from harness.loop.elastic import collect_waiting_survivors

    program = train_argv(
        options.framework, options.run_dir, options.model, options.num_ranks, options.sets, options.config_file,
        options.resume, options.progress, options.commit_every if options.elastic else 0, family=family.spec,
        hooks=options.hook_specs, tensorboard=options.tensorboard,
    )  # fmt: skip
    stop = StopRequest()  # SIGTERM/SIGINT while the ranks run: they checkpoint and stop
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
        controller=options.controller,
        environment=family.environment,
    )
    return result, stop
