"""`harness check-family` and harness.testing.check, the twin checks users run on their own pairs:
every row holds for the built-in families and the Keras pair, and each kind of disagreement planted
in a family (a different loss in one framework, a layout that loses bits, a TF model that computes
something else) fails its row, the table and the command's exit status."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from harness.contract.mapping import Layout, ParameterMap
from harness.families.bert import FAMILY as BERT
from harness.families.gpt import FAMILY as GPT
from harness.runner.config import build_run_config
from harness.testing.check import assert_family_agrees, check_family
from launch.cli import cli
from models_tf import ops as tf_ops

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keras_pair"
ROWS = [
    "logits",
    "loss",
    "gradients",
    "adamw step",
    "state round trip torch",
    "state round trip tf",
    "checkpoint torch -> tf",
    "checkpoint tf -> torch",
]


def shifted_loss(logits, targets, weights, label_smoothing):
    """TF's cross-entropy, one part in a thousand too large: a twin that disagrees in the loss."""
    return tf_ops.cross_entropy(logits, targets, weights, label_smoothing) * 1.001


class Rounded(Layout):
    """A layout that stores the tensor in bfloat16's precision: the state does not come back whole."""

    def to_framework(self, neutral: np.ndarray) -> np.ndarray:
        return tf.cast(tf.cast(neutral, tf.bfloat16), tf.float32).numpy()


class Shifted(GPT.implementation("tf")):
    """A TF GPT whose logits are off by 1e-3: a twin that computes something else."""

    def __call__(self, tokens, training=False):
        return super().__call__(tokens, training=training) + 1e-3


BAD_LOSS = dataclasses.replace(GPT, losses={"tf": f"{__name__}:shifted_loss"})


@pytest.mark.parametrize(("family", "preset"), [(GPT, "tiny"), (BERT, "tiny"), (BERT, "tiny-classify")])
def test_the_built_in_families_pass_every_check(family, preset):
    checks = assert_family_agrees(family, build_run_config(family, preset))
    assert [check.name for check in checks] == ROWS
    assert all(check.measured == 0 for check in checks[4:])  # the state moves bit for bit


def test_the_keras_pair_passes_every_check(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from keras_pair_family import FAMILY

    checks = assert_family_agrees(FAMILY, build_run_config(FAMILY, "tiny"))
    assert max(check.measured for check in checks[:4]) > 0  # two frameworks: rounding differs somewhere


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({"losses": BAD_LOSS.losses}, {"loss", "gradients"}),
        ({"parameter_maps": {"tf": ParameterMap(layout=lambda name: Rounded() if name == "wte.weight" else None)}},
         {"logits", "loss", "state round trip tf", "checkpoint torch -> tf"}),
        ({"tf_model": f"{__name__}:Shifted"}, {"logits"}),
    ],
)  # fmt: skip
def test_a_planted_disagreement_fails_its_rows(change, failing):
    family = dataclasses.replace(GPT, **change)
    checks = check_family(family, build_run_config(family, "tiny"))
    assert {check.name for check in checks if not check.passed} >= failing
    with pytest.raises(AssertionError, match="twins disagree"):
        assert_family_agrees(family, build_run_config(family, "tiny"))


def test_the_command_prints_the_table_and_exits_1_on_a_failing_row():
    passing = CliRunner().invoke(cli, ["check-family", "gpt", "--model", "tiny"])
    assert passing.exit_code == 0, passing.output
    assert all(f"{row} " in passing.output for row in ROWS) and "FAIL" not in passing.output
    failing = CliRunner().invoke(cli, ["check-family", f"{__name__}:BAD_LOSS", "--model", "tiny"])
    assert failing.exit_code == 1
    assert "FAIL" in failing.output
    assert failing.output.strip().splitlines()[-1] == "Error: gpt's twins miss the bound of: loss, gradients"


@pytest.mark.parametrize("variant", ["TORCH_COPY", "TF_COPY"])
def test_a_head_tied_in_one_framework_only_trains_as_one_tensor(variant):
    import gpt_tied_copies

    family = getattr(gpt_tied_copies, variant)
    checks = assert_family_agrees(family, build_run_config(family, "tiny"))
    assert [check.name for check in checks] == ROWS
