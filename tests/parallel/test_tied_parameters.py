"""An LM head tied to the embedding in one framework and kept apart in the other (tests/gpt_tied_copies.py):
the framework holding the copy trains it as one tensor with the embedding (gradients summed, one
update), so both frameworks train alike on 2 ranks, whichever holds the copy."""

import json
import os
from pathlib import Path

import pytest
from horovod_job import harness_cli

TESTS = Path(__file__).resolve().parents[1]
STEPS = 20


@pytest.mark.parametrize("variant", ["TORCH_COPY", "TF_COPY"])
def test_a_tied_copy_trains_as_its_tensor_on_two_ranks(tmp_path, variant):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "parity"
    # Two micro-batches a step: the copy's gradient is reduced once, after both have accumulated.
    harness_cli("parity", "--family", f"gpt_tied_copies:{variant}", "--np", "2", "--steps", str(STEPS),
                "--set", "train.accumulation_steps=2", "--out", str(out), env=env)  # fmt: skip
    report = json.loads((out / "parity.json").read_text())
    # As the tied twins' own parity (2e-6): summing the copy's gradient into the embedding's, and
    # the copy taking the update, is the tied model's arithmetic up to rounding.
    assert report["max_rel_loss_diff"] <= 2e-6, report["rel_loss_diff"]
    assert report["loss_torch"][-1] < report["loss_torch"][0] - 0.5  # it learned
    for framework in ("torch", "tf"):
        summary = json.loads((out / framework / "summary.json").read_text())
        assert len(set(summary["weights_sha256_per_rank"])) == 1
    print(f"{variant}: 2 ranks, {STEPS} steps, max relative loss difference {report['max_rel_loss_diff']:.2e}")
