"""The minimal torch loop with DistributedDataParallel in place of Horovod: the peer a user would
pick instead (torchrun + DDP, Gloo on CPU). Same model, batch, AdamW and clipping as
benchmarks/minimal_torch.py. Usage: torchrun --nproc-per-node N ddp_torch.py FAMILY MODEL BATCH_PER_RANK STEPS.
Rank 0 prints one JSON line: {"step_times": [...]}.
"""

import os
import sys

import torch
import torch.distributed as dist
from loops import family_batch, report, time_steps
from torch.nn.parallel import DistributedDataParallel

from harness.contract.family import load_family
from harness.contract.task import map_inputs
from models_torch.ops import call, cross_entropy, import_state

family, model_name, batch_size, steps = load_family(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
dist.init_process_group("gloo")
config = family.preset(model_name)
model = family.implementation("torch")(config)
import_state(model, family.init_state(config, seed=0), family.parameter_map("torch"))
# DDP: broadcasts rank 0's weights, then averages gradients in buckets while backward runs.
model = DistributedDataParallel(model)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, foreach=False)

inputs, targets = family_batch(family, config, batch_size, dist.get_rank())
inputs, targets = map_inputs(torch.from_numpy, inputs), torch.from_numpy(targets)


def step() -> None:
    optimizer.zero_grad()
    cross_entropy(family.logits_of(call(model, inputs)), targets).backward()  # returns with the gradients averaged
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


report(time_steps(step, steps), dist.get_rank() == 0)
dist.barrier()  # both ranks are done with Gloo before either leaves
# Leave without tearing Gloo down: its threads sometimes abort the interpreter's shutdown
# ("terminate called without an active exception", 1 run in 10 here), failing a finished run.
os._exit(0)
