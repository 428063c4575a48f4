"""`harness bench`: measured speed against the machine's limits, a minimal Horovod loop and the peers.

Every figure comes from a run made here: the harness and the references are launched as separate
processes (one framework per process), warm-up steps are dropped, and medians are reported with
their interquartile spread.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from harness.contract.config import RunConfig
from harness.contract.family import DEFAULT_FAMILY, BenchSize, Family, load_family
from harness.runner.config import build_run_config
from launch.horovodrun import (
    PIN_VARIABLE,
    RANK_LINE,
    default_controller,
    horovodrun_command,
    mpi_built,
    rank_environment,
    train_argv,
)

ROOT = Path(__file__).resolve().parent.parent
MB = 2**20


@dataclass(frozen=True)
class BenchPlan:
    model: str  # the family's preset
    batch_size: int  # per rank
    steps: int
    warmup: int
    allreduce_sizes_mb: tuple[float, ...]
    allreduce_repeats: int
    tune: bool
    # Runs of each (framework, np): the harness, its minimal loop and its peer take turns (``take_turns``),
    # and their steps are pooled, so a slow process (this machine drifts) weighs on every side alike.
    rounds: int = 1
    family: str = DEFAULT_FAMILY  # any family times the harness; its declarations add the rest
    # The model-size table's rows (harness torch and DDP at np=1 and 2 on each), for families that
    # declare bench_sizes; None: the family's own.
    sizes: tuple[BenchSize, ...] | None = None
    # Presets whose time to the first step (2 ranks, one step, whole process) and peak RSS are
    # measured against the peers', for families with reference loops; ``rounds`` runs of each.
    first_step_models: tuple[str, ...] = ("tiny",)


def tokens_per_example(family: Family, config: RunConfig) -> int:
    """Input tokens of one example of the family's task (its batches' inputs per row)."""
    task = family.task(config.model)
    train_split, _ = task.splits(config.data)
    return task.batch(train_split, np.arange(1), np.random.default_rng(0)).tokens


FULL = BenchPlan("default", 16, 25, 5, (1, 16, 64), 10, tune=True, rounds=4, first_step_models=("tiny", "default"))
QUICK = BenchPlan("tiny", 8, 8, 3, (1,), 3, tune=False, sizes=(BenchSize("tiny", 4, 4, 1),))
# Settings tried by the tuning pass, each on top of the harness's defaults (the tuned run is
# `harness train --np 2` with the torch twin).
TUNING_CANDIDATES = (
    {"HOROVOD_CYCLE_TIME": "0.5"},
    {"HOROVOD_CYCLE_TIME": "5"},
    {"HOROVOD_IDLE_WAIT_MS": "0"},  # the build's idle-wait patch off (launch/build_horovod.py)
    {"HARNESS_BENCH_SET": "train.gradient_bucket_mb=0"},  # one allreduce per tensor, as each gradient is ready
    {"HARNESS_BENCH_SET": "train.gradient_bucket_mb=1"},
    {"HARNESS_BENCH_CONTROLLER": "gloo"},
    {PIN_VARIABLE: "0"},  # the ranks unpinned (`harness train --no-pin-cores`)
)


def stats(samples: list[float]) -> dict:
    """Median and interquartile range of ``samples``."""
    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "n": len(samples)}


def one_thread_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment with one compute thread per process (per-rank throughput is what scales)."""
    return {**os.environ, **rank_environment(1, cores=1), **(extra or {})}


def last_json(output: str) -> dict:
    """The last JSON object printed, with horovodrun's ``[rank]<stdout>:`` prefix removed."""
    for line in reversed(output.splitlines()):
        forwarded = RANK_LINE.match(line)
        line = (forwarded["text"] if forwarded else line).strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON result in the output:\n{output[-3000:]}")


def controller(env: dict[str, str]) -> str:
    """The Horovod controller the bench runs the harness and the minimal loops on: `harness train`'s
    default for one machine; HARNESS_BENCH_CONTROLLER in ``env`` forces one."""
    default = default_controller(on_hosts=False, elastic=False, mpi=mpi_built(), notice=lambda line: None)
    return env.get("HARNESS_BENCH_CONTROLLER") or default


