"""One AdamW step over a preset's torch parameters with each of torch's kernels: single-tensor
(foreach=False), foreach and fused, on one thread, with the harness's AdamW groups and settings
(models_torch/backend.py's make_adamw).

Usage: adamw_kernels.py [MODEL ...] (default: default medium gpt2-small). Prints one JSON line per
model: its parameter count and each kernel's median seconds per step.
"""

import json
import sys

import numpy as np
import torch
from loops import time_steps

from harness.contract.config import TrainConfig
from harness.families.gpt import FAMILY
from models_torch.backend import make_adamw

# Each kernel's flags, set on every parameter group (a group's own settings override the defaults).
KERNELS = {
    "single_tensor": {"foreach": False, "fused": None},
    "foreach": {"foreach": True, "fused": None},
    "fused": {"foreach": None, "fused": True},
}


def step_seconds(harness: torch.optim.AdamW, kernel: dict, repeats: int = 7) -> float:
    """Median seconds of one step of the harness's AdamW (its groups and settings) on ``kernel``,
    over ``repeats`` steps after 2 warm-up steps."""
    adamw = torch.optim.AdamW([{**group, **kernel} for group in harness.param_groups])
    return float(np.median(time_steps(adamw.step, 2 + repeats)[2:]))


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name in sys.argv[1:] or ["default", "medium", "gpt2-small"]:
        config = FAMILY.preset(name)
        named = dict(FAMILY.implementation("torch")(config).named_parameters())
        for p in named.values():
            p.grad = torch.randn_like(p) * 1e-3
        harness = make_adamw(named, FAMILY.decayed(config), TrainConfig())
        seconds = {kernel: step_seconds(harness, flags) for kernel, flags in KERNELS.items()}
        count = sum(p.numel() for p in named.values())
        print(json.dumps({"model": name, "parameters": count, "step_s": seconds}), flush=True)
