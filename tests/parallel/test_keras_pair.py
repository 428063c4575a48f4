"""A Keras 3 model on the TF side, paired with a torch model of torch's own layers (examples/keras_pair/):
Horovod broadcasts and reduces the tf.Variables inside Keras's variables, and the two frameworks train
alike through the family's parameter map, 2 ranks each."""

import json
import os
import shutil
from pathlib import Path

import pytest
from horovod_job import harness_cli, run_job

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
