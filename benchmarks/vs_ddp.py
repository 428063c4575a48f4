"""The harness against torch's own DistributedDataParallel, side by side, taking turns.

usage: vs_ddp.py [ROUNDS [MODEL [VARIANT ...]]]      (default: 2 rounds, the default model)

For np=1, then np=2: DDP (benchmarks/ddp_torch.py under torchrun) and `harness train` (torch) once
per VARIANT take turns over ROUNDS rounds, every other round in reverse order, as in `harness
bench`: one thread per rank, the bench's plan for the model (the full plan's for `default`, its
size table's for `medium` and `gpt2-small`; `default` adds the minimal Horovod loop). A VARIANT is
`controller=gloo|mpi`, `pin_cores=0` (ranks left unpinned) and/or one `--set` item,
comma-separated, e.g. `controller=gloo,train.gradient_bucket_mb=0`; `defaults` or none: the
harness's defaults on the bench's controller. Prints each round's step medians with each side ÷
DDP in that round (how far the machine moves between rounds), then each side's median over the
pooled steps.
"""

import sys
from functools import partial

import numpy as np

from harness.contract.family import load_family
from harness.runner.config import build_run_config
from launch.bench import (
    FULL,
    ddp_step_times,
    harness_step_times,
    minimal_step_times,
    one_thread_env,
    take_turns,
    tokens_per_example,
)
from launch.horovodrun import PIN_VARIABLE


def variant_env(variant: str) -> dict[str, str]:
    """The bench's environment for one VARIANT (its controller, its pinning and its one --set)."""
    extra = {}
    for item in filter(None, variant.split(",")):
        key, _, value = item.partition("=")
        if key == "controller":
            extra["HARNESS_BENCH_CONTROLLER"] = value
        elif key == "pin_cores":
            extra[PIN_VARIABLE] = value  # 0: the ranks stay unpinned (`harness train --no-pin-cores`)
        elif key != "defaults":
            extra["HARNESS_BENCH_SET"] = item
    return one_thread_env(extra)


def main(rounds: int, model: str, variants: list[str]) -> None:
    family = load_family(FULL.family)
    plan = next((size for size in family.bench_sizes if size.model == model), FULL)
    tokens_per_row = tokens_per_example(family, build_run_config(family, model))
    for num_ranks in (1, 2):
        sides = {"DDP": partial(ddp_step_times, num_ranks, plan, FULL.family, one_thread_env())}
        if model == FULL.model:
            sides["minimal Horovod"] = partial(minimal_step_times, "torch", num_ranks, FULL, one_thread_env())
        for variant in variants or [""]:
            env = variant_env(variant)
            timer = partial(harness_step_times, "torch", num_ranks, plan, FULL.family, env, tokens_per_row)
            sides[f"harness[{variant or 'defaults'}]"] = timer
        # Each side's turn returns its run's steps as one item: per-round runs, kept apart.
        runs = take_turns({name: lambda timer=timer: [timer()] for name, timer in sides.items()}, rounds)
        for round_ in range(rounds):
            medians = {name: float(np.median(steps[round_])) for name, steps in runs.items()}
            line = ", ".join(f"{name} {m:.4f} s ({m / medians['DDP']:.3f})" for name, m in medians.items())
            print(f"round {round_ + 1} {model} np={num_ranks}: {line}", flush=True)
        pooled = {name: float(np.median(np.concatenate(steps))) for name, steps in runs.items()}
        line = ", ".join(f"{name} {m:.4f} s ({m / pooled['DDP']:.3f})" for name, m in pooled.items())
        print(f"pooled {model} np={num_ranks}: {line}", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 2, args[1] if len(args) > 1 else FULL.model, args[2:])
