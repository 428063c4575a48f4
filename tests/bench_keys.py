"""The keys `harness bench` writes for the built-in gpt family, which declares reference loops, a
FLOP count and a size table (tests/parallel/test_bench.py runs it; tests/unit/test_bench_plan.py plans it)."""

KEYS = {
    "overhead_ratio_torch_np1",
    "overhead_ratio_torch_np2",
    "overhead_ratio_tf_np1",
    "overhead_ratio_tf_np2",
    "tf_over_torch_np1",
    "tf_over_torch_np2",
    "allreduce_vs_torch_distributed_1mb",
    "scaling_efficiency_torch",
    "scaling_efficiency_tf",
    "mfu_torch",
    "mfu_tf",
    "vs_ddp_np1",
    "vs_ddp_np2",
    "scaling_efficiency_ddp",
    "vs_tf_mwms_np1",
    "vs_tf_mwms_np2",
    "scaling_efficiency_mwms",
    "first_step_vs_peer_torch_tiny",
    "first_step_vs_peer_tf_tiny",
    "peak_rss_vs_peer_torch_tiny",
    "peak_rss_vs_peer_tf_tiny",
}