def run_program(num_ranks: int, program: list[str], env: dict[str, str], timeout: float = 900) -> dict:
    """``program`` on ``num_ranks`` local ranks (plain Python for one rank) under the controller the
    harness would take; its last JSON line."""
    cmd = program if num_ranks == 1 else horovodrun_command(num_ranks, program, controller=controller(env))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return last_json(proc.stdout)


GEMM_SETUP = {  # a framework on ``threads`` threads, then a @ b: the timed product
    "torch": "import torch\ntorch.set_num_threads({threads}); a = torch.randn({n}, {n}); b = torch.randn({n}, {n})\n"
    "product = lambda: a @ b\n",
    "tf": "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'\nimport tensorflow as tf\n"
    "tf.config.threading.set_intra_op_parallelism_threads({threads})\n"
    "tf.config.threading.set_inter_op_parallelism_threads(1)\n"
    "a = tf.random.normal(({n}, {n})); b = tf.random.normal(({n}, {n}))\nproduct = lambda: (a @ b).numpy()\n",
}


def matmul_peak_gflops(threads: int, n: int = 2048, repeats: int = 10) -> dict:
    """fp32 GEMM throughput on ``threads`` threads, the faster framework's: the machine's practical
    peak. They can differ twofold (torch's MKL takes its AVX2 path on AMD CPUs, TF's oneDNN uses
    AVX-512), and MFU against the slower would exceed 1."""
    timing = (
        "import json, time\nproduct()\nt = []\n"
        f"for _ in range({repeats}):\n"
        "    s = time.perf_counter(); product(); t.append(time.perf_counter() - s)\n"
        "print(json.dumps({'times': t}))\n"
    )
    measured = {}
    for framework, setup in GEMM_SETUP.items():
        code = setup.format(threads=threads, n=n) + timing
        times = run_program(1, [sys.executable, "-c", code], one_thread_env())["times"]
        measured[framework] = stats([2 * n**3 / t / 1e9 for t in times])
    best = max(measured, key=lambda framework: measured[framework]["median"])
    frameworks = {framework: m["median"] for framework, m in measured.items()}
    return {**measured[best], "threads": threads, "n": n, "framework": best, "frameworks": frameworks}


def memcpy_gbps(size_mb: float = 64, repeats: int = 10) -> dict:
    src = np.ones(int(size_mb * MB), np.uint8)
    dst = np.empty_like(src)
    times = []
    for _ in range(repeats + 1):
        began = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - began)
    return stats([size_mb * MB / t / 1e9 for t in times[1:]])


def harness_step_times(
    framework: str, num_ranks: int, plan: BenchPlan | BenchSize, family: str, env: dict[str, str], tokens_per_row: int
) -> list[float]:
    """Seconds per step of `harness train`, read from its metrics log, warm-up dropped.
    HARNESS_BENCH_SET in ``env`` adds one --set; HARNESS_BENCH_CONTROLLER picks --controller."""
    tokens_per_step = plan.batch_size * num_ranks * tokens_per_row
    with tempfile.TemporaryDirectory(prefix="bench-") as run_dir:
        sets = [f"train.steps={plan.steps}", f"train.batch_size={plan.batch_size}", "eval.every=0"]
        # The run's closing evaluation is outside the timed steps: one example keeps it from taking
        # the bench's time (the whole validation split took 140 s after `gpt2-small`'s 8 steps at np=1).
        sets += ["checkpoint.every=0", "eval.max_examples=1"]
        sets += [env["HARNESS_BENCH_SET"]] if "HARNESS_BENCH_SET" in env else []
        cmd = train_argv(framework, run_dir, plan.model, num_ranks, sets, family=family)
        cmd += ["--controller", controller(env)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, cwd=ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")
        records = [json.loads(line) for line in Path(run_dir, "metrics.jsonl").read_text().splitlines()]
    return [tokens_per_step / r["tokens_per_s"] for r in records if "tokens_per_s" in r][plan.warmup :]


def minimal_step_times(framework: str, num_ranks: int, plan: BenchPlan, env: dict[str, str]) -> list[float]:
    """The minimal Horovod loop's seconds per step, warm-up dropped."""
    script = ROOT / "benchmarks" / f"minimal_{framework}.py"
    program = [sys.executable, str(script), plan.family, plan.model, str(plan.batch_size), str(plan.steps)]
    return run_program(num_ranks, program, env)["step_times"][plan.warmup :]


def peer_command(framework: str, num_ranks: int, model: str, family: str, batch_size: int, steps: int) -> list[str]:
    """The framework's own data-parallel peer on ``num_ranks`` ranks of this machine: torchrun +
    benchmarks/ddp_torch.py, or benchmarks/mwms_tf.py (MultiWorkerMirroredStrategy)."""
    args = [family, model, str(batch_size), str(steps)]
    if framework == "torch":
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(num_ranks)]
        return [*torchrun, str(ROOT / "benchmarks" / "ddp_torch.py"), *args]
    return [sys.executable, str(ROOT / "benchmarks" / "mwms_tf.py"), str(num_ranks), *args]


