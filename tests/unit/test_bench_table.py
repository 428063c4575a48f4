"""The benchmark report renders every section, tuning included, from a bench document."""

from launch.bench import FULL, markdown_table, stats


def test_markdown_table_renders_runs_allreduce_keys_and_tuning():
    timing = stats([0.30, 0.31, 0.33])
    bandwidth = {"1.0": stats([0.5]), "64.0": stats([1.0])}
    run = {"harness_step_s": timing, "minimal_step_s": timing, "tokens_per_s": 1000.0, "mfu": 0.5}
    raw = {
        "plan": FULL.__dict__,
        "machine": {"cpus": 2, "host": "h"},
        "matmul_gflops_1_thread": stats([90.0]),
        "matmul_gflops_all_threads": stats([170.0]),
        "memcpy_gbps": stats([11.0]),
        "tuning": [
            {
                "settings": {"HOROVOD_CYCLE_TIME": "5"},
                "allreduce_gbps_largest": stats([0.7]),
                "harness_torch_np2_step_s": timing,
            }
        ],
        "runs": {name: run for name in ("torch_np1", "torch_np2", "tf_np1", "tf_np2")},
        "allreduce_horovod_gbps": bandwidth,
        "allreduce_torch_distributed_gbps": {"1.0": stats([1.0]), "64.0": stats([2.0])},
    }
    table = markdown_table({"tf_over_torch": 0.95, "mfu_torch": 0.5, "raw": raw})
    assert "| torch_np2 | 0.3100 [0.3050, 0.3200] |" in table
    assert "| 64 MB | 1.000 | 2.000 | 0.50 |" in table
    assert "| `tf_over_torch` | 0.950 | ≤ 1.10 |" in table
    assert "| HOROVOD_CYCLE_TIME=5 | 0.700 | 0.3100 [0.3050, 0.3200] |" in table
