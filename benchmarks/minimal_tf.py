"""The smallest honest Horovod training loop for the twin model in TensorFlow: the harness's speed reference.

Same model, batch, AdamW and clipping as the harness, none of its plumbing (data order, metrics,
loss allreduce, checkpoints). Usage (any np): minimal_tf.py MODEL BATCH_PER_RANK STEPS.
Rank 0 prints one JSON line: {"step_times": [...]}.
"""

import json
import sys
import time

import horovod.tensorflow as hvd
import numpy as np
import tensorflow as tf

from harness.config import TrainConfig
from harness.gpt import FAMILY, init_state
from models_tf.backend import AdamW
from models_tf.model import TransformerLM
from models_tf.ops import cross_entropy, import_state, named_parameters

model_name, batch_size, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hvd.init()
config = FAMILY.preset(model_name)
model = TransformerLM(config)
import_state(model, init_state(config, seed=0))
named = dict(named_parameters(model))
optimizer = AdamW(named, FAMILY.decayed(config), TrainConfig())
# Horovod: start from rank 0's weights.
hvd.broadcast_variables(list(named.values()), root_rank=0)


@tf.function
def train_step(inputs, targets):
    with tf.GradientTape() as tape:
        loss = cross_entropy(model(inputs, training=True), targets)
    # Horovod: average gradients across ranks.
    tape = hvd.DistributedGradientTape(tape, sparse_as_dense=True)
    grads, _ = tf.clip_by_global_norm(tape.gradient(loss, list(named.values())), 1.0)
    optimizer.apply(dict(zip(named, grads, strict=True)), named, tf.constant(1e-3))
    return loss


rng = np.random.default_rng(hvd.rank())
tokens = tf.constant(rng.integers(0, config.vocab_size, (batch_size, config.block_size + 1)))
inputs, targets = tokens[:, :-1], tokens[:, 1:]
times = []
for _ in range(steps):
    began = time.perf_counter()
    float(train_step(inputs, targets))  # block until the step is done
    times.append(time.perf_counter() - began)
if hvd.rank() == 0:
    print(json.dumps({"step_times": times}), flush=True)
