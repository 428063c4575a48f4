"""`harness parity`'s runs: the torch and the TF twin trained from the same weights on the same
batches, each framework in its own `harness train` process, then compared step by step."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.contract.family import Family
from harness.contract.frameworks import FRAMEWORK_PACKAGES
from harness.runner.parity import compare_runs, plot_report
from launch.horovodrun import train_argv


@dataclass(frozen=True)
class ParityPlan:
    """Both runs: ``steps`` of the family's ``model`` preset on ``num_ranks`` ranks each, with the
    config file and overrides `harness train` takes; they go to OUT/torch and OUT/tf."""

    family: Family
    model: str
    steps: int
    num_ranks: int
    out: Path
    config_file: str | None = None
    overrides: tuple[str, ...] = ()
    oversubscribe: bool = False

    @property
    def run_dirs(self) -> dict[str, Path]:
        return {name: self.out / name for name in FRAMEWORK_PACKAGES}

    @property
    def sets(self) -> list[str]:
        """Both runs' overrides: a checkpoint half-way, no evaluation, then the user's, then what keeps
        the runs comparable (no dropout, deterministic kernels, the steps asked for)."""
        fields = {f.name for f in dataclasses.fields(self.family.config_class)}
        dropout = ["model.dropout=0.0"] if "dropout" in fields else []
        first = [f"checkpoint.every={max(1, self.steps // 2)}", "eval.every=0", *self.overrides]
        return [*first, *dropout, "train.deterministic=true", f"train.steps={self.steps}"]


def train_twins(plan: ParityPlan, log=print) -> None:
    """Both runs, one after the other; ``ValueError`` when OUT already holds one, or a run fails."""
    if any(path.exists() for path in plan.run_dirs.values()):
        raise ValueError(f"{plan.out} already holds a parity run; choose a new --out")
    for name, run_dir in plan.run_dirs.items():
        # Each framework in its own process: never both Horovod bindings in one.
        cmd = train_argv(
            name, str(run_dir), plan.model, plan.num_ranks, plan.sets, plan.config_file, family=plan.family.spec
        )
        cmd += ["--oversubscribe"] if plan.oversubscribe else []
        log(f"parity: training {name} ({plan.num_ranks} rank(s), {plan.steps} steps)")
        result = subprocess.run(cmd)
        if result.returncode != 0:
            raise ValueError(f"parity: the {name} run failed with exit code {result.returncode}")


def compare_twins(plan: ParityPlan, tol: float) -> dict:
    """The two runs' report, written to OUT/parity.json and plotted in OUT/parity.png."""
    runs = plan.run_dirs
    report = {"family": plan.family.spec, "model": plan.model, "np": plan.num_ranks, "tol": tol}
    report.update(compare_runs(runs["torch"], runs["tf"]))
    (plan.out / "parity.json").write_text(json.dumps(report, indent=2) + "\n")
    title = f"{plan.family.name} {plan.model} model, {plan.num_ranks} rank(s): PyTorch vs TensorFlow"
    plot_report(report, plan.out / "parity.png", title)
    return report
