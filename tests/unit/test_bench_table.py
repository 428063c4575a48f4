"""The benchmark report renders every section, tuning included, from a bench document."""

from launch.bench import FULL, markdown_table, stats


def size_figures(step_np1: float, step_np2: float, tokens_per_s: float) -> dict:
    return {
        "step_s_np1": step_np1,
        "step_s_np2": step_np2,
        "tokens_per_s_np2": tokens_per_s,
        "mfu_np2": 0.5,
        "communication_share": 1 - step_np1 / step_np2,
        "scaling_efficiency": step_np1 / step_np2,
    }


def test_markdown_table_renders_runs_allreduce_keys_sizes_and_tuning():
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
        "sizes": [
            {
                "model": "medium",
                "params": 10_844_160,
                "batch_size": 4,
                "tokens": 256,
                "harness": size_figures(1.0, 1.1, 1862.0),
                "ddp": size_figures(1.0, 1.05, 1950.0),
            }
        ],
    }
    table = markdown_table({"tf_over_torch": 0.95, "mfu_torch": 0.5, "raw": raw})
    assert "| torch_np2 | 0.3100 [0.3050, 0.3200] |" in table
    assert "| 64 MB | 1.000 | 2.000 | 0.50 |" in table
    assert "| `tf_over_torch` | 0.950 | ≤ 1.05 |" in table
    assert "| HOROVOD_CYCLE_TIME=5 | 0.700 | 0.3100 [0.3050, 0.3200] |" in table
    assert "| `medium` (10.8 M, 4 × 256) | 1.000 / 1.100 | 1.000 / 1.050 | 1.048 | 1,862 / 1,950 |" in table
