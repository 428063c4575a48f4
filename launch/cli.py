"""The ``harness`` command line."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys

import click

from harness.frameworks import FRAMEWORK_PACKAGES
from launch.horovodrun import run_horovodrun


def _version(*dists: str) -> str | None:
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _tick(flag: bool | None) -> str:
    return "[X]" if flag else "[ ]"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Train twin PyTorch and TensorFlow Transformer LMs with one Horovod data-parallel loop."""


@cli.command()
def doctor() -> None:
    """Report the installed stack and what Horovod was built with; fail if something is missing."""
    versions = {
        "python": platform.python_version(),
        "torch": _version("torch"),
        "tensorflow": _version("tensorflow", "tensorflow-cpu"),
        "horovod": _version("horovod"),
    }
    for name, version in versions.items():
        click.echo(f"{name:<12} {version or 'not installed'}")
    click.echo(f"{'cpus':<12} {os.cpu_count()}")
    missing = [name for name, version in versions.items() if version is None]
    if "horovod" in missing:
        raise click.ClickException("Horovod is not installed; run `make setup`")

    # Each check loads one extension in a fresh subprocess, so torch and TF never share one.
    from horovod.common import util

    built = {
        "TensorFlow": util.extension_available("tensorflow"),
        "PyTorch": util.extension_available("torch"),
        "MPI": util.mpi_built(),
        "Gloo": util.gloo_built(),
        "NCCL": util.nccl_built(),
        "CCL": util.ccl_built(),
    }
    click.echo("frameworks   " + "  ".join(f"{_tick(built[k])} {k}" for k in ("TensorFlow", "PyTorch")))
    click.echo("controllers  " + "  ".join(f"{_tick(built[k])} {k}" for k in ("Gloo", "MPI")))
    click.echo("tensor ops   " + "  ".join(f"{_tick(built[k])} {k}" for k in ("Gloo", "MPI", "NCCL", "CCL")))
    if missing:
        raise click.ClickException(f"{' and '.join(missing)} not installed; run `make setup`")
    unbuilt = [k for k in ("TensorFlow", "PyTorch") if not built[k]]
    if unbuilt:
        raise click.ClickException(f"Horovod was built without {' and '.join(unbuilt)}; rebuild with `make setup`")
    if not (built["Gloo"] or built["MPI"]):
        raise click.ClickException("Horovod has no controller (neither Gloo nor MPI); rebuild with `make setup`")


@cli.command()
@click.option("--framework", type=click.Choice([*FRAMEWORK_PACKAGES, "all"]), default="all", show_default=True)
@click.option("--np", "num_proc", type=int, default=2, show_default=True, help="Number of ranks.")
@click.option("--hosts", default=None, help="Comma-separated NAME:SLOTS; default: this machine.")
def smoke(framework: str, num_proc: int, hosts: str | None) -> None:
    """Run one allreduce per framework under horovodrun, to check the install end to end."""
    frameworks = list(FRAMEWORK_PACKAGES) if framework == "all" else [framework]
    for name in frameworks:
        try:
            result = run_horovodrun(num_proc, [sys.executable, "-m", "launch.smoke", name], hosts=hosts)
        except ValueError as err:
            raise click.ClickException(str(err)) from None
        if result.returncode != 0:
            raise click.ClickException(f"{name} smoke run failed with exit code {result.returncode}")


def main() -> None:
    cli(prog_name="harness")
