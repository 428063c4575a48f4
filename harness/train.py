"""The data-parallel training loop: framework-free; the framework lives behind harness.backend."""

from __future__ import annotations

import json
import math
import os
import resource
import socket
import sys
import threading
import time
from dataclasses import asdict, astuple, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from harness.backend import Backend, step_seed
from harness.checkpoint import (
    Checkpoint,
    latest_checkpoint,
    list_checkpoints,
    remove_partial_checkpoints,
    save_checkpoint,
)
from harness.config import RunConfig, TrainConfig
from harness.data import BatchOrder, Split, load_corpus, train_val_split
from harness.distributed import Distributed
from harness.frameworks import framework_module
from harness.state import state_checksum

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
HANG_TIMEOUT_VARIABLE = "HARNESS_HANG_TIMEOUT"  # seconds without a step before a rank gives up


class NonFiniteError(RuntimeError):
    """A step's loss or gradient norm was NaN or infinite (and train.skip_nonfinite is off)."""


def learning_rate(step: int, config: TrainConfig, world_size: int) -> float:
    """Linear warmup over ``warmup_steps``, then cosine decay to ``min_lr_ratio * lr`` at ``steps``."""
    peak = config.lr * (world_size if config.lr_scaling == "linear" else 1)
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    floor = peak * config.min_lr_ratio
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def evaluate(backend: Backend, split: Split, batch_size: int) -> float:
    """Mean next-token loss over every window of ``split`` (this process alone, no collectives)."""
    total, count = 0.0, 0
    for start in range(0, split.num_windows, batch_size):
        indices = np.arange(start, min(start + batch_size, split.num_windows))
        inputs, targets = split.windows(indices)
        total += backend.eval_loss(inputs, targets) * len(indices)  # equal-length windows: weight by rows
        count += len(indices)
    return total / count


def prepare_data(config: RunConfig) -> tuple[Split, Split]:
    return train_val_split(load_corpus(config.data), config.model.block_size, config.data.val_fraction)


def resume_point(run_dir: Path, config: RunConfig, resume: bool) -> Checkpoint | None:
    """The verified checkpoint to resume from, or None for a fresh run; ``ValueError`` when the
    run directory and the request disagree (so nothing in it is touched)."""
    if resume:
        checkpoint = latest_checkpoint(run_dir, config.model)
        if checkpoint.step >= config.train.steps:
            raise ValueError(
                f"{run_dir} is already at step {checkpoint.step} of {config.train.steps}; "
                "pass a larger --steps to train further"
            )
        return checkpoint
    if list_checkpoints(run_dir):
        raise ValueError(f"{run_dir} already holds checkpoints; pass --resume, or choose a new --run-dir")
    return None


class Watchdog:
    """Ends this rank when no training step completes for ``timeout`` seconds.

    A rank waiting in an allreduce for a peer that is stuck or gone cannot return on its own; the
    watchdog says why in one line and exits the process, and horovodrun then stops the others.
    """

    def __init__(self, rank: int, timeout: float):
        self.rank, self.timeout = rank, timeout
        self.step, self.last = 0, time.monotonic()
        self._stopped = threading.Event()
        threading.Thread(target=self._watch, daemon=True, name="harness-watchdog").start()

    def beat(self, step: int) -> None:
        self.step, self.last = step, time.monotonic()

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(min(1.0, self.timeout / 10)):
            if time.monotonic() - self.last > self.timeout:
                print(
                    f"Error: rank {self.rank} completed no step for {self.timeout:.0f} s (last: step {self.step}): "
                    "another rank stopped responding or died (--hang-timeout)",
                    file=sys.stderr,
                    flush=True,
                )
                os._exit(1)


