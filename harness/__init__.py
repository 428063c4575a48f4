"""Framework-free core of the Horovod training harness: families, config, data, the loop, checkpoints.

The Python API, for a launch script of your own (``horovodrun -np 2 python my_script.py``)::

    from harness import build_run_config, run
    from my_models import FAMILY  # a harness.Family

    config = build_run_config(FAMILY, "tiny", overrides=["train.steps=100"])
    summary = run("torch", FAMILY, config, "runs/mine")  # rank 0: a RunSummary; other ranks: None
"""

from harness.config import RunConfig, build_run_config, load_run_config
from harness.family import Family, load_family
from harness.hooks import Hook
from harness.tasks import Batch, CausalLMTask, Task
from harness.train import ElasticSettings, RunSummary, Trainer, run

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
