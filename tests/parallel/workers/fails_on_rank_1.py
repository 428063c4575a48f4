"""Worker: rank 1 fails after a second; rank 0 would wait far longer, so horovodrun must stop it."""

import os
import sys
import time

rank = int(os.environ["HOROVOD_RANK"])
print(f"rank {rank} started", file=sys.stderr, flush=True)
if rank == 1:
    time.sleep(1)
    raise RuntimeError("rank 1 fails on purpose")
time.sleep(120)
