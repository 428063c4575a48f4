"""What one framework's Horovod extension was built with: ``python -m launch.buildinfo torch``.

Runs in its own process (one framework per process) and prints one JSON object.
"""

import importlib
import json
import sys

from harness.contract.frameworks import framework_module

FEATURES = ("gloo", "mpi", "nccl", "ccl", "ddl", "cuda", "rocm")


def main(framework: str) -> None:
    try:
        hvd = importlib.import_module(framework_module(framework, "distributed").HOROVOD_BINDING)
    except ImportError as err:
        print(json.dumps({"available": False, "error": str(err).splitlines()[0]}))
        return
    print(json.dumps({"available": True, **{f: bool(getattr(hvd, f"{f}_built")()) for f in FEATURES}}))


if __name__ == "__main__":
    main(sys.argv[1])
