"""`harness bench --quick` runs every measurement and writes every key (figures are not judged here)."""

import json
import math
import subprocess
import sys

from bench_keys import KEYS


def test_quick_bench_writes_every_key(tmp_path):
    cmd = [sys.executable, "-m", "launch.cli", "bench", "--quick", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-6000:]
    bench = json.loads((tmp_path / "bench.json").read_text())
    assert set(bench) == KEYS | {"raw"}
    for key in KEYS:
        assert math.isfinite(bench[key]) and bench[key] > 0, key
    raw = bench["raw"]
    assert set(raw["runs"]) == {"torch_np1", "torch_np2", "tf_np1", "tf_np2"}
    for run in raw["runs"].values():
        assert run["harness_step_s"]["n"] == run["minimal_step_s"]["n"] == 5  # 8 steps - 3 warm-up
        assert run["harness_step_s"]["q1"] <= run["harness_step_s"]["median"] <= run["harness_step_s"]["q3"]
    for run in ("torch_np1", "torch_np2", "tf_np1", "tf_np2"):  # DDP for torch, MultiWorkerMirroredStrategy for TF
        assert raw["runs"][run]["peer_step_s"]["n"] == 5, run
    (size,) = raw["sizes"]  # the quick plan's size table: tiny, harness and DDP at np=1 and 2
    assert size["model"] == "tiny" and size["harness"]["step_s_np2"] > 0 and size["ddp"]["step_s_np2"] > 0
    assert raw["matmul_gflops_1_thread"]["median"] > 1
    table = (tmp_path / "bench.md").read_text()
    assert "| `tf_over_torch_np2` |" in table and "| torch_np2 |" in table and "| `tiny` (" in table
