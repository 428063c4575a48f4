"""Production knobs under horovodrun -np 2, both frameworks: accumulation, bf16, fp16, compression,
gradient buckets, label smoothing."""

import numpy as np
import pytest
from horovod_job import harness_train, read_metrics, train_loss_by_step

FRAMEWORKS = ["torch", "tf"]
STEPS = 20


def losses(framework: str, run_dir, *sets: str) -> np.ndarray:
    args = [
        "--framework",
        framework,
        "--run-dir",
        str(run_dir),
        "--steps",
        str(STEPS),
        "--set",
        "eval.every=0",
        "--set",
        "train.warmup_steps=2",
    ]
    harness_train(*args, *[arg for item in sets for arg in ("--set", item)])
    return np.array(list(train_loss_by_step(read_metrics(run_dir)).values()))


@pytest.fixture(scope="module", params=FRAMEWORKS)
def baseline(request, tmp_path_factory):
    """fp32, batch 8 per rank, no accumulation: what the options are compared with."""
    framework = request.param
    return framework, losses(framework, tmp_path_factory.mktemp("baseline"), "train.batch_size=8")


def test_four_accumulated_micro_batches_equal_one_four_times_larger_batch(baseline, tmp_path):
    framework, reference = baseline
    accumulated = losses(framework, tmp_path, "train.batch_size=2", "train.accumulation_steps=4")
    assert len(accumulated) == STEPS
    np.testing.assert_allclose(accumulated, reference, rtol=1e-5)


def test_bf16_trains_close_to_fp32(baseline, tmp_path):
    framework, reference = baseline
    bf16 = losses(framework, tmp_path, "train.batch_size=8", "train.precision=bf16")
    assert bf16[-3:].mean() < bf16[:3].mean() - 0.3  # the loss falls
    assert not np.array_equal(bf16, reference)  # bf16 matmuls really ran
    np.testing.assert_allclose(bf16, reference, rtol=2e-2)


def test_fp16_compression_trains_close_to_fp32(baseline, tmp_path):
    framework, reference = baseline
    compressed = losses(framework, tmp_path, "train.batch_size=8", "train.compression=fp16")
    assert compressed[-3:].mean() < compressed[:3].mean() - 0.3
    assert not np.array_equal(compressed, reference)  # the gradients really travelled in fp16
    np.testing.assert_allclose(compressed, reference, rtol=1e-2)


def test_fp16_with_loss_scaling_trains_close_to_fp32(baseline, tmp_path):
    framework, reference = baseline
    fp16 = losses(framework, tmp_path, "train.batch_size=8", "train.precision=fp16")
    assert not np.array_equal(fp16, reference)  # fp16 matmuls really ran
    np.testing.assert_allclose(fp16, reference, rtol=1e-2)


@pytest.mark.parametrize("bucket_mb", ["0.03", "0"])  # tiny's 0.13 MB of gradients in 4 buckets; one per tensor
def test_gradients_reduced_in_buckets_train_exactly_as_in_one(baseline, tmp_path, bucket_mb):
    framework, reference = baseline
    bucketed = losses(framework, tmp_path, "train.batch_size=8", f"train.gradient_bucket_mb={bucket_mb}")
    # Two ranks' gradients summed: a + b is the same float whichever allreduce carries it.
    assert np.array_equal(bucketed, reference), np.abs(bucketed - reference).max()


def test_label_smoothing_trains_on_the_smoothed_loss(baseline, tmp_path):
    framework, reference = baseline
    smoothed = losses(framework, tmp_path, "train.batch_size=8", "train.label_smoothing=0.1")
    # Untrained, the model predicts nearly uniformly, where smoothing changes the loss little; trained,
    # it is confident, and the smoothed loss adds 0.1 x the mean of -log p over all 256 classes.
    assert abs(smoothed[0] - reference[0]) <= 1e-3 * reference[0], (smoothed[0], reference[0])
    assert (smoothed[-5:] > reference[-5:] + 0.05).all(), (smoothed[-5:], reference[-5:])
    assert smoothed[-3:].mean() < smoothed[:3].mean() - 0.3  # and it trains


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_fp16_overflow_halves_the_loss_scale_and_skips_without_stopping(framework, tmp_path):
    losses(framework, tmp_path, "train.precision=fp16", "train.initial_loss_scale=1e9")
    records = [r for r in read_metrics(tmp_path) if "loss" in r]
    overflowed = [r for r in records if r["skipped"]]
    assert 0 < len(overflowed) < STEPS - 3, [r["loss_scale"] for r in records]
    assert [r["step"] for r in overflowed] == list(range(1, len(overflowed) + 1))  # the first steps
    assert [r["loss_scale"] for r in overflowed] == [1e9 / 2**i for i in range(1, len(overflowed) + 1)]
    assert records[-1]["loss"] < records[len(overflowed)]["loss"]  # then it trains
