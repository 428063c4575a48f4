"""The parity report's arithmetic on real run directories written here."""

import json

import numpy as np
import pytest
from checkpoints import save

from harness.runner.parity import compare_runs, relative_differences


def fake_run(run_dir, losses, step=3):
    run_dir.mkdir()
    lines = [json.dumps({"step": s, "loss": v}) for s, v in enumerate(losses, start=1)]
    (run_dir / "metrics.jsonl").write_text("\n".join([*lines, json.dumps({"step": 3, "val_loss": 1.0})]) + "\n")
    save(run_dir, step)


def test_report_takes_the_largest_relative_gap_and_weight_divergence(tmp_path):
    fake_run(tmp_path / "torch", [4.0, 2.0, 1.0])
    fake_run(tmp_path / "tf", [4.0, 2.002, 1.0005], step=3)
    report = compare_runs(tmp_path / "torch", tmp_path / "tf")
    assert report["steps"] == [1, 2, 3]
    assert report["rel_loss_diff"] == pytest.approx([0.0, 1e-3, 5e-4])
    assert report["max_rel_loss_diff"] == pytest.approx(1e-3)
    assert report["max_weight_rel_norm_diff"] == 0.0  # same seed -> same saved weights
    assert np.isfinite(report["final_weight_divergence"]["wte.weight"]["max_abs_diff"])


def test_runs_with_different_steps_cannot_be_compared():
    with pytest.raises(ValueError, match="different steps"):
        relative_differences({1: 1.0, 2: 1.0}, {1: 1.0})
