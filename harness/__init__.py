"""Framework-free core of the Horovod training harness: families, config, data, the loop, checkpoints.

The Python API, for a launch script of your own (``horovodrun -np 2 python my_script.py``)::

    from harness import build_run_config, run
    from my_models import FAMILY  # a harness.Family

    config = build_run_config(FAMILY, "tiny", overrides=["train.steps=100"])
    summary = run("torch", FAMILY, config, "runs/mine")  # rank 0: a RunSummary; other ranks: None

The layers, each a folder, import only downward (``make lint`` checks it): ``contract`` (what a
family and a backend implement), ``data``, ``storage`` (checkpoints, the run directory), ``loop``
(the trainer and its hooks), ``runner`` (a run put together); the built-in families live in
``families/``. The names below are imported when first used, so ``import harness`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.contract.config import RunConfig
    from harness.contract.family import Family, load_family
    from harness.contract.task import Batch, Task
    from harness.data.causal_lm import CausalLMTask
    from harness.loop.trainer import Hook, Trainer
    from harness.runner.config import build_run_config, load_run_config
    from harness.runner.run import ElasticSettings, RunSummary, run

_HOMES = {
    "Batch": "harness.contract.task",
    "CausalLMTask": "harness.data.causal_lm",
    "ElasticSettings": "harness.runner.run",
    "Family": "harness.contract.family",
    "Hook": "harness.loop.trainer",
    "RunConfig": "harness.contract.config",
    "RunSummary": "harness.runner.run",
    "Task": "harness.contract.task",
    "Trainer": "harness.loop.trainer",
    "build_run_config": "harness.runner.config",
    "load_family": "harness.contract.family",
    "load_run_config": "harness.runner.config",
    "run": "harness.runner.run",
}
__all__ = [
    "Batch",
    "CausalLMTask",
    "ElasticSettings",
    "Family",
    "Hook",
    "RunConfig",
    "RunSummary",
    "Task",
    "Trainer",
    "build_run_config",
    "load_family",
    "load_run_config",
    "run",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
