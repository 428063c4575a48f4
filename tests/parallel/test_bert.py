"""The BERT-style family under the loop, 2 ranks, tiny presets: masked-LM parity between the
frameworks; each framework's masked-LM run fine-tuned to classify in the same framework (the two
pipelines agree) and a torch masked-LM run fine-tuned in TF."""

import json
import subprocess
from pathlib import Path

import pytest
from horovod_job import harness_cli, harness_train, read_metrics, train_loss_by_step

from harness.families.bert import task
from harness.runner.config import load_run_config
from harness.storage.checkpoint import list_checkpoints

MLM_STEPS, CLASSIFY_STEPS = 40, 30


def test_masked_lm_trains_the_same_in_both_frameworks(tmp_path):
    # The family's 100 warm-up steps would outlast this short run: 10 here.
    harness_cli(
        "parity", "--family", "bert", "--steps", str(MLM_STEPS), "--np", "2", "--out", str(tmp_path),
        "--set", "train.warmup_steps=10",
    )  # fmt: skip
    report = json.loads((tmp_path / "parity.json").read_text())
    assert report["steps"] == list(range(1, MLM_STEPS + 1))
    assert report["max_rel_loss_diff"] <= 1e-3, report["rel_loss_diff"]
    assert report["loss_torch"][-1] < report["loss_torch"][0] - 0.5  # it did train (5.56 -> 4.60 measured)
    print(
        f"bert mlm parity, tiny, 2 ranks, {MLM_STEPS} steps: max relative loss difference "
        f"{report['max_rel_loss_diff']:.2e}"
    )


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> dict[str, Path]:
    """A masked-LM run of each framework, tiny preset, 2 ranks: framework -> run directory."""
    runs = {}
    for framework in ("torch", "tf"):
        runs[framework] = tmp_path_factory.mktemp("mlm") / framework
        harness_train(
            "--family", "bert", "--framework", framework, "--run-dir", str(runs[framework]), "--steps", str(MLM_STEPS),
            "--set", "train.warmup_steps=10",
        )  # fmt: skip
    return runs


def fine_tune(framework: str, source: Path, run_dir: Path) -> subprocess.CompletedProcess:
    return harness_train(
        "--family", "bert", "--model", "tiny-classify", "--framework", framework, "--run-dir", str(run_dir),
        "--steps", str(CLASSIFY_STEPS), "--init-from", str(source),
    )  # fmt: skip


def test_each_framework_pretrains_and_fine_tunes_alike(pretrained, tmp_path):
    summaries = {}
    for framework, source in pretrained.items():
        fine_tune(framework, source, tmp_path / framework)
        summaries[framework] = json.loads((tmp_path / framework / "summary.json").read_text())
    pretraining = {framework: read_metrics(run_dir) for framework, run_dir in pretrained.items()}
    losses = {framework: train_loss_by_step(records) for framework, records in pretraining.items()}
    assert max(abs(losses["tf"][s] - loss) / loss for s, loss in losses["torch"].items()) <= 1e-3
    metrics = {framework: summary["final_val_metrics"] for framework, summary in summaries.items()}
    assert abs(metrics["tf"]["val_loss"] - metrics["torch"]["val_loss"]) <= 1e-3 * metrics["torch"]["val_loss"]
    config = load_run_config("tiny-classify", family="bert")[1]
    held_out = len(task(config.model).splits(config.data)[1])  # the family's data.val_fraction of the paragraphs
    correct = {framework: m["val_accuracy"] * held_out for framework, m in metrics.items()}
    assert abs(correct["torch"] - correct["tf"]) <= 1 + 1e-6, correct  # within one paragraph
    print(
        f"bert tiny pipelines, 2 ranks: held-out paragraphs right, torch {correct['torch']:.0f}, tf {correct['tf']:.0f}"
    )


def test_a_torch_masked_lm_run_initialises_a_tf_classifier(pretrained, tmp_path):
    torch_run, finetuned = pretrained["torch"], tmp_path / "classify"
    result = fine_tune("tf", torch_run, finetuned)
    source = list_checkpoints(torch_run)[-1][1]
    fresh = "pooler.weight, pooler.bias, classifier.weight, classifier.bias"
    assert f"initialised 28 tensors from {source} (step {MLM_STEPS}); fresh: {fresh}" in result.stderr
    summary = json.loads((finetuned / "summary.json").read_text())
    metrics = summary["final_val_metrics"]
    assert set(metrics) == {"val_loss", "val_accuracy"} and 0.0 <= metrics["val_accuracy"] <= 1.0
    assert len(set(summary["weights_sha256_per_rank"])) == 1

    mismatch = harness_train(
        "--family", "gpt", "--framework", "tf", "--run-dir", str(tmp_path / "gpt"), "--init-from", str(torch_run),
        check=False,
    )  # fmt: skip
    assert mismatch.returncode == 1
    assert mismatch.stderr.strip().splitlines()[-1] == (
        f"Error: --init-from {torch_run}: its checkpoints are of family 'bert', not 'gpt'"
    )
    assert not (tmp_path / "gpt").exists()
