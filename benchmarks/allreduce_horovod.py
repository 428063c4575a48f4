"""Allreduce bandwidth through Horovod's torch binding.

Usage, under horovodrun: allreduce_horovod.py {harness,synchronize} REPEATS SIZE_MB [SIZE_MB ...].
"harness" waits the way the harness's training step does (models_torch.distributed.wait_for);
"synchronize" is plain ``hvd.allreduce``. Rank 0 prints one JSON line
{"<size_mb>": [seconds per allreduce, ...]}.
"""

import json
import sys
import time

import horovod.torch as hvd
import torch

from models_torch.distributed import wait_for

mode, repeats, sizes = sys.argv[1], int(sys.argv[2]), [float(s) for s in sys.argv[3:]]
hvd.init()


def allreduce(tensor: torch.Tensor, name: str) -> torch.Tensor:
    handle = hvd.allreduce_async(tensor, op=hvd.Sum, name=name)
    if mode == "harness":
        wait_for(hvd, handle)
    return hvd.synchronize(handle)


results = {}
for size_mb in sizes:
    tensor = torch.ones(int(size_mb * 2**20) // 4)
    allreduce(tensor, f"warmup{size_mb}")
    times = []
    for i in range(repeats):
        began = time.perf_counter()
        allreduce(tensor, f"bench{size_mb}.{i}")
        times.append(time.perf_counter() - began)
    results[str(size_mb)] = times
if hvd.rank() == 0:
    print(json.dumps(results), flush=True)
