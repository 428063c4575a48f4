"""Compare a torch run and a TF run of the same config: per-step losses and final weights."""

from __future__ import annotations

import json
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
    """|other - reference| / |reference| at every step both runs logged."""
    if sorted(reference) != sorted(other):
        raise ValueError(f"the runs logged different steps: {sorted(reference)[:3]}... vs {sorted(other)[:3]}...")
    return {s: abs(other[s] - reference[s]) / abs(reference[s]) for s in sorted(reference)}


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
        "max_rel_loss_diff": max(rel.values()),
        "final_weight_divergence": weights,
        "max_weight_rel_norm_diff": max(w["rel_norm_diff"] for w in weights.values()),
    }


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
