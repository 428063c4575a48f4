"""Where one forward + backward pass of the GPT twin spends its time, per kernel type, on one thread
with no Horovod: torch's profiler for torch, TF's profiler (read from its XPlane trace) for TF.

usage: op_profile.py torch|tf [MODEL] [BATCH] [TOP]     (default: default 16 25)

Prints one line per kernel type, milliseconds per pass (self time, summed over its calls), the
largest first, then the total. XLA-compiled functions (models_tf/kernels.py) appear as one line.
"""

import collections
import os
import sys
import tempfile
from pathlib import Path

from loops import random_batch
from twin_passes import tf_passes, torch_passes

from harness.families.gpt import FAMILY

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PASSES = 5  # profiled passes, after WARMUP untimed ones
WARMUP = 3


def torch_kernel_times(config, inputs, targets) -> dict[str, float]:
    import torch

    _, forward_backward = torch_passes(config, inputs, targets)
    for _ in range(WARMUP):
        forward_backward()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        for _ in range(PASSES):
            forward_backward()
    return {event.key: event.self_cpu_time_total / 1e3 / PASSES for event in profile.key_averages()}


def tf_kernel_times(config, inputs, targets) -> dict[str, float]:
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    _, forward_backward = tf_passes(config, inputs, targets)
    for _ in range(WARMUP):
        forward_backward()
    with tempfile.TemporaryDirectory() as log_dir:
        tf.profiler.experimental.start(log_dir)
        for _ in range(PASSES):
            forward_backward()
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace.FromString(next(Path(log_dir).rglob("*.xplane.pb")).read_bytes())
    times = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):  # the executor's thread: one event per kernel
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name == "CpuExecutable::ExecuteAsyncOnStream":  # one run of an XLA-compiled function
                    kind = "XLA-compiled functions"
                elif ":" in name and "::" not in name:  # "node name:kernel type"; "::" marks the executor's own
                    kind = name.rsplit(":", 1)[1]
                else:
                    continue
                times[kind] += event.duration_ps / 1e9 / PASSES
    return dict(times)


if __name__ == "__main__":
    framework = sys.argv[1]
    model_name = sys.argv[2] if len(sys.argv) > 2 else "default"
    batch_size = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    config = FAMILY.preset(model_name)
    batch = random_batch(config.vocab_size, batch_size, config.block_size, rank=0)
    times = (torch_kernel_times if framework == "torch" else tf_kernel_times)(config, *batch)
    print(f"{framework}, model {model_name}, batch {batch_size}: ms per forward + backward, by kernel")
    for name, ms in sorted(times.items(), key=lambda item: -item[1])[:top]:
        print(f"{ms:9.2f}  {name}")
    print(f"{sum(times.values()):9.2f}  total")
