"""A framework's own parameter names and layouts mapped onto the neutral state (harness.contract.mapping):
the mapping mistakes refused in one line naming the parameters, and the neutral state and AdamW's
moments carried through a transposing map by the generic Backend."""

import dataclasses

import numpy as np
import pytest

from harness.contract.backend import Backend
from harness.contract.config import RunConfig
from harness.contract.mapping import IDENTITY, ROW, TRANSPOSED, Layout, ParameterMap
from harness.contract.state import optimizer_state
from harness.families.gpt import FAMILY, init_state, state_shapes

NEUTRAL = {"embed.weight": (10, 4), "proj.weight": (3, 4), "proj.bias": (3,)}  # torch's Linear: (out, in)
# The same model as Keras would hold it: paths for names, Dense kernels (in, out).
KERAS = ParameterMap(
    name={"embed/embeddings": "embed.weight", "proj/kernel": "proj.weight", "proj/bias": "proj.bias"},
    layout={"proj.weight": TRANSPOSED},
)
KERAS_SHAPES = {"embed/embeddings": (10, 4), "proj/kernel": (4, 3), "proj/bias": (3,)}
# An LM head kept apart in Keras, (in, out), where the neutral state ties it to the embedding.
TIED = dataclasses.replace(KERAS, tied={"head/kernel": ("embed.weight", TRANSPOSED)})


def test_a_layout_round_trips_and_permutes_shapes():
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    layout = Layout((2, 0, 1))
    assert layout.framework_shape((2, 3, 4)) == (4, 2, 3) == layout.to_framework(array).shape
    assert np.array_equal(layout.to_neutral(layout.to_framework(array)), array)
    assert np.array_equal(TRANSPOSED.to_framework(array[0]), array[0].T) and IDENTITY.to_framework(array) is array
    # Size-1 axes inserted after the permutation: a bias kept as a row, a matrix as (in, 1, out).
    assert ROW.framework_shape((4,)) == (1, 4) == ROW.to_framework(array[0, 0]).shape
    assert ROW.neutral_shape((1, 4)) == (4,) and np.array_equal(
        ROW.to_neutral(ROW.to_framework(array[0, 0])), array[0, 0]
    )
    kept = Layout((1, 0), unit_axes=(1,))
    assert kept.framework_shape((3, 4)) == (4, 1, 3) == kept.to_framework(array[0]).shape
    assert kept.neutral_shape((4, 1, 3)) == (3, 4) and np.array_equal(
        kept.to_neutral(kept.to_framework(array[0])), array[0]
    )


def test_identity_and_a_keras_map_bind_every_parameter():
    assert ParameterMap().bind("m", NEUTRAL, NEUTRAL) == {name: (name, IDENTITY) for name in NEUTRAL}
    assert KERAS.bind("m", KERAS_SHAPES, NEUTRAL) == {
        "embed.weight": ("embed/embeddings", IDENTITY),
        "proj.weight": ("proj/kernel", TRANSPOSED),
        "proj.bias": ("proj/bias", IDENTITY),
    }
    # A rule instead of a table: Keras paths to torch's dotted names.
    rule = ParameterMap(
        name=lambda path: path.replace("/", ".").replace("kernel", "weight").replace("embeddings", "weight")
    )
    assert set(rule.bind("m", {**KERAS_SHAPES, "proj/kernel": (3, 4)}, NEUTRAL)) == set(NEUTRAL)


def test_a_tied_copy_is_written_with_its_tensor_and_its_gradient_added_to_it():
    own = {**KERAS_SHAPES, "head/kernel": (4, 10)}
    assert TIED.bind("m", own, NEUTRAL).keys() == NEUTRAL.keys()  # the copy holds no tensor of its own
    state = {name: np.random.default_rng(0).normal(size=shape).astype(np.float32) for name, shape in NEUTRAL.items()}
    arrays = TIED.to_framework("m", own, state)
    assert np.array_equal(arrays["head/kernel"], state["embed.weight"].T)
    assert TIED.to_neutral("m", arrays).keys() == NEUTRAL.keys()
    gradients = {name: np.ones(shape, np.float32) for name, shape in own.items()}
    summed = TIED.to_neutral("m", gradients, gradients=True)
    assert (summed["embed.weight"] == 2).all() and (summed["proj.bias"] == 1).all()


def test_a_fixed_parameter_is_no_part_of_the_neutral_state():
    fixed = dataclasses.replace(KERAS, fixed=("pos/embeddings",))
    own = {**KERAS_SHAPES, "pos/embeddings": (8, 4)}
    assert fixed.bind("m", own, NEUTRAL).keys() == NEUTRAL.keys()
    state = {name: np.ones(shape, np.float32) for name, shape in NEUTRAL.items()}
    assert "pos/embeddings" not in fixed.to_framework("m", own, state)  # never written
    arrays = {name: np.zeros(shape, np.float32) for name, shape in own.items()}
    assert fixed.to_neutral("m", arrays).keys() == NEUTRAL.keys()  # never read
    with pytest.raises(ValueError, match="parameters mapped to no neutral tensor: pos/embeddings"):
        KERAS.bind("m", own, NEUTRAL)  # undeclared, it is a mistake