class Progress:
    """Rank 0's progress: a tqdm bar on a terminal; under horovodrun (a pipe) a plain line every 10%."""

    def __init__(self, total: int, start: int, enabled: bool):
        self.total, self.enabled = total, enabled
        self.every = max(1, total // 10)
        self.bar = tqdm(total=total, initial=start, unit="step") if enabled and sys.stderr.isatty() else None
        self.began, self.start = time.perf_counter(), start

    def update(self, step: int, loss: float, tokens_per_s: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_per_s:.0f}")
        elif self.enabled and (step % self.every == 0 or step == self.total):
            elapsed = time.perf_counter() - self.began
            eta = elapsed / (step - self.start) * (self.total - step)
            print(
                f"step {step}/{self.total}  loss {loss:.4f}  {tokens_per_s:,.0f} tokens/s  eta {eta:.0f}s", flush=True
            )

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class MetricsLog:
    """Rank 0's JSON-lines metrics file; a resumed run keeps only the lines up to its checkpoint."""

    def __init__(self, path: Path, resume_step: int | None):
        self.path = path
        kept = []
        if resume_step is not None and path.exists():
            kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= resume_step]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, path)
        self._file = path.open("a")

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


@dataclass
class RunSummary:
    framework: str
    world_size: int
    steps: int
    final_loss: float
    final_val_loss: float
    final_val_perplexity: float
    tokens_per_second: float
    peak_rss_mib_per_rank: list[float]
    weights_sha256_per_rank: list[str]
    hostname_per_rank: list[str]
    skipped_steps: int
    checkpoint: str


