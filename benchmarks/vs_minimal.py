"""The harness against the minimal hand-written Horovod loop on the same family, side by side, interleaved.

usage: vs_minimal.py FAMILY [MODEL] [ROUNDS]      (default: the family's "default" preset, 2 rounds)

Per round, framework (torch, tf) and np (1, 2): `harness train` and the minimal Horovod loop
(benchmarks/minimal_{torch,tf}.py) back to back, with harness bench's full plan (16 windows per
rank, one thread per rank, median step of 20 after 5 warm-up). Prints one line each, with
harness ÷ minimal. FAMILY's modules (and any library they need) must be on PYTHONPATH.
"""

import dataclasses
import sys

from harness.contract.family import load_family
from harness.runner.config import build_run_config
from launch.bench import FULL, harness_step_times, minimal_step_times, one_thread_env, stats, tokens_per_example


def main(family_spec: str, model: str, rounds: int) -> None:
    family = load_family(family_spec)
    plan = dataclasses.replace(FULL, family=family.spec, model=model)
    tokens_per_row = tokens_per_example(family, build_run_config(family, model))
    env = one_thread_env()
    for round_ in range(1, rounds + 1):
        for framework in ("torch", "tf"):
            for num_ranks in (1, 2):
                harness = harness_step_times(framework, num_ranks, plan, plan.family, env, tokens_per_row)
                minimal = minimal_step_times(framework, num_ranks, plan, env)
                h, m = stats(harness)["median"], stats(minimal)["median"]
                print(
                    f"round {round_} {framework} np={num_ranks}: harness {h:.4f} s, minimal Horovod loop {m:.4f} s; "
                    f"harness/minimal {h / m:.3f}",
                    flush=True,
                )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "default", int(sys.argv[3]) if len(sys.argv) > 3 else 2)
