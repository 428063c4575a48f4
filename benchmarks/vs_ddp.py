"""The harness against torch's own DistributedDataParallel, side by side, interleaved.

usage: vs_ddp.py [ROUNDS [MODEL [VARIANT ...]]]      (default: 2 rounds, the default model)

Per round and np (1, 2): DDP (benchmarks/ddp_torch.py under torchrun), then `harness train` (torch)
once per VARIANT, back to back: one thread per rank, the bench's plan for the model (the full
plan's for `default`, its size table's for `medium` and `gpt2-small`; `default` adds the minimal
Horovod loop). A VARIANT is `controller=gloo|mpi` and/or one `--set` item, comma-separated, e.g.
`controller=gloo,train.gradient_bucket_mb=0`; none: the harness's defaults on the bench's
controller. Prints one line each, with harness ÷ DDP.
"""

import sys

from harness.contract.family import load_family
from harness.runner.config import build_run_config
from launch.bench import (
    FULL,
    ddp_step_times,
    harness_step_times,
    minimal_step_times,
    one_thread_env,
    stats,
    tokens_per_example,
)


def variant_env(variant: str) -> dict[str, str]:
    """The bench's environment for one VARIANT (its controller and its one --set)."""
    extra = {}
    for item in filter(None, variant.split(",")):
        key, _, value = item.partition("=")
        extra["HARNESS_BENCH_CONTROLLER" if key == "controller" else "HARNESS_BENCH_SET"] = (
            value if key == "controller" else item
        )
    return one_thread_env(extra)


def main(rounds: int, model: str, variants: list[str]) -> None:
    family = load_family(FULL.family)
    plan = next((size for size in family.bench_sizes if size.model == model), FULL)
    tokens_per_row = tokens_per_example(family, build_run_config(family, model))
    for round_ in range(1, rounds + 1):
        for num_ranks in (1, 2):
            ddp = stats(ddp_step_times(num_ranks, plan, FULL.family, one_thread_env()))["median"]
            line = f"round {round_} {model} np={num_ranks}: DDP {ddp:.4f} s"
            if model == FULL.model:
                minimal = stats(minimal_step_times("torch", num_ranks, FULL, one_thread_env()))["median"]
                line += f", minimal Horovod {minimal:.4f} s ({minimal / ddp:.3f})"
            for variant in variants or [""]:
                env = variant_env(variant)
                harness = stats(harness_step_times("torch", num_ranks, plan, FULL.family, env, tokens_per_row))
                line += f", harness[{variant or 'defaults'}] {harness['median']:.4f} s ({harness['median'] / ddp:.3f})"
            print(line, flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 2, args[1] if len(args) > 1 else FULL.model, args[2:])
