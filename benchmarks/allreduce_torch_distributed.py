"""Allreduce bandwidth through torch.distributed's Gloo backend, the peer baseline.

Usage: allreduce_torch_distributed.py WORLD_SIZE PORT REPEATS SIZE_MB [SIZE_MB ...]; spawns the
ranks itself on this machine. Prints one JSON line {"<size_mb>": [seconds per allreduce, ...]}.
"""

import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def worker(rank: int, world_size: int, port: int, repeats: int, sizes: list[float], queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    results = {}
    for size_mb in sizes:
        tensor = torch.ones(int(size_mb * 2**20) // 4)
        dist.all_reduce(tensor)
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            dist.all_reduce(tensor)
            times.append(time.perf_counter() - began)
        results[str(size_mb)] = times
    if rank == 0:
        queue.put(results)
    dist.destroy_process_group()


if __name__ == "__main__":
    world_size, port, repeats = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    sizes = [float(s) for s in sys.argv[4:]]
    queue = mp.get_context("spawn").SimpleQueue()
    mp.spawn(worker, args=(world_size, port, repeats, sizes, queue), nprocs=world_size)
    print(json.dumps(queue.get()), flush=True)
