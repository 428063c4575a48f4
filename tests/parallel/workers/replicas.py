"""Worker: ranks start from different weights and AdamW states; after Horovod's broadcast, and after
training, they agree.

Usage: replicas.py {torch,tf} RUN_DIR_BASE [FAMILY]. Each rank trains with its own run directory
(RUN_DIR_BASE/rank<r>), so only the directories of ranks that write anything get files.
Prints one JSON line per rank.
"""

import json
import sys
from pathlib import Path

import numpy as np

from harness.contract.frameworks import framework_module
from harness.contract.state import optimizer_state, state_checksum
from harness.runner.config import load_run_config
from harness.runner.run import run

framework, base, family_spec = sys.argv[1], Path(sys.argv[2]), (sys.argv[3:] or [None])[0]
overrides = ["train.steps=20", "eval.every=10", "checkpoint.every=10"]
family, config = load_run_config("tiny", overrides=overrides, family=family_spec)
dist = framework_module(framework, "distributed").init_distributed()


def gathered_checksums(state) -> list[str]:
    digest = np.frombuffer(bytes.fromhex(state_checksum(state)), np.uint8)[None]
    return [row.tobytes().hex() for row in dist.allgather(digest, name=f"sums{len(seen)}")]


seen = []
backend = framework_module(framework, "backend").make_backend(family, config, dist, init_seed=100 + 17 * dist.rank)
# A mid-run AdamW state of this rank's own (a fresh one is zeros on every rank, equal before any broadcast).
rng = np.random.default_rng(dist.rank)
moments = {n: (rng.normal(0, 1e-3, s), rng.uniform(0, 1e-6, s)) for n, s in backend.shapes.items()}
backend.import_optimizer_state(optimizer_state(7 + dist.rank, moments))
seen.append(gathered_checksums(backend.export_model_state()))
seen.append(gathered_checksums(backend.export_optimizer_state()))
backend.broadcast_initial_state()
seen.append(gathered_checksums(backend.export_model_state()))
seen.append(gathered_checksums(backend.export_optimizer_state()))

summary = run(framework, family, config, base / f"rank{dist.rank}", progress=False)
print(
    json.dumps(
        {
            "weights_before_broadcast": seen[0],
            "optimizer_before_broadcast": seen[1],
            "weights_after_broadcast": seen[2],
            "optimizer_after_broadcast": seen[3],
            "summary": summary.__dict__ if summary else None,
        }
    ),
    flush=True,
)
