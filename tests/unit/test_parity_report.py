"""The parity report's arithmetic and its gate, on real run directories written here."""

import json
import math

import numpy as np
import pytest
from checkpoints import CONFIG, save

from harness.families.gpt import init_state
from harness.runner.parity import compare_runs, parity_failure, relative_differences


def fake_run(run_dir, losses, model=None):
    """A finished run: ``losses`` logged at steps 1.., and ``model`` (the seed-0 state by default) saved."""
    run_dir.mkdir()
    lines = [json.dumps({"step": s, "loss": v}) for s, v in enumerate(losses, start=1)]
    (run_dir / "metrics.jsonl").write_text("\n".join([*lines, json.dumps({"step": 3, "val_loss": 1.0})]) + "\n")
    save(run_dir, len(losses), keep=1, model=init_state(CONFIG.model, 0) if model is None else model)


def test_report_takes_the_largest_relative_gap_and_weight_divergence(tmp_path):
    torch_state = init_state(CONFIG.model, 0)
    tf_state = {**torch_state, "wte.weight": torch_state["wte.weight"] * np.float32(1.001)}  # 0.1 % larger
    tf_state["ln_f.bias"] = torch_state["ln_f.bias"] + np.float32(0.25)  # zero in the reference: +0.25 each
    fake_run(tmp_path / "torch", [4.0, 2.0, 1.0], torch_state)
    fake_run(tmp_path / "tf", [4.0, 2.002, 1.0005], tf_state)
    report = compare_runs(tmp_path / "torch", tmp_path / "tf")
    assert report["steps"] == [1, 2, 3]
    assert report["rel_loss_diff"] == pytest.approx([0.0, 1e-3, 5e-4])
    assert report["max_rel_loss_diff"] == pytest.approx(1e-3)
    weights = report["final_weight_divergence"]
    assert weights["wte.weight"]["rel_norm_diff"] == pytest.approx(1e-3, rel=1e-3)
    largest = np.abs(torch_state["wte.weight"]).max()
    assert weights["wte.weight"]["max_abs_diff"] == pytest.approx(1e-3 * largest, rel=1e-3)
    assert weights["ln_f.bias"]["max_abs_diff"] == pytest.approx(0.25)
    assert weights["ln_f.bias"]["rel_norm_diff"] > 1e20  # against a zero reference: its floor of 1e-30
    assert weights["ln_f.weight"] == {"max_abs_diff": 0.0, "rel_norm_diff": 0.0}
    assert report["max_weight_rel_norm_diff"] == weights["ln_f.bias"]["rel_norm_diff"]
    assert report["nonfinite_loss_steps"] == report["nonfinite_weights"] == []
    assert parity_failure(report, tol=1e-3) is None
    assert parity_failure(report, tol=9e-4) == "parity failed: max_rel_loss_diff 1.000e-03 exceeds --tol 0.0009"


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("where", [0, 1])
def test_a_nonfinite_loss_fails_the_gate_at_any_tolerance_naming_its_step(tmp_path, bad, where):
    # The NaN comes after the first step: the built-in max() would skip it and report 1e-3.
    losses = {"torch": [4.0, 2.0, 1.0, 0.5], "tf": [4.0, 2.002, 1.0, 0.5]}
    losses[["torch", "tf"][where]][2] = bad
    for name, values in losses.items():
        fake_run(tmp_path / name, values)
    report = compare_runs(tmp_path / "torch", tmp_path / "tf")
    assert report["nonfinite_loss_steps"] == [3]
    assert not math.isfinite(report["max_rel_loss_diff"])
    shown = {"torch": repr(losses["torch"][2]), "tf": repr(losses["tf"][2])}
    assert parity_failure(report, tol=1.0) == (
        f"parity failed: a loss is not finite at step 3 (torch {shown['torch']}, tf {shown['tf']}; 1 such step(s))"
    )


def test_a_nonfinite_final_weight_fails_the_gate(tmp_path):
    state = init_state(CONFIG.model, 0)
    fake_run(tmp_path / "torch", [4.0, 2.0], state)
    fake_run(tmp_path / "tf", [4.0, 2.0], {**state, "ln_f.weight": np.full_like(state["ln_f.weight"], np.nan)})
    report = compare_runs(tmp_path / "torch", tmp_path / "tf")
    assert report["nonfinite_weights"] == ["ln_f.weight"] and math.isnan(report["max_weight_rel_norm_diff"])
    assert report["max_rel_loss_diff"] == 0.0
    assert parity_failure(report, tol=1.0) == (
        "parity failed: the final weights differ by a non-finite amount in ln_f.weight"
    )


def test_relative_differences_against_a_zero_reference():
    assert relative_differences({1: 0.0, 2: 0.0}, {1: 0.0, 2: 1e-9}) == {1: 0.0, 2: math.inf}


def test_runs_with_different_steps_cannot_be_compared():
    with pytest.raises(ValueError, match="different steps"):
        relative_differences({1: 1.0, 2: 1.0}, {1: 1.0})
