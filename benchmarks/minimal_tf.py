"""The smallest honest Horovod training loop for the twin model in TensorFlow: the harness's speed reference.

Same model, batch, AdamW and clipping as the harness, none of its plumbing (data order, metrics,
loss allreduce, checkpoints). Usage (any np): minimal_tf.py MODEL BATCH_PER_RANK STEPS.
Rank 0 prints one JSON line: {"step_times": [...]}.
"""

import sys

import horovod.tensorflow as hvd
import tensorflow as tf
from loops import random_batch, report, time_steps

from harness.contract.config import TrainConfig
from harness.families.gpt import FAMILY, init_state
from models_tf.adamw import AdamW
from models_tf.gpt import TransformerLM
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


inputs, targets = (tf.constant(a) for a in random_batch(config.vocab_size, batch_size, config.block_size, hvd.rank()))
report(time_steps(lambda: float(train_step(inputs, targets)), steps), hvd.rank() == 0)  # float(): wait for the step
