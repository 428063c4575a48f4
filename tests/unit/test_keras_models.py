"""A Keras 3 model on the TF side: its weights reach the harness as the tf.Variables Horovod needs,
named by Keras's paths, and a ParameterMap puts them in a torch model's names and layouts: the same
state gives the same outputs and the same gradients in both (one process, no Horovod), for a small
model here and for the Transformer pair of examples/keras_pair/."""

import importlib
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

from harness.contract.mapping import TRANSPOSED, ParameterMap
from harness.testing.gpt import batch
from harness.testing.twins import LOGITS_ATOL, LOSS_RTOL, assert_gradients_agree, family_twins, twin_results
from models_tf import ops as tf_ops
from models_torch import ops as torch_ops

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keras_pair"
VOCAB, WIDTH, CLASSES = 11, 8, 5
NEUTRAL = {"embed.weight": (VOCAB, WIDTH), "norm.weight": (WIDTH,), "norm.bias": (WIDTH,)}
NEUTRAL |= {"head.weight": (CLASSES, WIDTH), "head.bias": (CLASSES,)}  # torch's Linear: (out, in)
KERAS_MAP = ParameterMap(
    name={
        "embed/embeddings": "embed.weight",
        "norm/gamma": "norm.weight",
        "norm/beta": "norm.bias",
        "head/kernel": "head.weight",
        "head/bias": "head.bias",
    },
    layout={"head.weight": TRANSPOSED},  # Dense kernels are (in, out)
)


def keras_model() -> keras.Model:
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, WIDTH, name="embed")(tokens)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="norm")(x)
    return keras.Model(tokens, keras.layers.Dense(CLASSES, name="head")(x))


class TorchModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, WIDTH)
        self.norm = torch.nn.LayerNorm(WIDTH)
        self.head = torch.nn.Linear(WIDTH, CLASSES)

    def forward(self, tokens):
        return self.head(self.norm(self.embed(tokens)))


def test_a_keras_model_gives_its_weights_as_tf_variables_by_path():
    model = keras_model()
    named = list(tf_ops.named_parameters(model))
    assert [name for name, _ in named] == ["embed/embeddings", "norm/gamma", "norm/beta", "head/kernel", "head/bias"]
    assert all(type(v).__module__.startswith("tensorflow") and isinstance(v, tf.Variable) for _, v in named)
    tokens = np.zeros((1, 2), np.int32)
    before = model(tokens).numpy()
    tf_ops.write(dict(named)["head/bias"], np.full(CLASSES, 3.0, np.float32))  # Dense's bias starts at 0
    np.testing.assert_allclose(model(tokens).numpy(), before + 3.0, rtol=0, atol=1e-6)  # the model computes with it


def test_the_same_neutral_state_gives_the_same_outputs_and_gradients_through_the_map():
    rng = np.random.default_rng(0)
    state = {name: rng.normal(0, 0.5, shape).astype(np.float32) for name, shape in NEUTRAL.items()}
    tokens = rng.integers(0, VOCAB, (3, 7))
    targets = rng.integers(0, CLASSES, (3, 7))

    pt, km = TorchModel(), keras_model()
    torch_ops.import_state(pt, state)
    tf_ops.import_state(km, state, KERAS_MAP)  # Keras's names and kernels through the map
    pt_loss = torch_ops.cross_entropy(pt(torch.from_numpy(tokens)), torch.from_numpy(targets))
    pt_loss.backward()
    names, variables = zip(*tf_ops.named_parameters(km), strict=True)
    with tf.GradientTape() as tape:
        tf_loss = tf_ops.cross_entropy(km(tokens.astype(np.int32)), tf.constant(targets))
    grads = (tf.convert_to_tensor(g).numpy() for g in tape.gradient(tf_loss, variables))
    tf_grads = KERAS_MAP.to_neutral("the keras model", dict(zip(names, grads, strict=True)))

    assert abs(pt_loss.item() - float(tf_loss)) <= 1e-6 * pt_loss.item()
    assert tf_grads.keys() == NEUTRAL.keys()
    for name, p in pt.named_parameters():
        assert np.max(np.abs(tf_grads[name] - p.grad.numpy())) <= 1e-5 * np.linalg.norm(p.grad.numpy()), name


def test_a_keras_model_not_built_yet_is_refused():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.head = keras.layers.Dense(CLASSES)

        def call(self, x):
            return self.head(x)

    own = dict(tf_ops.named_parameters(Subclassed()))
    with pytest.raises(ValueError, match="the tf model has no weights yet: build it"):
        KERAS_MAP.bind("the tf model", own, NEUTRAL)


@pytest.fixture
def keras_pair(monkeypatch):
    """The example family, imported from its directory as a user's own code is."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    return importlib.import_module("keras_pair_family").FAMILY


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_the_example_pair_agrees_in_logits_loss_and_gradients_through_its_map(keras_pair, preset):
    config = keras_pair.preset(preset)
    pt, tfm = family_twins(keras_pair, config)
    x, y = batch(config)
    inputs = keras_pair.task(config).model_inputs(x)  # named: input_ids, attention_mask
    inputs["attention_mask"][0, -3:] = 0  # padding at the end of one row: its keys are masked out
    names = keras_pair.state_shapes(config)
    results = assert_gradients_agree(pt, tfm, names, inputs, y, family=keras_pair)
    (pt_logits, pt_loss, _), (tf_logits, tf_loss, _) = results
    assert np.max(np.abs(pt_logits - tf_logits)) <= LOGITS_ATOL  # measured: 4.2e-7 at worst over 5 states (default)
    assert abs(pt_loss - tf_loss) / pt_loss <= LOSS_RTOL
    # The family's own loss, not plain cross-entropy: its z-loss term is there in both.
    plain = torch_ops.cross_entropy(torch.from_numpy(pt_logits), torch.from_numpy(y)).item()
    z_loss = 1e-4 * np.mean(np.log(np.exp(pt_logits.astype(np.float64)).sum(-1)) ** 2)
    assert pt_loss == pytest.approx(plain + z_loss, rel=1e-6) and z_loss > 1e-5 * plain
    # The padding mask reaches the models: the padded row's logits change where it is unmasked.
    unmasked = keras_pair.task(config).model_inputs(x)
    (pt_full, _, _), _ = twin_results(pt, tfm, unmasked, y, family=keras_pair)
    assert not np.allclose(pt_full[0, -3:], pt_logits[0, -3:]) and np.array_equal(pt_full[1:], pt_logits[1:])
    # The state comes back out of the Keras model as it went in: names and layouts mapped both ways.
    back = tf_ops.export_state(tfm, keras_pair.parameter_map("tf"))
    initial = keras_pair.init_state(config, 0)
    assert back.keys() == initial.keys() and all(np.array_equal(back[n], initial[n]) for n in initial)
