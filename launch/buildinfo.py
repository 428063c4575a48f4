"""What one framework's Horovod extension was built with, and the framework's CUDA build and GPUs:
``python -m launch.buildinfo torch``.

Runs in its own process (one framework per process) and prints one JSON object.
"""

import importlib
import json
import sys

from harness.contract.frameworks import framework_module

FEATURES = ("gloo", "mpi", "nccl", "ccl", "ddl", "cuda", "rocm")


def main(framework: str) -> None:
    distributed = framework_module(framework, "distributed")
    try:
        hvd = importlib.import_module(distributed.HOROVOD_BINDING)
    except ImportError as err:
        print(json.dumps({"available": False, "error": str(err).splitlines()[0]}))
        return
    built = {f: bool(getattr(hvd, f"{f}_built")()) for f in FEATURES}
    print(json.dumps({"available": True, **built, **distributed.gpu_info()}))


if __name__ == "__main__":
    main(sys.argv[1])
