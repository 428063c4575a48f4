"""A Keras 3 model on the TF side, paired with a torch model of torch's own layers (examples/keras_pair/):
Horovod broadcasts and reduces the tf.Variables inside Keras's variables, the two frameworks train
alike through the family's parameter map, 2 ranks each, and a map that does not fit is refused
before anything is written."""

import json
import os
import shutil
import textwrap
from pathlib import Path

import pytest
from horovod_job import harness_cli, harness_train, run_job

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keras_pair"
FAMILY = "keras_pair_family:FAMILY"
STEPS = 30


@pytest.fixture
def user_code(tmp_path, monkeypatch):
    """The example's modules in a directory of their own, on PYTHONPATH for every rank."""
    root = tmp_path / "user_code"
    shutil.copytree(EXAMPLE, root)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    return root


def test_keras_replicas_start_apart_and_agree_after_broadcast_and_training(user_code, tmp_path):
    first = run_job("replicas.py", "tf", str(tmp_path / "runs"), FAMILY).results()[0]
    assert len(set(first["weights_before_broadcast"])) == 2  # each rank from its own seed
    assert len(set(first["weights_after_broadcast"])) == 1
    assert first["weights_after_broadcast"][0] == first["weights_before_broadcast"][0]  # rank 0's won
    assert len(set(first["optimizer_after_broadcast"])) == 1
    assert len(set(first["summary"]["weights_sha256_per_rank"])) == 1  # and after 20 steps of the tape


def test_the_keras_pair_trains_alike_in_both_frameworks(user_code, tmp_path):
    out = tmp_path / "parity"
    harness_cli("parity", "--family", FAMILY, "--np", "2", "--steps", str(STEPS), "--out", str(out))
    report = json.loads((out / "parity.json").read_text())
    assert report["max_rel_loss_diff"] <= 2e-6, report["rel_loss_diff"]
    assert report["loss_torch"][-1] < report["loss_torch"][0] - 1.0  # it learned
    for framework in ("torch", "tf"):
        summary = json.loads((out / framework / "summary.json").read_text())
        assert len(set(summary["weights_sha256_per_rank"])) == 1
    print(f"keras pair, 2 ranks, {STEPS} steps: max relative loss difference {report['max_rel_loss_diff']:.2e}")


# The example family with each kind of mapping mistake, as a user's module beside it.
MISTAKES = textwrap.dedent(
    """
    import dataclasses

    from harness.contract.mapping import ParameterMap
    from keras_pair_family import FAMILY, keras_layout, keras_name


    def unbuilt(config, compute_dtype=None):
        import keras  # in the TF process only, as a family's models are

        return keras.Sequential([keras.layers.Dense(4)])  # never called: no weights yet


    def name_without(skipped):
        return lambda path: None if path == skipped else keras_name(path)


    UNMAPPED = dataclasses.replace(FAMILY, parameter_maps={"tf": ParameterMap(name_without("head/bias"), keras_layout)})
    DOUBLED = dataclasses.replace(
        FAMILY,
        parameter_maps={"tf": ParameterMap(lambda p: "ln_f.bias" if p == "head/bias" else keras_name(p), keras_layout)},
    )
    UNTRANSPOSED = dataclasses.replace(FAMILY, parameter_maps={"tf": ParameterMap(keras_name)})
    UNBUILT = dataclasses.replace(FAMILY, tf_model="keras_pair_mistakes:unbuilt")
    """
)


@pytest.mark.parametrize(
    ("mistake", "problem"),
    [
        ("UNMAPPED", "does not map onto its neutral state: parameters mapped to no neutral tensor: head/bias"),
        ("DOUBLED", "parameters mapped onto one tensor: ln_f/beta and head/bias -> ln_f.bias"),
        ("UNTRANSPOSED", "shapes that do not match: blocks_0/up/kernel is (32, 128), blocks.0.up.weight needs"),
        ("UNBUILT", "has no weights yet: build it (call it once on an input) before training"),
    ],
)
def test_a_mapping_mistake_is_refused_in_one_line_with_nothing_written(user_code, tmp_path, mistake, problem):
    (user_code / "keras_pair_mistakes.py").write_text(MISTAKES)
    run_dir = tmp_path / "run"
    args = ["--framework", "tf", "--family", f"keras_pair_mistakes:{mistake}", "--run-dir", str(run_dir)]
    proc = harness_train(*args, check=False)
    assert proc.returncode == 1
    # Refused by the launcher before horovodrun starts a rank: its one line is all there is.
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: the tf model of family 'keras_pair' "), proc.stderr
    assert problem in lines[0]
    assert not run_dir.exists()
