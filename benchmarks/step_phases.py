"""Where one rank's step time goes, per framework: the forward pass and forward + backward of the
GPT twin on one thread, no Horovod (and in TF, the same with XLA's jit_compile).

``both``: the torch and the TF twin's forward + backward in one process, taking turns pass by pass,
and TF / torch. Separate processes running the same pass differ here by more than the few percent
looked for (TF's pass 0.199-0.216 s in five processes); in one process the ratio repeats within 1 %.

Usage: step_phases.py torch|tf|both [MODEL] [BATCH]. Prints one JSON line of median seconds.
"""

import json
import os
import sys
from functools import partial

import numpy as np
from loops import random_batch, time_steps
from twin_passes import tf_passes, torch_passes

from harness.families.gpt import FAMILY
from launch.bench import take_turns

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def median_seconds(run, repeats: int = 15, warmup: int = 2) -> float:
    """Median seconds of ``run`` over ``repeats`` calls after ``warmup`` (tracing, allocation)."""
    return float(np.median(time_steps(run, warmup + repeats)[warmup:]))


def torch_phases(config, inputs, targets) -> dict:
    forward, forward_backward = torch_passes(config, inputs, targets)
    return {"forward": median_seconds(forward), "forward_backward": median_seconds(forward_backward)}


def tf_phases(config, inputs, targets) -> dict:
    phases = {}
    for suffix, jit in (("", False), ("_xla", True)):
        forward, forward_backward = tf_passes(config, inputs, targets, jit_compile=jit)
        phases[f"forward{suffix}"] = median_seconds(forward)
        phases[f"forward_backward{suffix}"] = median_seconds(forward_backward)
    return phases


def both_in_turn(config, inputs, targets, rounds: int = 40) -> dict:
    """Median forward + backward seconds of each twin, the two taking turns (order swapped each round)."""
    passes = {"torch": torch_passes(config, inputs, targets)[1], "tf": tf_passes(config, inputs, targets)[1]}
    for run in passes.values():
        time_steps(run, 2)  # warm-up: tracing, allocation
    times = take_turns({name: partial(time_steps, run, 1) for name, run in passes.items()}, rounds)
    medians = {f"forward_backward_{name}": float(np.median(seconds)) for name, seconds in times.items()}
    return {**medians, "tf_over_torch": medians["forward_backward_tf"] / medians["forward_backward_torch"]}


if __name__ == "__main__":
    framework = sys.argv[1]
    model_name = sys.argv[2] if len(sys.argv) > 2 else "default"
    batch_size = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    config = FAMILY.preset(model_name)
    batch = random_batch(config.vocab_size, batch_size, config.block_size, rank=0)
    phases = {"torch": torch_phases, "tf": tf_phases, "both": both_in_turn}[framework](config, *batch)
    print(json.dumps({"framework": framework, "model": model_name, "batch_size": batch_size, **phases}))
