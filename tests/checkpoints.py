"""Real checkpoints of the tiny GPT, written for the tests that need a run directory."""

import numpy as np

from harness.contract.state import optimizer_state_names
from harness.families.gpt import FAMILY, init_state, state_shapes
from harness.runner.config import build_run_config
from harness.storage.checkpoint import save_checkpoint

CONFIG = build_run_config(FAMILY, "tiny")


def optimizer_state(step: int):
    shapes = state_shapes(CONFIG.model)
    state = {"step": np.array([step], np.int64)}
    for name in optimizer_state_names(shapes)[1:]:
        state[name] = np.full(shapes[name.split(".", 1)[1]], step, np.float32)
    return state


def save(run_dir, step, keep=3):
    """A checkpoint of step ``step`` in ``run_dir``: the model's initial state of seed ``step``."""
    trainer = {"framework": "torch", "family": "gpt", "config": CONFIG.to_dict()}
    return save_checkpoint(run_dir, step, init_state(CONFIG.model, step), optimizer_state(step), trainer, keep)
