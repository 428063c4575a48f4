"""What `harness bench` measures for a family, and the document it computes, with fake measurements:
only the harness's runs for a family that declares no reference loops and no bench sizes (the
n-gram example), everything for the GPT family. The real runs: tests/parallel/test_bench.py."""

import dataclasses
from functools import partial
from pathlib import Path

import pytest
from bench_keys import KEYS

from launch.bench import QUICK, TUNING_CANDIDATES, Measurements, markdown_table, run_bench, stats

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ngram_family"
# Median seconds per step of each fake run: all distinct, so a ratio turned over or a run read for
# another gives a different figure.
HARNESS = {("torch", 1): 0.20, ("torch", 2): 0.25, ("tf", 1): 0.30, ("tf", 2): 0.40}
MINIMAL = {("torch", 1): 0.19, ("torch", 2): 0.24, ("tf", 1): 0.28, ("tf", 2): 0.36}
PEER = {("torch", 1): 0.22, ("torch", 2): 0.26, ("tf", 1): 0.33, ("tf", 2): 0.45}
ALLREDUCE_GBPS = {"horovod": 2.0, "torch_distributed": 0.5}
# Time to the first step (s) and the largest process's peak RSS (MiB): harness, peer.
FIRST_STEP = {"torch": ((4.0, 340.0), (5.0, 320.0)), "tf": ((8.0, 780.0), (10.0, 800.0))}


def samples(median: float) -> list[float]:
    return [median * f for f in (0.9, 0.95, 1.0, 1.05, 1.1)]


def fake_measurements(calls: list[tuple]) -> Measurements:
    """Measurements that append (what, framework, ranks, family) to ``calls`` for each timed
    training run and return the figures above; the machine's figures are fixed too."""

    def timed(what, framework, num_ranks, family, medians):
        calls.append((what, framework, num_ranks, family))
        return samples(medians[framework, num_ranks])

    def size_table(family, sizes, env, peak_per_rank, log, rounds):
        calls.append(("sizes", None, rounds, family.spec))
        return [{"model": size.model} for size in sizes]

    def first_step(side, framework, model, family):
        calls.append((f"first_step {side}", framework, 2, family))
        seconds, peak = FIRST_STEP[framework][side == "peer"]
        return [{"seconds": seconds, "peak_mib": peak}]

    return Measurements(
        matmul_peak_gflops=lambda threads: stats([100.0 * threads]),
        memcpy_gbps=lambda: stats([10.0]),
        harness_step_times=lambda fw, n, plan, family, env, tokens: timed("harness", fw, n, family, HARNESS),
        minimal_step_times=lambda fw, n, plan, env: timed("minimal", fw, n, plan.family, MINIMAL),
        ddp_step_times=lambda n, plan, family, env: timed("peer", "torch", n, family, PEER),
        mwms_step_times=lambda n, plan, family, env: timed("peer", "tf", n, family, PEER),
        size_table=size_table,
        first_step_harness=partial(first_step, "harness"),
        first_step_peer=partial(first_step, "peer"),
        allreduce_gbps=lambda kind, plan, env: {
            str(float(mb)): stats([ALLREDUCE_GBPS[kind]]) for mb in plan.allreduce_sizes_mb
        },
    )


def test_a_family_without_reference_loops_or_sizes_times_only_the_harness(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))  # as a user's PYTHONPATH would hold it
    plan = dataclasses.replace(QUICK, family="ngram_family:FAMILY")
    calls = []
    bench = run_bench(plan, log=lambda text: None, measure=fake_measurements(calls))

    runs = [(framework, n) for n in (1, 2) for framework in ("torch", "tf")]
    assert calls == [("harness", framework, n, "ngram_family:FAMILY") for framework, n in runs]
    keys = {"tf_over_torch_np1", "tf_over_torch_np2", "scaling_efficiency_torch", "scaling_efficiency_tf"}
    assert set(bench) == keys | {"allreduce_vs_torch_distributed_1mb", "raw"}
    assert bench["raw"]["sizes"] == []
    for framework, n in runs:
        run = bench["raw"]["runs"][f"{framework}_np{n}"]
        assert run["minimal_step_s"] is None and run["peer_step_s"] is None and run["mfu"] is None
        assert run["harness_step_s"]["median"] == HARNESS[framework, n] and run["harness_step_s"]["n"] == 5
        # The n-gram preset `tiny` reads windows of 32 tokens.
        assert run["tokens_per_s"] == pytest.approx(QUICK.batch_size * n * 32 / HARNESS[framework, n])
    for n in (1, 2):
        assert bench[f"tf_over_torch_np{n}"] == pytest.approx(HARNESS["tf", n] / HARNESS["torch", n])
    for framework in ("torch", "tf"):  # same per-rank batch: tokens/s at 2 ranks ÷ twice 1 rank's
        assert bench[f"scaling_efficiency_{framework}"] == pytest.approx(HARNESS[framework, 1] / HARNESS[framework, 2])
    assert bench["allreduce_vs_torch_distributed_1mb"] == pytest.approx(4.0)

    table = markdown_table(bench)
    (row,) = [line for line in table.splitlines() if line.startswith("| torch_np2 |")]
    assert row.startswith("| torch_np2 | 0.2500 [") and row.endswith("| n/a | n/a | 2,048 | n/a |")
    assert "| model (parameters" not in table  # no size table