@pytest.mark.parametrize(
    ("mapping", "own", "message"),
    [
        (KERAS, {**KERAS_SHAPES, "extra/kernel": (4, 4)}, "parameters mapped to no neutral tensor: extra/kernel"),
        (
            dataclasses.replace(KERAS, name={**KERAS.name, "proj/kernel_2": "proj.weight"}),
            {**KERAS_SHAPES, "proj/kernel_2": (4, 3)},
            "parameters mapped onto one tensor: proj/kernel and proj/kernel_2 -> proj.weight",
        ),
        (
            KERAS,
            {n: s for n, s in KERAS_SHAPES.items() if n != "proj/bias"},
            "neutral tensors no parameter holds: proj.bias",
        ),
        (
            ParameterMap(name=KERAS.name),
            KERAS_SHAPES,
            r"shapes that do not match: proj/kernel is \(4, 3\), proj.weight needs \(3, 4\)",
        ),
        (KERAS, {}, r"the tf model has no weights yet: build it \(call it once on an input\) before training"),
        (ParameterMap(name=lambda n: n + "x"), {"proj.bias": (3,)}, "no neutral tensor: proj.bias -> proj.biasx"),
        # Tied copies: one the model lacks, one of a tensor that does not exist, one of the wrong shape.
        (TIED, KERAS_SHAPES, "tied parameters the model does not have: head/kernel"),
        (
            dataclasses.replace(TIED, tied={"head/kernel": ("head.weight", TRANSPOSED)}),
            {**KERAS_SHAPES, "head/kernel": (4, 10)},
            "parameters mapped to no neutral tensor: head/kernel -> head.weight",
        ),
        (TIED, {**KERAS_SHAPES, "head/kernel": (10, 4)}, r"head/kernel is \(10, 4\), embed.weight needs \(4, 10\)"),
        (
            dataclasses.replace(KERAS, fixed=("pos/embeddings",)),
            KERAS_SHAPES,
            "fixed parameters the model does not have: pos/embeddings",
        ),
    ],
)
def test_a_mapping_mistake_is_refused_in_one_line_naming_the_parameters(mapping, own, message):
    with pytest.raises(ValueError, match=message) as refused:
        mapping.bind("the tf model", own, NEUTRAL)
    assert "\n" not in str(refused.value)


class NumpyBackend(Backend):
    """The generic Backend over numpy arrays held in the framework's own names and layouts."""

    def __init__(self, family, own: dict[str, np.ndarray]):
        super().__init__(family, RunConfig(model=family.preset("tiny")), dist=None)
        self.bind_parameters("tf", own, lambda array: array.shape)
        self.moments = {name: (np.zeros_like(p), np.zeros_like(p)) for name, p in self.parameters.items()}
        self.step = 0

    def _read(self, param):
        return param.copy()

    def _write(self, param, value):
        param[...] = value

    def _read_optimizer(self):
        return self.step, {n: (m.copy(), v.copy()) for n, (m, v) in self.moments.items()}

    def _write_optimizer(self, step, moments):
        self.step = step
        for name, (m, v) in moments.items():
            self.moments[name][0][...], self.moments[name][1][...] = m, v

    broadcast_initial_state = seed_step = train_step = eval_sums = predict = None


def test_the_backend_moves_the_neutral_state_and_moments_through_the_layouts():
    config = FAMILY.preset("tiny")
    # Every matrix stored transposed, under names of the framework's own (a "/" path).
    transposed = {n for n, shape in state_shapes(config).items() if len(shape) == 2}
    family = dataclasses.replace(
        FAMILY,
        parameter_maps={
            "tf": ParameterMap(name=lambda own: own.replace("/", "."), layout=dict.fromkeys(transposed, TRANSPOSED))
        },
    )
    own = {n.replace(".", "/"): np.zeros(TRANSPOSED.framework_shape(s) if n in transposed else s, np.float32)
           for n, s in state_shapes(config).items()}  # fmt: skip
    backend = NumpyBackend(family, own)
    state = init_state(config, 3)
    backend.import_model_state(state)
    assert np.array_equal(own["wte/weight"], state["wte.weight"].T)  # written in the framework's layout
    assert all(np.array_equal(a, state[n]) for n, a in backend.export_model_state().items())
    rng = np.random.default_rng(0)
    moments = {
        n: (rng.normal(size=s).astype(np.float32), rng.random(s).astype(np.float32))
        for n, s in state_shapes(config).items()
    }
    backend.import_optimizer_state(optimizer_state(7, moments))
    assert np.array_equal(backend.moments["wte.weight"][0], moments["wte.weight"][0].T)
    back = backend.export_optimizer_state()
    assert back["step"][0] == 7 and all(np.array_equal(back[f"exp_avg_sq.{n}"], v) for n, (_, v) in moments.items())
