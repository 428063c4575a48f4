"""A 2-rank sanity check of one framework's Horovod binding: ``python -m launch.smoke torch``."""

import sys

import numpy as np

from harness.contract.frameworks import framework_module


def main(framework: str) -> None:
    dist = framework_module(framework, "distributed").init_distributed()
    # Horovod: every rank contributes rank + 1; the mean is (size + 1) / 2 everywhere.
    mean = dist.allreduce_mean(np.array([dist.rank + 1.0], dtype=np.float32), name="smoke")
    expected = (dist.size + 1) / 2
    if not np.isclose(mean[0], expected):
        sys.exit(f"smoke: rank {dist.rank} got allreduce mean {mean[0]}, expected {expected}")
    if dist.is_main_process:
        print(f"smoke: {framework} on {dist.size} ranks: allreduce mean {mean[0]:g} (expected {expected:g}) ok")


if __name__ == "__main__":
    main(sys.argv[1])
