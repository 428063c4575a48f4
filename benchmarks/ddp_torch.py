"""The minimal torch loop with DistributedDataParallel in place of Horovod: the peer a user would
pick instead (torchrun + DDP, Gloo on CPU). Same model, batch, AdamW and clipping as
benchmarks/minimal_torch.py. Usage: torchrun --nproc-per-node N ddp_torch.py MODEL BATCH_PER_RANK STEPS.
Rank 0 prints one JSON line: {"step_times": [...]}.
"""

import json
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from harness.gpt import FAMILY, init_state
from models_torch.model import TransformerLM
from models_torch.ops import cross_entropy, import_state

model_name, batch_size, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
dist.init_process_group("gloo")
config = FAMILY.preset(model_name)
model = TransformerLM(config)
import_state(model, init_state(config, seed=0))
# DDP: broadcasts rank 0's weights, then averages gradients in buckets while backward runs.
model = DistributedDataParallel(model)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, foreach=False)

rng = np.random.default_rng(dist.get_rank())
tokens = torch.from_numpy(rng.integers(0, config.vocab_size, (batch_size, config.block_size + 1)))
inputs, targets = tokens[:, :-1], tokens[:, 1:]
times = []
for _ in range(steps):
    began = time.perf_counter()
    optimizer.zero_grad()
    cross_entropy(model(inputs), targets).backward()  # returns with the gradients averaged
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    times.append(time.perf_counter() - began)
if dist.get_rank() == 0:
    print(json.dumps({"step_times": times}), flush=True)
dist.barrier()  # both ranks are done with Gloo before either leaves
# Leave without tearing Gloo down: its threads sometimes abort the interpreter's shutdown
# ("terminate called without an active exception", 1 run in 10 here), failing a finished run.
os._exit(0)
