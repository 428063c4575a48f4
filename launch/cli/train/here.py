"""`harness train` in this process: one rank of a horovodrun job, or a run of one process."""

from __future__ import annotations

import math
import os
import sys
from typing import NoReturn

import click

from harness.contract.config import RunConfig
from harness.contract.distributed import LOST_JOB, is_lost_rank_error, launched_rank
from harness.contract.family import Family
from launch.cli.train.options import TrainOptions


def load_hook(spec: str):
    """``MODULE:ATTR`` of a callable that returns a ``harness.Hook`` (a Hook subclass will do)."""
    from harness.contract.family import import_attr
    from harness.loop.trainer import Hook

    factory = import_attr(spec, f"--hook {spec}")
    hook = factory() if callable(factory) else factory
    if not isinstance(hook, Hook):
        raise ValueError(f"--hook {spec} made a {type(hook).__name__}, expected a harness.Hook")
    return hook


def train_here(options: TrainOptions, family: Family, config: RunConfig, hooks: list) -> None:
    """Train, and on rank 0 print the summary; every way a rank fails ends in one line."""
    from harness.loop.preemption import Preempted
    from harness.loop.trainer import NonFiniteError
    from harness.runner.run import ElasticSettings, run
    from harness.storage.rundir import DiskFullError

    elastic = ElasticSettings(options.commit_every) if options.elastic else None
    try:
        summary = run(
            options.framework,
            family,
            config,
            options.run_dir,
            resume=options.resume,
            progress=options.progress,
            elastic=elastic,
            hooks=hooks,
            tensorboard=options.tensorboard,
        )
    except (NonFiniteError, DiskFullError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    except Preempted as err:
        if not launched_rank():
            click.echo(str(err), err=True)
        end_process(options.framework, err.exit_code)
    except Exception as err:
        # Another rank died or stopped responding (hang timeout): say so in one line.
        if not is_lost_rank_error(err):
            raise
        raise click.ClickException(
            f"rank {launched_rank() or 0} {LOST_JOB}: another rank exited or stopped "
            f"responding for {os.environ.get('HOROVOD_GLOO_TIMEOUT_SECONDS', '?')} s (--hang-timeout)"
        ) from None
    if summary is not None:  # rank 0
        _echo_summary(summary.__dict__)
    end_process(options.framework, 0)


def end_process(framework: str, code: int) -> NoReturn:
    """Exit with ``code`` once the run is over. A rank of a horovodrun job leaves without Python's
    teardown of the framework's modules, about 1 s of a torch or TensorFlow process (measured:
    benchmarks/first_step.py) with nothing left to save: the run's files are closed by now, Horovod
    is shut down first (its peers see an orderly end) and the output is flushed."""
    if launched_rank() is None:
        sys.exit(code)
    from harness.contract.frameworks import framework_module

    framework_module(framework, "distributed").shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _echo_summary(summary: dict) -> None:
    tokens_per_s = summary["tokens_per_second"]  # NaN after one step: the first step is never timed
    click.echo(
        f"{summary['framework']} x{summary['world_size']}: {summary['steps']} step{'s' * (summary['steps'] != 1)}, "
        f"final loss {summary['final_loss']:.4f}, "
        + "".join(f"{name} {value:.4f}, " for name, value in summary["final_val_metrics"].items())
        + (f"{tokens_per_s:,.0f} tokens/s, " if math.isfinite(tokens_per_s) else "")
        + f"peak RSS per rank {' / '.join(f'{mib:.0f}' for mib in summary['peak_rss_mib_per_rank'])} MiB, "
        f"hosts {', '.join(summary['hostname_per_rank'])}"
    )
    click.echo(f"checkpoint: {summary['checkpoint']}")
