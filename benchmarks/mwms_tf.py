"""The minimal TF loop with tf.distribute.MultiWorkerMirroredStrategy in place of Horovod: the peer a
TensorFlow user would pick instead. Same model, batch, AdamW and clipping as benchmarks/minimal_tf.py.

Usage: mwms_tf.py NUM_WORKERS FAMILY MODEL BATCH_PER_RANK STEPS. It starts the workers itself on this
machine (one process each, TF_CONFIG naming them all); worker 0 prints one JSON line:
{"step_times": [...]}.

The gradients travel through the strategy's collective all-reduce (ring, TF's own gRPC collectives),
averaged in the replica context as Keras' optimizers do it under this strategy. The variables are
created outside the strategy's scope, so each worker updates its own copy (the same on every
worker: same initial state, same averaged gradients), as a Horovod rank does.
"""

import json
import os
import socket
import subprocess
import sys


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def launch(num_workers: int, args: list[str]) -> None:
    """Start ``num_workers`` workers of this script; forward worker 0's output; fail if any fails."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(num_workers)]}
    workers = []
    for index in range(num_workers):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(config)}
        output = None if index == 0 else subprocess.DEVNULL
        workers.append(subprocess.Popen([sys.executable, __file__, *args], env=env, stdout=output))
    codes = [worker.wait() for worker in workers]
    if any(codes):
        sys.exit(f"mwms_tf: worker exit codes {codes}")


def train(family_spec: str, model_name: str, batch_size: int, steps: int) -> None:
    from loops import family_batch, report, time_steps

    from harness.contract.config import TrainConfig
    from harness.contract.family import load_family
    from harness.contract.task import map_inputs

    family = load_family(family_spec)
    family.enter_environment()  # before TensorFlow loads (a tf-keras family's TF_USE_LEGACY_KERAS)
    import tensorflow as tf

    from models_tf.adamw import AdamW
    from models_tf.ops import call, cross_entropy, import_state, named_parameters

    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING
        )
    )
    rank = strategy.cluster_resolver.task_id
    config = family.preset(model_name)
    model = family.implementation("tf")(config)
    import_state(model, family.init_state(config, seed=0), family.parameter_map("tf"))
    named = dict(named_parameters(model))
    optimizer = AdamW(named, family.decayed(config), TrainConfig())

    def replica_step(inputs, targets):
        with tf.GradientTape() as tape:
            loss = cross_entropy(family.logits_of(call(model, inputs, training=True)), targets)
        # Embedding gradients densified for one all-reduce, as the harness and the minimal loop do.
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, list(named.values()))]
        # MultiWorkerMirroredStrategy: average gradients across workers.
        grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.MEAN, grads)
        grads, _ = tf.clip_by_global_norm(grads, 1.0)
        optimizer.apply(dict(zip(named, grads, strict=True)), named, tf.constant(1e-3))
        return loss

    @tf.function
    def train_step(inputs, targets):
        return strategy.run(replica_step, args=(inputs, targets))

    inputs, targets = family_batch(family, config, batch_size, rank)
    inputs, targets = map_inputs(tf.constant, inputs), tf.constant(targets)
    times = time_steps(lambda: float(train_step(inputs, targets)), steps)  # float(): wait for the step
    report(times, rank == 0)


if __name__ == "__main__":
    if "TF_CONFIG" in os.environ:
        train(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        launch(int(sys.argv[1]), sys.argv[2:])
