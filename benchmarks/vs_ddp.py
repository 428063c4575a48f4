"""The harness against torch's own DistributedDataParallel, side by side, interleaved.

usage: vs_ddp.py [ROUNDS]      (default 2)

Per round and np (1, 2): `harness train` (torch), the minimal Horovod loop and the DDP loop
(benchmarks/ddp_torch.py under torchrun), back to back: default model, 16 windows per rank, one
thread per rank, median step of 20 after 5 warm-up (harness bench's full plan). Prints one line
each, with harness ÷ DDP.
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


def main(rounds: int) -> None:
    family = load_family(FULL.family)
    tokens_per_row = tokens_per_example(family, build_run_config(family, FULL.model))
    env = one_thread_env()
    for round_ in range(1, rounds + 1):
        for num_ranks in (1, 2):
            harness = stats(harness_step_times("torch", num_ranks, FULL, FULL.family, env, tokens_per_row))["median"]
            minimal = stats(minimal_step_times("torch", num_ranks, FULL, env))["median"]
            ddp = stats(ddp_step_times(num_ranks, FULL, FULL.family, env))["median"]
            print(
                f"round {round_} np={num_ranks}: harness {harness:.4f} s, minimal Horovod {minimal:.4f} s, "
                f"DDP {ddp:.4f} s; harness/DDP {harness / ddp:.3f}, minimal/DDP {minimal / ddp:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
