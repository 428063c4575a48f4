"""The BERT-style family under the loop, 2 ranks, tiny presets: masked-LM parity between the
frameworks, then a masked-LM run in one framework fine-tuned to classify in the other."""

import json

from horovod_job import harness_cli, harness_train

from harness.checkpoint import list_checkpoints

MLM_STEPS, CLASSIFY_STEPS = 40, 30


def test_masked_lm_trains_the_same_in_both_frameworks(tmp_path):
    harness_cli("parity", "--family", "bert", "--steps", str(MLM_STEPS), "--np", "2", "--out", str(tmp_path))
    report = json.loads((tmp_path / "parity.json").read_text())
    assert report["steps"] == list(range(1, MLM_STEPS + 1))
    assert report["max_rel_loss_diff"] <= 1e-3, report["rel_loss_diff"]
    assert report["loss_torch"][-1] < report["loss_torch"][0] - 1.0  # it did train
    print(
        f"bert mlm parity, tiny, 2 ranks, {MLM_STEPS} steps: max relative loss difference "
        f"{report['max_rel_loss_diff']:.2e}"
    )


def test_a_torch_masked_lm_run_initialises_a_tf_classifier(tmp_path):
    pretrained, finetuned = tmp_path / "mlm", tmp_path / "classify"
    harness_train("--family", "bert", "--framework", "torch", "--run-dir", str(pretrained), "--steps", str(MLM_STEPS))
    result = harness_train(
        "--family", "bert", "--model", "tiny-classify", "--framework", "tf", "--run-dir", str(finetuned),
        "--steps", str(CLASSIFY_STEPS), "--init-from", str(pretrained), "--set", "data.val_fraction=0.2",
    )  # fmt: skip
    source = list_checkpoints(pretrained)[-1][1]
    fresh = "pooler.weight, pooler.bias, classifier.weight, classifier.bias"
    assert f"initialised 28 tensors from {source} (step {MLM_STEPS}); fresh: {fresh}" in result.stderr
    summary = json.loads((finetuned / "summary.json").read_text())
    metrics = summary["final_val_metrics"]
    assert set(metrics) == {"val_loss", "val_accuracy"} and 0.0 <= metrics["val_accuracy"] <= 1.0
    assert len(set(summary["weights_sha256_per_rank"])) == 1

    mismatch = harness_train(
        "--family", "gpt", "--framework", "tf", "--run-dir", str(tmp_path / "gpt"), "--init-from", str(pretrained),
        check=False,
    )  # fmt: skip
    assert mismatch.returncode == 1
    assert mismatch.stderr.strip().splitlines()[-1] == (
        f"Error: --init-from {pretrained}: its checkpoints are of family 'bert', not 'gpt'"
    )
    assert not (tmp_path / "gpt").exists()