def ddp_step_times(num_ranks: int, plan: BenchPlan | BenchSize, family: str, env: dict[str, str]) -> list[float]:
    """torch's own DistributedDataParallel on the minimal loop (benchmarks/ddp_torch.py, torchrun,
    Gloo): the peer a user would otherwise pick. Seconds per step, warm-up dropped."""
    cmd = peer_command("torch", num_ranks, plan.model, family, plan.batch_size, plan.steps)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return last_json(proc.stdout)["step_times"][plan.warmup :]


def mwms_step_times(num_ranks: int, plan: BenchPlan, family: str, env: dict[str, str]) -> list[float]:
    """TensorFlow's own MultiWorkerMirroredStrategy on the minimal TF loop (benchmarks/mwms_tf.py):
    the TF user's alternative to Horovod. Seconds per step, warm-up dropped."""
    program = peer_command("tf", num_ranks, plan.model, family, plan.batch_size, plan.steps)
    return run_program(1, program, env)["step_times"][plan.warmup :]


def whole_process(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall seconds of ``cmd`` and the largest peak RSS (MiB) among its processes, measured from a
    fresh wrapper process, whose RUSAGE_CHILDREN holds its largest descendant's peak."""
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "began = time.perf_counter()\n"
        "proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
        "seconds = time.perf_counter() - began\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "tail = proc.stderr[-3000:]\n"
        "print(json.dumps({'code': proc.returncode, 'seconds': seconds, 'peak_mib': peak, 'err': tail}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], env=env, capture_output=True, text=True, cwd=ROOT)
    result = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {"code": proc.returncode}
    if result["code"] != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result['code']}):\n{result.get('err', proc.stderr[-3000:])}")
    return {"seconds": result["seconds"], "peak_mib": result["peak_mib"]}


def first_step_harness(framework: str, model: str, family: str) -> list[dict[str, float]]:
    """Time to the first step of `harness train`: one step of 16 windows per rank on 2 ranks, whole
    process, as a user runs it (this environment, the launcher's defaults). One sample: seconds and
    the largest process's peak RSS."""
    with tempfile.TemporaryDirectory(prefix="bench-") as run_dir:
        sets = ["eval.every=0", "train.batch_size=16"]
        argv = [*train_argv(framework, run_dir, model, 2, sets, family=family), "--steps", "1"]
        return [whole_process(argv, dict(os.environ))]


def first_step_peer(framework: str, model: str, family: str) -> list[dict[str, float]]:
    """The same for the framework's own data-parallel peer (torchrun + DDP, or the strategy)."""
    return [whole_process(peer_command(framework, 2, model, family, 16, 1), dict(os.environ))]


def take_turns(sides: dict[Hashable, Callable[[], list]], rounds: int) -> dict[Hashable, list]:
    """Each side's samples (what its call returns, a list) pooled over ``rounds`` rounds, the order
    reversed every other round (A B C, C B A, A B C ...), so a machine that speeds up or slows down
    during a round weighs on every side alike rather than on whichever runs last."""
    samples = {name: [] for name in sides}
    for round_ in range(rounds):
        for name in list(sides) if round_ % 2 == 0 else reversed(list(sides)):
            samples[name] += sides[name]()
    return samples


