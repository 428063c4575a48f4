"""Worker: exercise allreduce, broadcast and allgather through one framework's Horovod binding.

Usage: collectives.py {torch,tf}. Prints one JSON line of results per rank.
"""

import json
import sys

import numpy as np

from harness.contract.frameworks import framework_module

framework = sys.argv[1]
dist = framework_module(framework, "distributed").init_distributed()
rank = dist.rank
# Raw binding calls on the framework's own tensors, then the numpy facade on top of them.
tensor = framework_module(framework, "distributed").to_tensor
raw_sum = dist.hvd.allreduce(tensor(np.full(4, rank + 1.0, np.float32)), op=dist.hvd.Sum, name="raw_sum")
results = {
    "rank": rank,
    "size": dist.size,
    "local_rank": dist.local_rank,
    "is_main_process": dist.is_main_process,
    "raw_allreduce_sum": np.asarray(raw_sum).tolist(),
    "allreduce_mean": dist.allreduce_mean(np.full(3, rank + 1.0, np.float32), name="mean").tolist(),
    "allreduce_sum": dist.allreduce_sum(np.array([rank, 10 * rank], np.int64), name="sum").tolist(),
    "broadcast": dist.broadcast(np.array([rank * 10.0, -1.0], np.float64), root_rank=1, name="bcast").tolist(),
    # Rank r contributes r + 1 rows, so the gathered first dimension differs per rank.
    "allgather": dist.allgather(np.full((rank + 1, 2), rank, np.int32), name="gather").tolist(),
}
print(json.dumps(results), flush=True)
