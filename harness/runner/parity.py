"""Compare a torch run and a TF run of the same config: per-step losses and final weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from harness.loop.reporter import METRICS_FILE
from harness.storage.checkpoint import latest_checkpoint

# The default --tol per train.precision. fp32 twins agree to ~1e-5 (docs/parity.md); bf16 and
# fp16 round matmul inputs at different places in the two frameworks (measured: 4.7e-3, default
# model, 50 steps).
DEFAULT_TOLERANCES = {"fp32": 1e-3, "bf16": 1e-2, "fp16": 1e-2}


def step_losses(run_dir: Path) -> dict[int, float]:
    """Training loss per step from a run's metrics log."""
    records = (json.loads(line) for line in (Path(run_dir) / METRICS_FILE).read_text().splitlines())
    return {r["step"]: r["loss"] for r in records if "loss" in r}


def relative_differences(reference: dict[int, float], other: dict[int, float]) -> dict[int, float]:
    """|other - reference| / |reference| at every step both runs logged: NaN where either loss is NaN,
    inf where either is infinite or the reference alone is 0."""
    if sorted(reference) != sorted(other):
        raise ValueError(f"the runs logged different steps: {sorted(reference)[:3]}... vs {sorted(other)[:3]}...")
    return {s: _relative(other[s] - reference[s], reference[s]) for s in sorted(reference)}


def _relative(diff: float, reference: float) -> float:
    if reference == 0:
        return 0.0 if diff == 0 else math.inf
    return abs(diff) / abs(reference)


def _worst(values) -> float:
    """The largest value, NaN if any is NaN (the built-in max skips a NaN unless it comes first)."""
    return float(np.max(np.asarray(list(values), np.float64)))


def compare_runs(torch_dir: Path, tf_dir: Path) -> dict:
    """The parity report of two finished runs (torch as the reference)."""
    torch_losses, tf_losses = step_losses(torch_dir), step_losses(tf_dir)
    rel = relative_differences(torch_losses, tf_losses)
    torch_state, tf_state = latest_checkpoint(torch_dir).model, latest_checkpoint(tf_dir).model
    weights = {}
    for name, a in torch_state.items():
        b = tf_state[name]
        weights[name] = {
            "max_abs_diff": float(np.max(np.abs(a - b))),
            "rel_norm_diff": float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30)),
        }
    return {
        "steps": sorted(rel),
        "loss_torch": [torch_losses[s] for s in sorted(rel)],
        "loss_tf": [tf_losses[s] for s in sorted(rel)],
        "rel_loss_diff": [rel[s] for s in sorted(rel)],
        "max_rel_loss_diff": _worst(rel.values()),
        # Where a loss or a weight difference is NaN or infinite: the gate fails on these whatever --tol is.
        "nonfinite_loss_steps": [s for s in sorted(rel) if not math.isfinite(rel[s])],
        "nonfinite_weights": [n for n, w in weights.items() if not all(map(math.isfinite, w.values()))],
        "final_weight_divergence": weights,
        "max_weight_rel_norm_diff": _worst(w["rel_norm_diff"] for w in weights.values()),
    }


def parity_failure(report: dict, tol: float) -> str | None:
    """Why ``report`` fails the parity gate at ``tol``, or None when it passes."""
    if steps := report["nonfinite_loss_steps"]:
        at = report["steps"].index(steps[0])
        losses = f"torch {report['loss_torch'][at]}, tf {report['loss_tf'][at]}"
        return f"parity failed: a loss is not finite at step {steps[0]} ({losses}; {len(steps)} such step(s))"
    if names := report["nonfinite_weights"]:
        return f"parity failed: the final weights differ by a non-finite amount in {', '.join(names)}"
    if report["max_rel_loss_diff"] > tol:
        return f"parity failed: max_rel_loss_diff {report['max_rel_loss_diff']:.3e} exceeds --tol {tol:g}"
    return None


def plot_report(report: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (curves, diff) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=[2, 1])
    curves.plot(report["steps"], report["loss_torch"], label="PyTorch", linewidth=2.5)
    curves.plot(report["steps"], report["loss_tf"], label="TensorFlow", linestyle="--", linewidth=1.5)
    curves.set_ylabel("training loss")
    curves.set_title(title)
    curves.legend()
    diff.semilogy(report["steps"], np.maximum(report["rel_loss_diff"], 1e-12), color="tab:red")
    diff.set_ylabel("|TF - torch| / torch\n(exact match drawn at 1e-12)")
    diff.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