def size_table(
    family: Family, sizes: tuple[BenchSize, ...], env: dict[str, str], peak_per_rank: float, log, rounds: int
) -> list[dict]:
    """Harness torch and DDP at np=1 and 2 on each of ``sizes`` (presets of ``family``): the four
    (side, np) take turns over ``rounds`` rounds and each one's steps are pooled, as in the main runs."""
    rows = []
    for size in sizes:
        config = build_run_config(family, size.model)
        log(f"size {size.model}: harness torch and DDP, np=1 and 2, {rounds} round(s) ...")
        tokens_per_row = tokens_per_example(family, config)
        params = sum(int(np.prod(shape)) for shape in family.state_shapes(config.model).values())
        row = {"model": size.model, "params": params, "batch_size": size.batch_size}
        row["tokens"] = tokens_per_row
        row["steps"], row["warmup"] = size.steps, size.warmup
        sides = {}
        for n in (1, 2):
            sides["harness", n] = partial(harness_step_times, "torch", n, size, family.spec, env, tokens_per_row)
            sides["ddp", n] = partial(ddp_step_times, n, size, family.spec, env)
        samples = take_turns(sides, rounds)
        timings = {name: {n: samples[name, n] for n in (1, 2)} for name in ("harness", "ddp")}
        flops_per_token = family.flops_per_token(config.model) if family.flops_per_token else None
        for name, times in timings.items():
            step = {n: float(np.median(times[n])) for n in (1, 2)}
            tokens_per_s = {n: size.batch_size * n * tokens_per_row / step[n] for n in (1, 2)}
            row[name] = {
                "step_s_np1": step[1],
                "step_s_np2": step[2],
                "tokens_per_s_np2": tokens_per_s[2],
                "mfu_np2": tokens_per_s[2] * flops_per_token / (2 * peak_per_rank) if flops_per_token else None,
                # The share of the 2-rank step not spent computing as one rank does alone.
                "communication_share": max(0.0, 1 - step[1] / step[2]),
                "scaling_efficiency": step[1] / step[2],
            }
        rows.append(row)
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def allreduce_gbps(kind: str, plan: BenchPlan, env: dict[str, str]) -> dict[str, dict]:
    """Per size: algorithm bandwidth (bytes reduced / time) of a 2-rank allreduce.

    ``kind``: "horovod" (the harness's path) or "torch_distributed" (torch.distributed with Gloo).
    """
    sizes = [str(float(s)) for s in plan.allreduce_sizes_mb]
    if kind == "horovod":
        script = ROOT / "benchmarks" / "allreduce_horovod.py"
        times = run_program(2, [sys.executable, str(script), str(plan.allreduce_repeats), *sizes], env)
    else:
        script = ROOT / "benchmarks" / "allreduce_torch_distributed.py"
        program = [sys.executable, str(script), "2", str(free_port()), str(plan.allreduce_repeats)]
        times = run_program(1, program + sizes, env)
    return {size: stats([float(size) * MB / t / 1e9 for t in times[size]]) for size in sizes}


def throughput(step_times: list[float], tokens_per_step: int) -> float:
    return tokens_per_step / float(np.median(step_times))


@dataclass(frozen=True)
class Measurements:
    """What run_bench measures with: the functions above by default. A test passes fakes, to check
    what a plan runs and how the document is computed from it without launching anything."""

    matmul_peak_gflops: Callable[[int], dict] = matmul_peak_gflops
    memcpy_gbps: Callable[[], dict] = memcpy_gbps
    harness_step_times: Callable[..., list[float]] = harness_step_times
    minimal_step_times: Callable[..., list[float]] = minimal_step_times
    ddp_step_times: Callable[..., list[float]] = ddp_step_times
    mwms_step_times: Callable[..., list[float]] = mwms_step_times
    size_table: Callable[..., list[dict]] = size_table
    first_step_harness: Callable[..., list[dict[str, float]]] = first_step_harness
    first_step_peer: Callable[..., list[dict[str, float]]] = first_step_peer
    allreduce_gbps: Callable[..., dict[str, dict]] = allreduce_gbps


MEASURE = Measurements()