@dataclass
class LoopPosition:
    """Where training stands: what a checkpoint or an elastic commit must carry to continue exactly."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    consumed: int = 0  # windows of this epoch's permutation already read, by all ranks together
    skipped: int = 0  # non-finite steps skipped

    def next_batch(self, order: BatchOrder, rank: int) -> np.ndarray:
        """This rank's window indices for the next step; advances past the whole global batch.

        Counting windows, not steps, keeps the epoch's order intact when the world size changes
        (elastic): no window of the epoch is skipped or read twice.
        """
        if self.consumed + order.global_batch > order.num_windows:  # too few left: next epoch
            self.epoch, self.consumed = self.epoch + 1, 0
        indices = order.window_slice(self.epoch, self.consumed + rank * order.batch_size, order.batch_size)
        self.consumed += order.global_batch
        return indices


def start_position(checkpoint: Checkpoint | None, order: BatchOrder) -> LoopPosition:
    if checkpoint is None:
        return LoopPosition()
    if "data_position" in checkpoint.trainer:
        epoch, consumed = checkpoint.trainer["data_position"]
    else:  # written before positions were recorded: derive it from the step (fixed world size)
        epoch, in_epoch = order.position(checkpoint.step - 1)
        consumed = (in_epoch + 1) * order.global_batch
    return LoopPosition(checkpoint.step, epoch, consumed, checkpoint.trainer.get("skipped_steps", 0))


def run(
    framework: str,
    config: RunConfig,
    run_dir: Path,
    resume: bool = False,
    progress: bool = True,
    elastic_commit_every: int = 0,
) -> RunSummary | None:
    """Train under Horovod in this process (one rank of a horovodrun job, or alone at size 1).

    With ``elastic_commit_every`` > 0 the job is elastic (``horovodrun --min-np/--max-np``): the
    weights, AdamW state and loop position are committed in memory every that many steps, and
    when a rank fails or ranks join, every rank rolls back to the last commit and goes on.
    """
    dist: Distributed = framework_module(framework, "distributed").init_distributed()
    run_dir = Path(run_dir)
    train_split, val_split = prepare_data(config)
    t = config.train
    batch_windows = t.batch_size * t.accumulation_steps  # k micro-batches per rank and step

    def batch_order() -> BatchOrder:  # depends on the world size, which elastic jobs may change
        return BatchOrder(train_split.num_windows, batch_windows, dist.size, t.seed)

    checkpoint = resume_point(run_dir, config, resume) if dist.rank == 0 else None
    if checkpoint is not None:
        for reason in checkpoint.skipped:
            print(f"skipped a checkpoint: {reason}", file=sys.stderr, flush=True)
        removed = remove_partial_checkpoints(run_dir)
        if removed:
            print(f"removed what an interrupted writer left: {', '.join(removed)}", file=sys.stderr, flush=True)
        print(f"resuming from {checkpoint.path} (step {checkpoint.step})", file=sys.stderr, flush=True)

    # Each rank initialises from its own seed; the broadcast makes rank 0's state everyone's.
    backend = framework_module(framework, "backend").make_backend(config, dist, t.seed + dist.rank)
    position = start_position(checkpoint, batch_order())
    if checkpoint is not None:
        backend.import_model_state(checkpoint.model)
        backend.import_optimizer_state(checkpoint.optimizer)
    last_saved = checkpoint.path if checkpoint is not None else None
    outcome = {"loss": float("nan"), "val_loss": float("nan"), "trained_time": 0.0, "trained_steps": 0}

    def train_steps(position: LoopPosition) -> None:
        """Steps from ``position`` to ``train.steps``, with rank 0's metrics, evaluation and checkpoints."""
        nonlocal last_saved
        is_main = dist.rank == 0
        order = batch_order()
        if is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
        # A resumed or rolled-back run keeps only the metrics up to where it continues from.
        metrics = MetricsLog(run_dir / METRICS_FILE, position.step or None) if is_main else None
        tokens_per_step = batch_windows * dist.size * config.model.block_size
        bar = Progress(t.steps, position.step, enabled=is_main and progress)
        hang_timeout = float(os.environ.get(HANG_TIMEOUT_VARIABLE, "0"))
        watchdog = Watchdog(dist.rank, hang_timeout) if hang_timeout > 0 and dist.size > 1 and not elastic else None
        first = position.step
        try:
            while position.step < t.steps:
                if watchdog is not None:
                    watchdog.beat(position.step)
                began = time.perf_counter()
                step = position.step
                lr = learning_rate(step, t, dist.size)
                inputs, targets = train_split.windows(position.next_batch(order, dist.rank))  # (k * B, T) each
                micro_batches = (t.accumulation_steps, t.batch_size, config.model.block_size)
                backend.seed_step(step_seed(t.seed, step, dist.rank))
                result = backend.train_step(inputs.reshape(micro_batches), targets.reshape(micro_batches), lr)
                # Under fp16 a finite loss with a non-finite gradient is the loss scale overflowing:
                # the scaler skipped the step and lowered the scale, as designed.
                overflow = t.precision == "fp16" and math.isfinite(result.loss)
                if not result.applied:  # every rank decides alike: the loss and the norm are reduced values
                    if not (t.skip_nonfinite or overflow):
                        raise NonFiniteError(
                            f"non-finite loss ({result.loss}) or gradient norm ({result.grad_norm}) at step "
                            f"{step + 1}; the weights were not updated. Last good checkpoint: "
                            f"{last_saved or 'none'}. Lower train.lr, or pass --set train.skip_nonfinite=true "
                            "to skip such steps"
                        )
                    position.skipped += 1
                position.step = done = step + 1
                outcome["loss"] = result.loss  # mean over ranks
                elapsed = time.perf_counter() - began
                if step > first:  # the first step traces/allocates: keep it out of the throughput
                    outcome["trained_time"] += elapsed
                    outcome["trained_steps"] += 1
                if is_main:  # metrics first: a commit may end this attempt (hosts changed)
                    record = {"step": done, "loss": result.loss, "lr": lr, "grad_norm": result.grad_norm}
                    record.update(epoch=position.epoch, skipped=not result.applied, world_size=dist.size)
                    if t.precision == "fp16":
                        record["loss_scale"] = result.loss_scale
                    record.update(tokens_per_s=tokens_per_step / elapsed, time=round(time.time(), 3))
                    metrics.write(record)
                    bar.update(done, result.loss, record["tokens_per_s"])
                    final = done == t.steps
                    if (config.eval.every and done % config.eval.every == 0) or final:
                        val_loss = outcome["val_loss"] = evaluate(backend, val_split, config.eval.batch_size)
                        metrics.write({"step": done, "val_loss": val_loss, "val_perplexity": math.exp(val_loss)})
                        bar.write(f"step {done}: val_loss {val_loss:.4f} (perplexity {math.exp(val_loss):.2f})")
                    if (config.checkpoint.every and done % config.checkpoint.every == 0) or final:
                        trainer = {"framework": framework, "world_size": dist.size, "epoch": position.epoch}
                        trainer.update(
                            data_position=[position.epoch, position.consumed], skipped_steps=position.skipped
                        )
                        trainer["config"] = config.to_dict()
                        last_saved = save_checkpoint(
                            run_dir,
                            done,
                            backend.export_model_state(),
                            backend.export_optimizer_state(),
                            trainer,
                            config.checkpoint.keep,
                        )
                if elastic and done % elastic_commit_every == 0:
                    state.commit()  # Horovod: in-memory snapshot; raises if hosts changed
        finally:
            bar.close()
            if watchdog is not None:
                watchdog.stop()
            if metrics is not None:
                metrics.close()

    elastic = elastic_commit_every > 0

    def gather_replicas() -> tuple[list[str], np.ndarray, list[str]]:
        """Each rank's weight checksum, peak RSS (MiB) and host name, in rank order."""
        # Horovod: every replica must end bitwise equal; gather each rank's checksum to prove it.
        checksum = state_checksum(backend.export_model_state())
        sums = dist.allgather(np.frombuffer(bytes.fromhex(checksum), np.uint8)[None], name="weights_sha256")
        peak = dist.allgather(np.array([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0]), name="peak_rss")
        host = np.frombuffer(socket.gethostname().encode()[:64].ljust(64), np.uint8)[None]
        hosts = dist.allgather(host, name="host")
        return [row.tobytes().hex() for row in sums], peak, [row.tobytes().decode().rstrip() for row in hosts]

    if elastic:
        from harness.elastic import ElasticTrainingState, elastic_run

        state = ElasticTrainingState(backend, dist, position)

        def train_and_gather(current: ElasticTrainingState) -> tuple[list[str], np.ndarray, list[str]]:
            train_steps(current.position)
            return gather_replicas()  # collectives too: a rank lost here also rolls back

        # Horovod: run until done; on a failed or added rank, roll back to the last commit and go on.
        per_rank, peak, hostnames = elastic_run(train_and_gather, state, dist)
        position = state.position
    else:
        # Horovod: the start position travels with the state, so every rank resumes at the same batch.
        position.step, position.epoch, position.consumed, position.skipped = (
            int(x) for x in dist.broadcast(np.array(astuple(position), np.int64), root_rank=0, name="position")
        )
        backend.broadcast_initial_state()
        train_steps(position)
        per_rank, peak, hostnames = gather_replicas()
    if len(set(per_rank)) != 1:
        raise RuntimeError(f"replicas diverged: the ranks' weight checksums differ after training: {per_rank}")
    if dist.rank != 0:
        return None
    tokens_per_step = batch_windows * dist.size * config.model.block_size
    trained_time, trained_steps = outcome["trained_time"], outcome["trained_steps"]
    summary = RunSummary(
        framework=framework,
        world_size=dist.size,
        steps=t.steps,
        final_loss=outcome["loss"],
        final_val_loss=outcome["val_loss"],
        final_val_perplexity=math.exp(outcome["val_loss"]),
        tokens_per_second=tokens_per_step * trained_steps / trained_time if trained_time else float("nan"),
        peak_rss_mib_per_rank=[round(float(x), 1) for x in peak],
        weights_sha256_per_rank=per_rank,
        hostname_per_rank=hostnames,
        skipped_steps=position.skipped,
        checkpoint=str(last_saved) if last_saved else "",
    )
    tmp = run_dir / f".{SUMMARY_FILE}.tmp"
    tmp.write_text(json.dumps(asdict(summary), indent=2) + "\n")
    os.replace(tmp, run_dir / SUMMARY_FILE)  # a reader never sees half a summary
    return summary
