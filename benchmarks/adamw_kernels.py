"""One AdamW step over a preset's torch parameters with each of torch's kernels: single-tensor
(foreach=False), foreach and fused, on one thread, with the weight decay split the harness uses.

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

KERNELS = {"single_tensor": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def step_seconds(named: dict[str, torch.nn.Parameter], decayed: set[str], kernel: dict, repeats: int = 7) -> float:
    """Median seconds of one AdamW step (the harness's settings) over ``repeats`` after 2 warm-up steps."""
    train = TrainConfig()
    groups = [
        {"params": [p for n, p in named.items() if n in decayed], "weight_decay": train.weight_decay},
        {"params": [p for n, p in named.items() if n not in decayed], "weight_decay": 0.0},
    ]
    adamw = torch.optim.AdamW(groups, lr=train.lr, betas=(train.beta1, train.beta2), eps=train.eps, **kernel)
    return float(np.median(time_steps(adamw.step, 2 + repeats)[2:]))


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name in sys.argv[1:] or ["default", "medium", "gpt2-small"]:
        config = FAMILY.preset(name)
        named = dict(FAMILY.implementation("torch")(config).named_parameters())
        for p in named.values():
            p.grad = torch.randn_like(p) * 1e-3
        seconds = {kernel: step_seconds(named, FAMILY.decayed(config), args) for kernel, args in KERNELS.items()}
        count = sum(p.numel() for p in named.values())
        print(json.dumps({"model": name, "parameters": count, "step_s": seconds}), flush=True)
