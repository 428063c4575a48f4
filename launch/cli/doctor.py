"""`harness doctor`: the installed stack and what Horovod was built with."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import click

from harness.contract.frameworks import FRAMEWORK_PACKAGES
from launch.build_horovod import installed_version


def _tick(flag: bool | None) -> str:
    return "[X]" if flag else "[ ]"


def _gpus(framework: str, info: dict) -> str:
    """``torch 8 (CUDA 13.2)``: the GPUs a framework sees and the CUDA it was built for."""
    if "gpus" not in info:  # its Horovod extension did not load
        return f"{framework} ?"
    return f"{framework} {info['gpus']} ({'CUDA ' + info['cuda_version'] if info['cuda_version'] else 'CPU build'})"


def installed_stack() -> dict[str, str | None]:
    """The installed version of each part of the stack (None: not installed)."""
    return {
        "python": platform.python_version(),
        "torch": installed_version("torch"),
        "tensorflow": installed_version("tensorflow", "tensorflow-cpu"),
        "horovod": installed_version("horovod"),
    }


def horovod_build_info() -> dict[str, dict]:
    """Per framework, what its Horovod extension was built with; one subprocess each, in parallel."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "launch.buildinfo", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name in FRAMEWORK_PACKAGES
    }
    info = {}
    for name, proc in procs.items():
        out, err = proc.communicate()
        if proc.returncode != 0:  # the extension crashed on load: report its last words
            last = (err.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
            info[name] = {"available": False, "error": last}
        else:
            info[name] = json.loads(out.strip().splitlines()[-1])
    return info


@click.command()
def doctor() -> None:
    """Report the installed stack and what Horovod was built with; fail if something is missing."""
    versions = installed_stack()
    for name, version in versions.items():
        click.echo(f"{name:<12} {version or 'not installed'}")
    click.echo(f"{'cpus':<12} {os.cpu_count()}")
    missing = [name for name, version in versions.items() if version is None]
    if "horovod" in missing:
        raise click.ClickException("Horovod is not installed; run `make setup`")

    built = horovod_build_info()
    frameworks = {"TensorFlow": built["tf"]["available"], "PyTorch": built["torch"]["available"]}
    features = {f: any(info.get(f.lower()) for info in built.values()) for f in ("Gloo", "MPI", "NCCL", "CCL")}
    click.echo("frameworks   " + "  ".join(f"{_tick(ok)} {name}" for name, ok in frameworks.items()))
    click.echo(f"controllers  {_tick(features['Gloo'])} Gloo  {_tick(features['MPI'])} MPI")
    click.echo("tensor ops   " + "  ".join(f"{_tick(ok)} {name}" for name, ok in features.items()))
    click.echo("gpus         " + "  ".join(_gpus(name, built[name]) for name in FRAMEWORK_PACKAGES))
    if missing:
        raise click.ClickException(f"{' and '.join(missing)} not installed; run `make setup`")
    unbuilt = [name for name, ok in frameworks.items() if not ok]
    if unbuilt:
        reasons = "; ".join(info["error"] for info in built.values() if "error" in info)
        raise click.ClickException(
            f"Horovod's {' and '.join(unbuilt)} extension is unusable ({reasons}); run `make setup`"
        )
    if not (features["Gloo"] or features["MPI"]):
        raise click.ClickException("Horovod has no controller (neither Gloo nor MPI); rebuild with `make setup`")
