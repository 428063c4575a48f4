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


def save(run_dir, step, keep=3, model=None):
    """A checkpoint of step ``step`` in ``run_dir``: ``model``, by default the initial state of seed ``step``."""
    trainer = {"framework": "torch", "family": "gpt", "config": CONFIG.to_dict()}
    model = init_state(CONFIG.model, step) if model is None else model
    return save_checkpoint(run_dir, step, model, optimizer_state(step), trainer, keep)
