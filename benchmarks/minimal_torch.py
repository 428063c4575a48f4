"""The smallest honest Horovod training loop for a family's torch twin: the harness's speed reference.

Same model, batch, AdamW and clipping as the harness, none of its plumbing (data order, metrics,
loss allreduce, checkpoints). Usage (any np): minimal_torch.py FAMILY MODEL BATCH_PER_RANK STEPS, for a
family that declares ``reference_loops`` (a causal LM: random tokens, next-token targets).
Rank 0 prints one JSON line: {"step_times": [...]}.
"""

import sys

import horovod.torch as hvd
import torch
from loops import family_batch, report, time_steps

from harness.contract.family import load_family
from harness.contract.task import map_inputs
from models_torch.ops import call, cross_entropy, import_state

family, model_name, batch_size, steps = load_family(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
hvd.init()
config = family.preset(model_name)
model = family.implementation("torch")(config)
import_state(model, family.init_state(config, seed=0), family.parameter_map("torch"))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, foreach=False)
# Horovod: average gradients across ranks; start from rank 0's weights.
optimizer = hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters())
hvd.broadcast_parameters(model.state_dict(), root_rank=0)

inputs, targets = family_batch(family, config, batch_size, hvd.rank())
inputs, targets = map_inputs(torch.from_numpy, inputs), torch.from_numpy(targets)


def step() -> None:
    optimizer.zero_grad()
    cross_entropy(family.logits_of(call(model, inputs)), targets).backward()
    optimizer.synchronize()  # Horovod: averaged gradients before clipping
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    with optimizer.skip_synchronize():
        optimizer.step()


report(time_steps(step, steps), hvd.rank() == 0)
