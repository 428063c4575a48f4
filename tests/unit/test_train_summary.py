"""The last lines `harness train` prints: the run's summary and its checkpoint."""

from launch.cli.train.here import _echo_summary

SUMMARY = {
    "framework": "torch",
    "world_size": 2,
    "steps": 12,
    "final_loss": 3.73351,
    "final_val_metrics": {"val_loss": 3.49871},
    "tokens_per_second": 10071.4,
    "peak_rss_mib_per_rank": [518.94, 525.8],
    "hostname_per_rank": ["hostA", "hostB"],
    "checkpoint": "runs/x/checkpoints/step_12",
}


def test_the_summary_reads_as_text(capsys):
    _echo_summary(SUMMARY)
    assert capsys.readouterr().out.splitlines() == [
        "torch x2: 12 steps, final loss 3.7335, val_loss 3.4987, 10,071 tokens/s, "
        "peak RSS per rank 519 / 526 MiB, hosts hostA, hostB",
        "checkpoint: runs/x/checkpoints/step_12",
    ]


def test_one_step_has_no_throughput_to_state(capsys):
    _echo_summary({**SUMMARY, "steps": 1, "tokens_per_second": float("nan")})  # the first step is never timed
    first = capsys.readouterr().out.splitlines()[0]
    assert "tokens/s" not in first and "nan" not in first
    assert first.startswith("torch x2: 1 step, final loss 3.7335, val_loss 3.4987, peak RSS per rank 519 / 526 MiB")
