"""One rank of `harness train` with a fault injected: the failures the tests provoke on purpose.

usage: faults.py KIND AT [MARKER] -- HARNESS_TRAIN_ARGS...
  nan AT            rank 1's loss is NaN at step AT (1-based)
  stuck AT          rank 1's main thread stops at step AT (its Horovod thread keeps running)
  slow-write AT M   rank 0 stops for good halfway through writing checkpoint AT, after writing
                    its own pid to the file M (so the test can SIGKILL it mid-write)
"""

import math
import os
import sys
import time
from pathlib import Path

from harness import checkpoint, train
from harness.frameworks import framework_module
from launch.cli import main

split = sys.argv.index("--")
kind, at, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3:split]
harness_args = sys.argv[split + 1 :]
framework = harness_args[harness_args.index("--framework") + 1]
rank = int(os.environ["HOROVOD_RANK"])
on_step = []  # callbacks run with the 1-based step number just before each training step

if kind == "nan":
    backend = framework_module(framework, "backend")
    real_loss_fn = backend.loss_fn
    if framework == "tf":
        import tensorflow as tf

        factor = []  # a tf.Variable, read inside the traced step so it can change per call; made
        # at the first step, after the harness has configured TF's threads

        def set_factor(step: int) -> None:
            value = math.nan if (step, rank) == (at, 1) else 1.0
            factor[0].assign(value) if factor else factor.append(tf.Variable(value))

        on_step.append(set_factor)
        backend.loss_fn = lambda logits, targets: real_loss_fn(logits, targets) * factor[0]
    else:
        factors = [1.0]
        on_step.append(lambda step: factors.__setitem__(0, math.nan if (step, rank) == (at, 1) else 1.0))
        backend.loss_fn = lambda logits, targets: real_loss_fn(logits, targets) * factors[0]
elif kind == "stuck":
    on_step.append(lambda step: time.sleep(3600) if (step, rank) == (at, 1) else None)
elif kind == "slow-write":
    real_save_state = checkpoint.save_state

    def save_state(path: Path, state) -> None:
        real_save_state(path, state)
        if path.parent.name.startswith(f".step_{at}.tmp") and path.name == "model.safetensors":
            Path(extra[0]).write_text(str(os.getpid()))
            time.sleep(3600)

    checkpoint.save_state = save_state
else:
    raise SystemExit(f"unknown fault {kind!r}")

real_step_seed = train.step_seed


def step_seed(seed: int, step: int, rank_: int) -> int:
    for callback in on_step:
        callback(step + 1)
    return real_step_seed(seed, step, rank_)


train.step_seed = step_seed
sys.argv = ["harness", *harness_args]
main()
