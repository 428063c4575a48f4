"""The BERT-style family under the loop, 2 ranks, tiny presets: masked-LM parity between the
frameworks; each framework's masked-LM run of that parity fine-tuned to classify in the same framework
(the two pipelines agree) and the torch masked-LM run fine-tuned in TF (as its own TF fine-tuning)."""

import json
from pathlib import Path

import pytest
from horovod_job import harness_cli, harness_train

from harness.families.bert import task
from harness.runner.config import load_run_config
from harness.storage.checkpoint import list_checkpoints

MLM_STEPS, CLASSIFY_STEPS = 40, 30


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """`harness parity` of the masked-LM head, tiny preset, 2 ranks: OUT with OUT/torch and OUT/tf."""
    out = tmp_path_factory.mktemp("mlm-parity")
    # The family's 100 warm-up steps would outlast this short run: 10 here.
    harness_cli(
        "parity", "--family", "bert", "--steps", str(MLM_STEPS), "--np", "2", "--out", str(out),
        "--set", "train.warmup_steps=10",
    )  # fmt: skip
    return out


def test_masked_lm_trains_the_same_in_both_frameworks(pretrained):
    report = json.loads((pretrained / "parity.json").read_text())
    assert report["steps"] == list(range(1, MLM_STEPS + 1))
    # Seeds 1234 (this test's), 1, 2, 3, 4 (2026-12-02): worst 2.1e-7, every step.
    assert report["max_rel_loss_diff"] <= 2e-6, report["rel_loss_diff"]
    assert report["max_weight_rel_norm_diff"] <= 3e-4  # worst 3.3e-5
    assert report["loss_torch"][-1] < report["loss_torch"][0] - 0.5  # it did train (5.56 -> 4.60 measured)
    print(
        f"bert mlm parity, tiny, 2 ranks, {MLM_STEPS} steps: max relative loss difference "
        f"{report['max_rel_loss_diff']:.2e}"
    )


@pytest.fixture(scope="module")
def fine_tuned(pretrained, tmp_path_factory) -> dict[tuple[str, str], tuple[Path, str]]:
    """The classifier fine-tuned from each masked-LM run:
    (pretrained in, fine-tuned in) -> (run directory, its stderr)."""
    runs = {}
    for source, framework in (("torch", "torch"), ("tf", "tf"), ("torch", "tf")):
        run_dir = tmp_path_factory.mktemp(f"classify-{source}-{framework}") / "run"
        proc = harness_train(
            "--family", "bert", "--model", "tiny-classify", "--framework", framework, "--run-dir", str(run_dir),
            "--steps", str(CLASSIFY_STEPS), "--init-from", str(pretrained / source),
        )  # fmt: skip
        runs[source, framework] = run_dir, proc.stderr
    return runs


def final_val_metrics(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "summary.json").read_text())["final_val_metrics"]


def paragraphs_right(metrics: dict[str, float]) -> float:
    """How many held-out paragraphs the classifier got right."""
    config = load_run_config("tiny-classify", family="bert")[1]
    held_out = len(task(config.model).splits(config.data)[1])  # the family's data.val_fraction of the paragraphs
    return metrics["val_accuracy"] * held_out


def test_each_framework_pretrains_and_fine_tunes_alike(fine_tuned):
    metrics = {fw: final_val_metrics(fine_tuned[fw, fw][0]) for fw in ("torch", "tf")}
    assert abs(metrics["tf"]["val_loss"] - metrics["torch"]["val_loss"]) <= 1e-3 * metrics["torch"]["val_loss"]
    correct = {framework: paragraphs_right(m) for framework, m in metrics.items()}
    assert abs(correct["torch"] - correct["tf"]) <= 1 + 1e-6, correct  # within one paragraph
    gap = abs(metrics["tf"]["val_loss"] - metrics["torch"]["val_loss"]) / metrics["torch"]["val_loss"]
    print(
        f"bert tiny pipelines, 2 ranks: held-out paragraphs right, torch {correct['torch']:.0f}, "
        f"tf {correct['tf']:.0f}; relative validation loss gap {gap:.2e}"
    )


def test_a_torch_masked_lm_run_initialises_a_tf_classifier(pretrained, fine_tuned, tmp_path):
    torch_run, (finetuned, stderr) = pretrained / "torch", fine_tuned["torch", "tf"]
    source = list_checkpoints(torch_run)[-1][1]
    fresh = "pooler.weight, pooler.bias, classifier.weight, classifier.bias"
    assert f"initialised 28 tensors from {source} (step {MLM_STEPS}); fresh: {fresh}" in stderr
    summary = json.loads((finetuned / "summary.json").read_text())
    assert len(set(summary["weights_sha256_per_rank"])) == 1
    # The masked-LM runs agree, so fine-tuning in TF from torch's encoder is fine-tuning from TF's own.
    metrics, own = summary["final_val_metrics"], final_val_metrics(fine_tuned["tf", "tf"][0])
    assert set(metrics) == {"val_loss", "val_accuracy"}
    assert abs(metrics["val_loss"] - own["val_loss"]) <= 1e-3 * own["val_loss"], (metrics, own)
    assert abs(paragraphs_right(metrics) - paragraphs_right(own)) <= 1 + 1e-6, (metrics, own)

    mismatch = harness_train(
        "--family", "gpt", "--framework", "tf", "--run-dir", str(tmp_path / "gpt"), "--init-from", str(torch_run),
        check=False,
    )  # fmt: skip
    assert mismatch.returncode == 1
    assert mismatch.stderr.strip().splitlines()[-1] == (
        f"Error: --init-from {torch_run}: its checkpoints are of family 'bert', not 'gpt'"
    )
    assert not (tmp_path / "gpt").exists()