def run_bench(plan: BenchPlan, log=print, measure: Measurements = MEASURE) -> dict:
    """Measure everything in one run, through ``measure``; returns the bench.json document."""
    family = load_family(plan.family)
    config = build_run_config(family, plan.model)
    flops_per_token = family.flops_per_token(config.model) if family.flops_per_token else None
    tokens_per_row = tokens_per_example(family, config)
    env = one_thread_env()
    raw: dict = {"plan": dataclasses.asdict(plan), "machine": {"cpus": os.cpu_count(), "host": socket.gethostname()}}
    raw["controller"] = controller(env)

    log("matmul peak and memcpy ...")
    raw["matmul_gflops_1_thread"] = measure.matmul_peak_gflops(1)
    raw["matmul_gflops_all_threads"] = measure.matmul_peak_gflops(os.cpu_count() or 1)
    raw["memcpy_gbps"] = measure.memcpy_gbps()
    peak_per_rank = raw["matmul_gflops_1_thread"]["median"] * 1e9

    tuning = []
    if plan.tune:
        largest = str(float(plan.allreduce_sizes_mb[-1]))

        def tuned(candidate: dict[str, str]) -> list[tuple[list[float], float]]:
            """One turn of a candidate: the harness's step times and the largest allreduce's bandwidth."""
            log(f"tuning: {candidate} ...")
            tuned_env = one_thread_env(candidate)
            steps = measure.harness_step_times("torch", 2, plan, plan.family, tuned_env, tokens_per_row)
            return [(steps, measure.allreduce_gbps("horovod", plan, tuned_env)[largest]["median"])]

        # Two rounds taking turns, so drift in the machine's load spreads over every candidate.
        turns = take_turns({i: partial(tuned, candidate) for i, candidate in enumerate(TUNING_CANDIDATES)}, 2)
        for i, candidate in enumerate(TUNING_CANDIDATES):
            tuning.append(
                {
                    "settings": candidate,
                    "allreduce_gbps_largest": stats([gbps for _, gbps in turns[i]]),
                    "harness_torch_np2_step_s": stats([step for steps, _ in turns[i] for step in steps]),
                }
            )
    raw["tuning"] = tuning

    runs = {}
    for num_ranks in (1, 2):
        # Both frameworks take turns too: TF ÷ torch compares runs minutes apart otherwise, and this
        # machine drifts by more than the 5 % that ratio is held to.
        log(f"np={num_ranks}: torch and TF, each its harness, minimal loop and peer, {plan.rounds} round(s) ...")
        tokens_per_step = plan.batch_size * num_ranks * tokens_per_row
        sides = {}
        for framework in ("torch", "tf"):
            peer = measure.ddp_step_times if framework == "torch" else measure.mwms_step_times
            timed = (framework, num_ranks, plan, plan.family, env, tokens_per_row)
            sides[framework, "harness"] = partial(measure.harness_step_times, *timed)
            if family.reference_loops:
                sides[framework, "minimal"] = partial(measure.minimal_step_times, framework, num_ranks, plan, env)
                sides[framework, "peer"] = partial(peer, num_ranks, plan, plan.family, env)
        times = take_turns(sides, plan.rounds)
        for framework in ("torch", "tf"):
            harness_times, minimal_times, peer_times = (
                times.get((framework, side), []) for side in ("harness", "minimal", "peer")
            )
            tokens_per_s = throughput(harness_times, tokens_per_step)
            runs[f"{framework}_np{num_ranks}"] = {
                "harness_step_s": stats(harness_times),
                "minimal_step_s": stats(minimal_times) if minimal_times else None,
                # The framework's own data-parallel peer: torch DDP, TF MultiWorkerMirroredStrategy.
                "peer_step_s": stats(peer_times) if peer_times else None,
                "tokens_per_s": tokens_per_s,
                "mfu": tokens_per_s * flops_per_token / (peak_per_rank * num_ranks) if flops_per_token else None,
            }
    raw["runs"] = runs
    sizes = family.bench_sizes if plan.sizes is None else plan.sizes
    raw["sizes"] = measure.size_table(family, sizes, env, peak_per_rank, log, plan.rounds) if family.bench_sizes else []

    first_steps = {}
    for model in plan.first_step_models if family.reference_loops else ():
        for framework in ("torch", "tf"):
            log(f"time to the first step, {framework} {model}: harness and peer, {plan.rounds} round(s) ...")
            sides = {
                "harness": partial(measure.first_step_harness, framework, model, plan.family),
                "peer": partial(measure.first_step_peer, framework, model, plan.family),
            }
            trials = take_turns(sides, plan.rounds)
            first_steps[f"{framework}_{model}"] = {
                side: {what: stats([run[what] for run in measured]) for what in ("seconds", "peak_mib")}
                for side, measured in trials.items()
            }
    raw["first_step"] = first_steps

    log("allreduce bandwidth: Horovod vs torch.distributed ...")
    raw["allreduce_horovod_gbps"] = measure.allreduce_gbps("horovod", plan, env)
    raw["allreduce_torch_distributed_gbps"] = measure.allreduce_gbps("torch_distributed", plan, env)

    def ratio(a: str, b: str) -> float:
        return runs[a]["harness_step_s"]["median"] / runs[b]["harness_step_s"]["median"]

    result = {}
    for framework in ("torch", "tf"):
        for n in (1, 2):
            run = runs[f"{framework}_np{n}"]
            if run["minimal_step_s"] is not None:
                result[f"overhead_ratio_{framework}_np{n}"] = (
                    run["harness_step_s"]["median"] / run["minimal_step_s"]["median"]
                )
    for n in (1, 2):
        result[f"tf_over_torch_np{n}"] = ratio(f"tf_np{n}", f"torch_np{n}")
    for framework in ("torch", "tf"):
        one, two = runs[f"{framework}_np1"]["tokens_per_s"], runs[f"{framework}_np2"]["tokens_per_s"]
        result[f"scaling_efficiency_{framework}"] = two / (2 * one)
    for framework, peer, prefix in (("torch", "ddp", "vs_ddp"), ("tf", "mwms", "vs_tf_mwms")):
        if runs[f"{framework}_np1"]["peer_step_s"] is None:
            continue
        times = {n: runs[f"{framework}_np{n}"]["peer_step_s"]["median"] for n in (1, 2)}
        for n in (1, 2):
            result[f"{prefix}_np{n}"] = runs[f"{framework}_np{n}"]["harness_step_s"]["median"] / times[n]
        result[f"scaling_efficiency_{peer}"] = times[1] / times[2]  # same per-rank batch: time ratio
    for framework in ("torch", "tf"):
        if runs[f"{framework}_np2"]["mfu"] is not None:
            result[f"mfu_{framework}"] = runs[f"{framework}_np2"]["mfu"]
    for name, sides in first_steps.items():
        harness, peer = sides["harness"], sides["peer"]
        result[f"first_step_vs_peer_{name}"] = harness["seconds"]["median"] / peer["seconds"]["median"]
        result[f"peak_rss_vs_peer_{name}"] = harness["peak_mib"]["median"] / peer["peak_mib"]["median"]
    for size in raw["allreduce_horovod_gbps"]:
        horovod, peer = raw["allreduce_horovod_gbps"][size], raw["allreduce_torch_distributed_gbps"][size]
        result[f"allreduce_vs_torch_distributed_{size_label(size)}"] = horovod["median"] / peer["median"]
    return {**result, "raw": raw}


