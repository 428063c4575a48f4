"""Where one rank's step time goes, per framework: the forward pass and forward + backward of the
GPT twin on one thread, no Horovod (and in TF, the same with XLA's jit_compile).

Usage: step_phases.py torch|tf [MODEL] [BATCH]. Prints one JSON line of median seconds.
"""

import json
import os
import sys

import numpy as np
from loops import random_batch, time_steps

from harness.gpt import FAMILY, init_state

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def median_seconds(run, repeats: int = 15, warmup: int = 2) -> float:
    """Median seconds of ``run`` over ``repeats`` calls after ``warmup`` (tracing, allocation)."""
    return float(np.median(time_steps(run, warmup + repeats)[warmup:]))


def torch_phases(config, inputs, targets) -> dict:
    import torch

    from models_torch.model import TransformerLM
    from models_torch.ops import cross_entropy, import_state

    torch.set_num_threads(1)
    model = TransformerLM(config)
    import_state(model, init_state(config, seed=0))
    inputs, targets = torch.from_numpy(inputs), torch.from_numpy(targets)

    def forward_backward():
        model.zero_grad()
        cross_entropy(model(inputs), targets).backward()

    with torch.no_grad():
        forward = median_seconds(lambda: float(cross_entropy(model(inputs), targets)))
    return {"forward": forward, "forward_backward": median_seconds(forward_backward)}


def tf_phases(config, inputs, targets) -> dict:
    import tensorflow as tf

    from models_tf.model import TransformerLM
    from models_tf.ops import cross_entropy, import_state, named_parameters

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = TransformerLM(config)
    import_state(model, init_state(config, seed=0))
    variables = [v for _, v in named_parameters(model)]
    inputs, targets = tf.constant(inputs), tf.constant(targets)

    def gradients():
        with tf.GradientTape() as tape:
            loss = cross_entropy(model(inputs, training=True), targets)
        return tape.gradient(loss, variables)

    phases = {}
    for suffix, jit in (("", False), ("_xla", True)):
        forward = tf.function(lambda: cross_entropy(model(inputs, training=True), targets), jit_compile=jit)
        backward = tf.function(gradients, jit_compile=jit)
        phases[f"forward{suffix}"] = median_seconds(lambda f=forward: float(f()))
        phases[f"forward_backward{suffix}"] = median_seconds(lambda b=backward: b()[0].numpy())
    return phases


if __name__ == "__main__":
    framework = sys.argv[1]
    model_name = sys.argv[2] if len(sys.argv) > 2 else "default"
    batch_size = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    config = FAMILY.preset(model_name)
    batch = random_batch(config.vocab_size, batch_size, config.block_size, rank=0)
    phases = (torch_phases if framework == "torch" else tf_phases)(config, *batch)
    print(json.dumps({"framework": framework, "model": model_name, "batch_size": batch_size, **phases}))
