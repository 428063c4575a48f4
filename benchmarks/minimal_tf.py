"""The smallest honest Horovod training loop for the twin model in TensorFlow: the harness's speed reference.

Same model, batch, AdamW and clipping as the harness, none of its plumbing (data order, metrics,
loss allreduce, checkpoints). Usage (any np): minimal_tf.py FAMILY MODEL BATCH_PER_RANK STEPS, as minimal_torch.py.
Rank 0 prints one JSON line: {"step_times": [...]}.
"""

import sys

from loops import family_batch, report, time_steps

from harness.contract.config import TrainConfig
from harness.contract.family import load_family
from harness.contract.task import map_inputs

family, model_name, batch_size, steps = load_family(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
family.enter_environment()  # before TensorFlow loads (a tf-keras family's TF_USE_LEGACY_KERAS)

import horovod.tensorflow as hvd  # noqa: E402
import tensorflow as tf  # noqa: E402

from models_tf.adamw import AdamW  # noqa: E402
from models_tf.ops import call, cross_entropy, import_state, named_parameters  # noqa: E402

hvd.init()
config = family.preset(model_name)
model = family.implementation("tf")(config)
import_state(model, family.init_state(config, seed=0), family.parameter_map("tf"))
named = dict(named_parameters(model))
optimizer = AdamW(named, family.decayed(config), TrainConfig())
# Horovod: start from rank 0's weights.
hvd.broadcast_variables(list(named.values()), root_rank=0)


@tf.function
def train_step(inputs, targets):
    with tf.GradientTape() as tape:
        loss = cross_entropy(family.logits_of(call(model, inputs, training=True)), targets)
    # Horovod: average gradients across ranks.
    tape = hvd.DistributedGradientTape(tape, sparse_as_dense=True)
    grads, _ = tf.clip_by_global_norm(tape.gradient(loss, list(named.values())), 1.0)
    optimizer.apply(dict(zip(named, grads, strict=True)), named, tf.constant(1e-3))
    return loss


inputs, targets = family_batch(family, config, batch_size, hvd.rank())
inputs, targets = map_inputs(tf.constant, inputs), tf.constant(targets)
report(time_steps(lambda: float(train_step(inputs, targets)), steps), hvd.rank() == 0)  # float(): wait for the step