def size_label(size: str) -> str:
    return f"{float(size):g}mb"


def gemm(peak: dict) -> str:
    """A GEMM peak as the table states it: the faster framework's, and the other's beside it."""
    others = [f"{fw} {gflops:.0f}" for fw, gflops in peak.get("frameworks", {}).items() if fw != peak.get("framework")]
    return f"{peak['median']:.0f} GFLOP/s" + (f" ({peak['framework']}'s; {', '.join(others)})" if others else "")


def markdown_table(bench: dict) -> str:
    raw = bench["raw"]
    plan = raw["plan"]
    lines = [
        f"Family `{plan.get('family', DEFAULT_FAMILY)}`, model `{plan['model']}`, "
        f"{plan['batch_size']} windows per rank, "
        "one thread per rank, "
        f"median of {plan['steps'] - plan['warmup']} steps after {plan['warmup']} warm-up "
        f"(interquartile range in brackets). Machine: {raw['machine']['cpus']} CPUs; fp32 GEMM peak "
        f"{gemm(raw['matmul_gflops_1_thread'])} on 1 thread, "
        f"{gemm(raw['matmul_gflops_all_threads'])} on all; memcpy {raw['memcpy_gbps']['median']:.1f} GB/s. "
        f"Horovod's controller: {raw.get('controller', 'gloo')}.",
        "",
        "| run | harness step (s) | minimal Horovod loop step (s) | peer step (s): torch DDP, TF MWMS "
        "| tokens/s | MFU |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def spread(times: dict | None) -> str:
        return "n/a" if times is None else f"{times['median']:.4f} [{times['q1']:.4f}, {times['q3']:.4f}]"

    for name, run in raw["runs"].items():
        mfu = "n/a" if run["mfu"] is None else f"{run['mfu']:.3f}"
        lines.append(
            f"| {name} | {spread(run['harness_step_s'])} | {spread(run['minimal_step_s'])} "
            f"| {spread(run.get('peer_step_s'))} | {run['tokens_per_s']:,.0f} | {mfu} |"
        )
    if raw.get("sizes"):
        lines += [
            "",
            "| model (parameters, windows per rank × tokens) | harness np=1 / np=2 step (s) | DDP np=1 / np=2 step (s) "
            "| harness ÷ DDP, np=2 | tokens/s np=2, harness / DDP | MFU np=2, harness / DDP "
            "| communication share, harness / DDP | scaling, harness / DDP |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in raw["sizes"]:
            h, d = row["harness"], row["ddp"]
            lines.append(
                f"| `{row['model']}` ({row['params'] / 1e6:.1f} M, {row['batch_size']} × {row.get('tokens', '')}) "
                f"| {h['step_s_np1']:.3f} / {h['step_s_np2']:.3f} | {d['step_s_np1']:.3f} / {d['step_s_np2']:.3f} "
                f"| {h['step_s_np2'] / d['step_s_np2']:.3f} "
                f"| {h['tokens_per_s_np2']:,.0f} / {d['tokens_per_s_np2']:,.0f} "
                f"| {h['mfu_np2']:.2f} / {d['mfu_np2']:.2f} "
                f"| {h['communication_share']:.2f} / {d['communication_share']:.2f} "
                f"| {h['scaling_efficiency']:.2f} / {d['scaling_efficiency']:.2f} |"
            )
    if raw.get("first_step"):
        lines += [
            "",
            "| time to the first step, 2 ranks, whole process | harness (s) | peer (s): torch DDP, TF MWMS "
            "| largest process, harness / peer (MiB) | harness ÷ peer: time / peak RSS |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, sides in raw["first_step"].items():
            h, p = sides["harness"], sides["peer"]
            lines.append(
                f"| {name} | {spread(h['seconds'])} | {spread(p['seconds'])} "
                f"| {h['peak_mib']['median']:.0f} / {p['peak_mib']['median']:.0f} "
                f"| {h['seconds']['median'] / p['seconds']['median']:.2f} "
                f"/ {h['peak_mib']['median'] / p['peak_mib']['median']:.2f} |"
            )
    lines += [
        "",
        "| allreduce, 2 ranks | Horovod (GB/s) | torch.distributed gloo (GB/s) | Horovod ÷ torch.distributed |",
        "| --- | --- | --- | --- |",
    ]
    for size, h in raw["allreduce_horovod_gbps"].items():
        peer = raw["allreduce_torch_distributed_gbps"][size]
        lines.append(
            f"| {float(size):g} MB | {h['median']:.3f} | {peer['median']:.3f} | {h['median'] / peer['median']:.2f} |"
        )
    lines += ["", "| key | value | goal |", "| --- | --- | --- |"]
    goals = {
        "overhead_ratio": "≤ 1.02",
        "tf_over_torch": "≤ 1.05",
        "allreduce_vs": "≥ 1",
        "vs_ddp": "≤ 1.00",
        "vs_tf_mwms": "≤ 1.00",
        "scaling": "≥ 0.95",
        "mfu": "≥ 0.40",
        "first_step_vs_peer": "≤ 1.3",
        "peak_rss_vs_peer": "≤ 1.3",
    }
    for key, value in bench.items():
        if key != "raw":
            goal = next((g for prefix, g in goals.items() if key.startswith(prefix)), "")
            lines.append(f"| `{key}` | {value:.3f} | {goal} |")
    if raw["tuning"]:
        lines += [
            "",
            f"| Horovod setting tried | allreduce {plan['allreduce_sizes_mb'][-1]:g} MB (GB/s) "
            "| harness torch np=2 step (s) |",
            "| --- | --- | --- |",
        ]
        for trial in raw["tuning"]:
            setting = ", ".join(f"{k}={v}" for k, v in trial["settings"].items())
            step = trial["harness_torch_np2_step_s"]
            lines.append(
                f"| {setting} | {trial['allreduce_gbps_largest']['median']:.3f} "
                f"| {step['median']:.4f} [{step['q1']:.4f}, {step['q3']:.4f}] |"
            )
    return "\n".join(lines) + "\n"
