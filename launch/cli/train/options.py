"""`harness train`'s command line, read once into the one value its helpers share."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainOptions:
    """Every option of `harness train`, under click's parameter names; ``run_dir`` made absolute."""

    framework: str
    num_ranks: int
    steps: int | None
    family: str | None
    model: str
    run_dir: str
    config_file: str | None
    overrides: tuple[str, ...]
    hook_specs: tuple[str, ...]
    hosts: str | None
    hostfile: str | None
    network_interface: str | None
    oversubscribe: bool
    hang_timeout: int
    elastic: bool
    min_np: int | None
    max_np: int | None
    elastic_timeout: int | None
    commit_every: int
    controller: str | None  # None: default_controller's choice
    resume: bool
    init_from: str | None
    progress: bool
    tensorboard: bool
    pin_cores: bool

    @classmethod
    def from_click(cls, params: dict) -> TrainOptions:
        return cls(**{**params, "run_dir": os.path.abspath(params["run_dir"])})

    @property
    def sets(self) -> list[str]:
        """The --set overrides, then --steps and --init-from (absolute) as the config keys they stand for:
        what the config is built from, here and on every rank."""
        sets = [*self.overrides, *([f"train.steps={self.steps}"] if self.steps is not None else [])]
        return sets + ([f"train.init_from={os.path.abspath(self.init_from)}"] if self.init_from else [])

    @property
    def on_hosts(self) -> bool:
        """Whether the ranks go to named hosts (--hosts or --hostfile) rather than to this machine's cores."""
        return bool(self.hosts or self.hostfile)

    @property
    def elastic_bounds(self) -> tuple[int, int] | None:
        """An elastic job's fewest and most ranks; None for a job of fixed size."""
        return (self.min_np or 1, self.max_np or self.num_ranks) if self.elastic else None