def test_the_gpt_family_runs_the_minimal_loops_the_peers_and_the_size_table():
    calls = []
    bench = run_bench(QUICK, log=lambda text: None, measure=fake_measurements(calls))

    expected = []
    for n in (1, 2):
        for framework in ("torch", "tf"):
            expected += [(what, framework, n, "gpt") for what in ("harness", "minimal", "peer")]
    # The quick plan: tiny, one round.
    first_steps = [(f"first_step {side}", fw, 2, "gpt") for fw in ("torch", "tf") for side in ("harness", "peer")]
    assert calls == [*expected, ("sizes", None, QUICK.rounds, "gpt"), *first_steps]
    assert bench["raw"]["sizes"] == [{"model": "tiny"}]  # the quick plan's sizes, not the family's
    assert set(bench) == KEYS | {"raw"}
    for framework in ("torch", "tf"):
        for n in (1, 2):
            overhead = HARNESS[framework, n] / MINIMAL[framework, n]
            assert bench[f"overhead_ratio_{framework}_np{n}"] == pytest.approx(overhead)
        assert bench["raw"]["runs"][f"{framework}_np2"]["peer_step_s"]["median"] == PEER[framework, 2]
    assert bench["vs_ddp_np2"] == pytest.approx(HARNESS["torch", 2] / PEER["torch", 2])
    assert bench["vs_tf_mwms_np1"] == pytest.approx(HARNESS["tf", 1] / PEER["tf", 1])
    assert bench["scaling_efficiency_mwms"] == pytest.approx(PEER["tf", 1] / PEER["tf", 2])
    assert 0 < bench["mfu_tf"] < bench["mfu_torch"]  # same FLOPs per token; TF's fake steps are slower
    for framework, ((seconds, peak), (peer_seconds, peer_peak)) in FIRST_STEP.items():
        assert bench[f"first_step_vs_peer_{framework}_tiny"] == pytest.approx(seconds / peer_seconds)
        assert bench[f"peak_rss_vs_peer_{framework}_tiny"] == pytest.approx(peak / peer_peak)
    table = markdown_table({**bench, "raw": {**bench["raw"], "sizes": []}})  # the fake size rows have no figures
    (row,) = [line for line in table.splitlines() if line.startswith("| tf_tiny |")]
    assert row.endswith("| 780 / 800 | 0.80 / 0.97 |")


def test_rounds_take_turns_and_pool_their_steps():
    calls = []
    plan = dataclasses.replace(QUICK, rounds=3)
    bench = run_bench(plan, log=lambda text: None, measure=fake_measurements(calls))

    turns = [what for what, framework, n, _ in calls if (framework, n) == ("tf", 1)]
    # Interleaved, not three of one then the next, and every other round in reverse order.
    assert turns == ["harness", "minimal", "peer", "peer", "minimal", "harness", "harness", "minimal", "peer"]
    # The frameworks take turns with each other too, so TF ÷ torch compares runs of the same minutes.
    frameworks = [framework for what, framework, n, _ in calls if n == 1 and what in ("harness", "minimal", "peer")]
    assert frameworks == ["torch"] * 3 + ["tf"] * 6 + ["torch"] * 6 + ["tf"] * 3
    run = bench["raw"]["runs"]["tf_np1"]
    assert run["harness_step_s"]["n"] == run["minimal_step_s"]["n"] == run["peer_step_s"]["n"] == 15
    # Time to the first step takes turns too: harness and peer, then peer and harness, ...
    first_step_turns = [what.split()[1] for what, framework, n, _ in calls if what.startswith("first_step ")]
    assert first_step_turns == ["harness", "peer", "peer", "harness", "harness", "peer"] * 2  # torch, then tf
    first_step = bench["raw"]["first_step"]["tf_tiny"]
    assert first_step["harness"]["seconds"]["n"] == first_step["peer"]["seconds"]["n"] == 3
    assert bench["overhead_ratio_tf_np1"] == pytest.approx(HARNESS["tf", 1] / MINIMAL["tf", 1])


def test_the_tuning_pass_takes_turns_over_two_rounds():
    calls, logs = [], []
    plan = dataclasses.replace(QUICK, tune=True)
    bench = run_bench(plan, log=logs.append, measure=fake_measurements(calls))

    candidates = [f"tuning: {candidate} ..." for candidate in TUNING_CANDIDATES]
    assert [line for line in logs if line.startswith("tuning")] == candidates + candidates[::-1]
    assert [entry["settings"] for entry in bench["raw"]["tuning"]] == list(TUNING_CANDIDATES)
    for entry in bench["raw"]["tuning"]:  # each candidate's steps pooled over both rounds, one allreduce a round
        assert entry["harness_torch_np2_step_s"]["n"] == 2 * 5
        assert entry["harness_torch_np2_step_s"]["median"] == HARNESS["torch", 2]
        assert entry["allreduce_gbps_largest"]["n"] == 2
        assert entry["allreduce_gbps_largest"]["median"] == ALLREDUCE_GBPS["horovod"]
