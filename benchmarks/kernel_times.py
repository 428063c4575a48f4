"""The twins' LayerNorm and GELU on a preset's shapes, one thread: torch's F.layer_norm and F.gelu
against the TF twins' kernels (models_tf/kernels.py), forward alone and forward + backward with
every output and gradient used. Each figure is the fastest of 30 timings of 10 calls (in a traced
graph for TF), in milliseconds a call.

Usage: kernel_times.py torch|tf [MODEL] [BATCH]  (default: default 16). Prints one JSON line.
"""

import json
import os
import sys

import numpy as np
from loops import time_steps

from harness.families.gpt import FAMILY

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
CALLS = 10  # calls a timing
TIMINGS = 30


def fastest_ms(run) -> float:
    """Milliseconds a call: the fastest of TIMINGS runs of ``run`` (CALLS calls each), after two."""
    return min(time_steps(run, TIMINGS + 2)[2:]) * 1e3 / CALLS


def torch_kernel(kernel, inputs: list, upstream) -> dict[str, float]:
    """``kernel`` (of inputs[0], its parameters inputs[1:]) timed forward, and forward + backward."""
    import torch

    def forward():
        with torch.no_grad():
            for _ in range(CALLS):
                kernel(inputs[0])

    def forward_backward():
        for _ in range(CALLS):
            kernel(inputs[0]).backward(upstream)  # every input's gradient accumulated

    return {"forward": fastest_ms(forward), "forward_backward": fastest_ms(forward_backward)}


def torch_times(shapes: dict[str, tuple[int, ...]]) -> dict[str, dict[str, float]]:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    ln_shape, gelu_shape = shapes["layer_norm"], shapes["gelu"]

    def normal(shape):
        return torch.randn(shape, generator=generator, requires_grad=True)

    ln_inputs = [normal(ln_shape), normal(ln_shape[-1:]), normal(ln_shape[-1:])]
    return {
        "layer_norm": torch_kernel(
            lambda x: F.layer_norm(x, ln_shape[-1:], *ln_inputs[1:], 1e-5), ln_inputs, torch.randn(ln_shape)
        ),
        "gelu": torch_kernel(F.gelu, [normal(gelu_shape)], torch.randn(gelu_shape)),
    }


def tf_kernel(kernel, inputs: list, upstream) -> dict[str, float]:
    """``kernel`` (of inputs[0], its parameters inputs[1:]) timed forward, and forward + backward,
    every output and gradient used (none pruned from the graph)."""
    import tensorflow as tf

    @tf.function
    def forward():
        return tf.add_n([tf.reduce_sum(kernel(inputs[0])[..., 0]) for _ in range(CALLS)])

    @tf.function
    def forward_backward():
        used = []
        for _ in range(CALLS):
            with tf.GradientTape() as tape:
                y = kernel(inputs[0])
            grads = tape.gradient(y, inputs, output_gradients=upstream)
            used.append(tf.reduce_sum(y[..., 0]) + tf.add_n([tf.reduce_sum(g[..., 0]) for g in grads]))
        return tf.add_n(used)

    return {
        "forward": fastest_ms(lambda: forward().numpy()),
        "forward_backward": fastest_ms(lambda: forward_backward().numpy()),
    }


def tf_times(shapes: dict[str, tuple[int, ...]]) -> dict[str, dict[str, float]]:
    import tensorflow as tf

    from models_tf import kernels

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rng = np.random.default_rng(0)

    def normal(shape):  # a variable: a constant's kernels would be folded away when the graph is optimised
        return tf.Variable(rng.standard_normal(shape), dtype=tf.float32)

    ln_shape, gelu_shape = shapes["layer_norm"], shapes["gelu"]
    ln_inputs = [normal(ln_shape), normal(ln_shape[-1:]), normal(ln_shape[-1:])]
    return {
        "layer_norm": tf_kernel(lambda x: kernels.layer_norm(x, *ln_inputs[1:], 1e-5), ln_inputs, normal(ln_shape)),
        "gelu": tf_kernel(kernels.gelu, [normal(gelu_shape)], normal(gelu_shape)),
    }


if __name__ == "__main__":
    framework = sys.argv[1]
    config = FAMILY.preset(sys.argv[2] if len(sys.argv) > 2 else "default")
    batch_size = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    shapes = {
        "layer_norm": (batch_size, config.block_size, config.n_embd),
        "gelu": (batch_size, config.block_size, config.mlp_hidden),
    }
    times = (torch_times if framework == "torch" else tf_times)(shapes)
    flat = {f"{name}_{phase}": round(ms, 3) for name, phases in times.items() for phase, ms in phases.items()}
    print(json.dumps({"framework": framework, "ms_per_call": flat}))
