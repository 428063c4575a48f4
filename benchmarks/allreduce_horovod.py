"""Allreduce bandwidth through Horovod's torch binding (the harness's gradient path).

Usage, under horovodrun: allreduce_horovod.py REPEATS SIZE_MB [SIZE_MB ...]. Rank 0 prints one
JSON line {"<size_mb>": [seconds per allreduce, ...]}.

In place and under one name per size, as the optimizer reduces gradients (and as torch.distributed's
all_reduce works): an out-of-place hvd.allreduce allocates its output each call, and a new name each
call misses Horovod's response cache, which the training step never does.
"""

import json
import sys
import time

import horovod.torch as hvd
import torch

repeats, sizes = int(sys.argv[1]), [float(s) for s in sys.argv[2:]]
hvd.init()

results = {}
for size_mb in sizes:
    tensor = torch.ones(int(size_mb * 2**20) // 4)
    hvd.allreduce_(tensor, op=hvd.Sum, name=f"bench{size_mb}")
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        hvd.allreduce_(tensor, op=hvd.Sum, name=f"bench{size_mb}")
        times.append(time.perf_counter() - began)
    results[str(size_mb)] = times
if hvd.rank() == 0:
    print(json.dumps(results), flush=True)
