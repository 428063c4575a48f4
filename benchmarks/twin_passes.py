"""One rank's passes of the GPT twin on one thread, with no Horovod, for the profiling scripts
(step_phases.py, op_profile.py): the same model, weights and batch in either framework."""

from collections.abc import Callable

from harness.families.gpt import GPTConfig, init_state

Pass = Callable[[], object]


def torch_passes(config: GPTConfig, inputs, targets) -> tuple[Pass, Pass]:
    """(forward, forward + backward) of the torch twin; each returns once its pass is done."""
    import torch

    from models_torch.gpt import TransformerLM
    from models_torch.ops import cross_entropy, import_state

    torch.set_num_threads(1)
    model = TransformerLM(config)
    import_state(model, init_state(config, seed=0))
    inputs, targets = torch.from_numpy(inputs), torch.from_numpy(targets)

    def forward():
        with torch.no_grad():
            return float(cross_entropy(model(inputs), targets))

    def forward_backward():
        model.zero_grad()
        cross_entropy(model(inputs), targets).backward()

    return forward, forward_backward


def tf_passes(config: GPTConfig, inputs, targets, jit_compile: bool = False) -> tuple[Pass, Pass]:
    """(forward, forward + backward) of the TF twin, each a tf.function (all of it XLA-compiled
    with ``jit_compile``); each returns once its pass is done."""
    import tensorflow as tf

    from models_tf.gpt import TransformerLM
    from models_tf.ops import cross_entropy, import_state, named_parameters

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = TransformerLM(config)
    import_state(model, init_state(config, seed=0))
    variables = [v for _, v in named_parameters(model)]
    inputs, targets = tf.constant(inputs), tf.constant(targets)

    @tf.function(jit_compile=jit_compile)
    def loss():
        return cross_entropy(model(inputs, training=True), targets)

    @tf.function(jit_compile=jit_compile)
    def gradients():
        with tf.GradientTape() as tape:
            value = cross_entropy(model(inputs, training=True), targets)
        return tape.gradient(value, variables)

    return (lambda: float(loss())), (lambda: gradients()[0].numpy())
