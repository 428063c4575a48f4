"""The data-parallel training loop: framework-free and family-free.

``Trainer.train_step`` is one small function (learning rate, batch, seeds, the backend's step, the
non-finite policy); ``Trainer.fit`` repeats it and runs everything periodic as hooks
(harness/hooks.py). ``run`` puts one rank's run together: the family's task and data, the backend,
the checkpoint to resume, the hooks, Horovod's broadcast (or its elastic loop), and the summary.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, astuple, dataclass
from pathlib import Path

import numpy as np

from harness.backend import Backend, StepOutcome, step_seed
from harness.checkpoint import (
    TOKENIZER_FILE,
    Checkpoint,
    check_tokenizer,
    initial_state_from,
    latest_checkpoint,
    list_checkpoints,
    remove_partial_checkpoints,
    tokenizer_record,
)
from harness.config import RunConfig, TrainConfig
from harness.data import BatchOrder, Split, data_tokenizer
from harness.distributed import Distributed
from harness.family import Family
from harness.frameworks import framework_module
from harness.hooks import METRICS_FILE, Checkpointer, Evaluator, Hook, Hooks, Reporter, Throughput, Watchdog
from harness.preemption import StopRequest, exit_code, signal_name
from harness.rundir import hold_run_dir
from harness.state import State, state_checksum
from harness.tasks import Task
from harness.tensorboard import TensorBoard
from harness.tokenizer import Tokenizer

__all__ = [
    "METRICS_FILE",
    "SUMMARY_FILE",
    "ElasticSettings",
    "NonFiniteError",
    "Preempted",
    "RunSummary",
    "Trainer",
    "run",
]

SUMMARY_FILE = "summary.json"
HANG_TIMEOUT_VARIABLE = "HARNESS_HANG_TIMEOUT"  # seconds without a step before a rank gives up
BATCH_STREAM = 1  # a step's batch randomness draws from (BATCH_STREAM, seed, step, rank)


class NonFiniteError(RuntimeError):
    """A step's loss or gradient norm was NaN or infinite (and train.skip_nonfinite is off)."""

    def __init__(self, step: int, loss: float, grad_norm: float, last_checkpoint: Path | None = None):
        super().__init__(step, loss, grad_norm)
        self.step, self.loss, self.grad_norm, self.last_checkpoint = step, loss, grad_norm, last_checkpoint

    def __str__(self) -> str:
        return (
            f"non-finite loss ({self.loss}) or gradient norm ({self.grad_norm}) at step {self.step}; the weights "
            f"were not updated. Last good checkpoint: {self.last_checkpoint or 'none'}. Lower train.lr, or pass "
            "--set train.skip_nonfinite=true to skip such steps"
        )


class Preempted(RuntimeError):
    """A stop signal ended the run early: every rank stopped after the same step, which rank 0 saved."""

    def __init__(self, step: int, signum: int | None, checkpoint: Path | None):
        super().__init__(step, signum, checkpoint)
        self.step, self.signum, self.checkpoint = step, signum, checkpoint

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum)

    def __str__(self) -> str:
        return (
            f"stopped by {signal_name(self.signum)} after step {self.step}; checkpoint {self.checkpoint}: "
            "--resume continues from it"
        )


def learning_rate(step: int, config: TrainConfig, world_size: int) -> float:
    """Linear warmup over ``warmup_steps``, then cosine decay to ``min_lr_ratio * lr`` at ``steps``."""
    peak = config.lr * (world_size if config.lr_scaling == "linear" else 1)
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    floor = peak * config.min_lr_ratio
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class LoopPosition:
    """Where training stands: what a checkpoint or an elastic commit must carry to continue exactly.

    The one owner of the position: it reads it from a checkpoint (``start``), writes it into one
    (``record``), broadcasts it (``broadcast``) and advances it (``next_batch``, ``Trainer``).
    """

    step: int = 0  # optimizer steps done
    epoch: int = 0
    consumed: int = 0  # windows of this epoch's permutation already read, by all ranks together
    skipped: int = 0  # steps skipped (non-finite, or an fp16 overflow)

    @classmethod
    def start(cls, checkpoint: Checkpoint | None, order: BatchOrder) -> LoopPosition:
        if checkpoint is None:
            return cls()
        if "data_position" in checkpoint.trainer:
            epoch, consumed = checkpoint.trainer["data_position"]
        else:  # written before positions were recorded: derive it from the step (fixed world size)
            epoch, in_epoch = order.position(checkpoint.step - 1)
            consumed = (in_epoch + 1) * order.global_batch
        return cls(checkpoint.step, epoch, consumed, checkpoint.trainer.get("skipped_steps", 0))

    def record(self) -> dict:
        """The position as checkpoints' trainer.json carries it."""
        return {"epoch": self.epoch, "data_position": [self.epoch, self.consumed], "skipped_steps": self.skipped}

    def broadcast(self, dist: Distributed) -> LoopPosition:
        """Rank 0's position, on every rank."""
        # Horovod: the start position travels with the state, so every rank resumes at the same batch.
        values = dist.broadcast(np.array(astuple(self), np.int64), root_rank=0, name="position")
        return LoopPosition(*(int(x) for x in values))

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


@dataclass(frozen=True)
class StepReport:
    """What one step did, for the hooks."""

    step: int  # 1-based: the number of steps done after it
    lr: float
    loss: float  # mean over ranks
    grad_norm: float
    outcome: StepOutcome
    loss_scale: float
    epoch: int
    world_size: int
    tokens: int  # input tokens of the global batch
    seconds: float
    stop: bool = False  # a rank asked to stop: every rank ends after this step (rank 0 saves it)

    @property
    def applied(self) -> bool:
        return self.outcome is StepOutcome.APPLIED


class Trainer:
    """Optimizer steps from a position to ``train.steps``; everything periodic runs as ``hooks``.

    A ``stop`` request (a signal, or a hook) ends a fit early, after the same step on every rank.
    """

    def __init__(
        self,
        backend: Backend,
        task: Task,
        train_split: Split,
        config: TrainConfig,
        dist: Distributed,
        hooks: Iterable[Hook] = (),
        stop: StopRequest | None = None,
    ):
        self.backend, self.task, self.train_split, self.config, self.dist = backend, task, train_split, config, dist
        self.hooks = Hooks(hooks)
        self.stop = stop or StopRequest()

    def batch_order(self) -> BatchOrder:
        """The global order at the current world size (an elastic job may change it between fits)."""
        return BatchOrder(len(self.train_split), self.config.windows_per_rank, self.dist.size, self.config.seed)

    def train_step(self, position: LoopPosition, order: BatchOrder) -> StepReport:
        """One optimizer step from ``position``, which it advances."""
        began = time.perf_counter()
        config, rank, step = self.config, self.dist.rank, position.step
        lr = learning_rate(step, config, self.dist.size)
        indices = position.next_batch(order, rank)
        rng = np.random.default_rng([BATCH_STREAM, config.seed, step, rank])
        batch = self.task.batch(self.train_split, indices, rng).micro_batches(config.accumulation_steps)
        self.backend.seed_step(step_seed(config.seed, step, rank))
        # Horovod: this rank's stop request is reduced with the loss; all ranks get the same answer.
        result = self.backend.train_step(batch, lr, self.stop.requested)
        if result.outcome is StepOutcome.NONFINITE and not config.skip_nonfinite:
            raise NonFiniteError(step + 1, result.loss, result.grad_norm)
        position.step = step + 1
        position.skipped += result.outcome is not StepOutcome.APPLIED
        seconds = time.perf_counter() - began
        tokens = batch.inputs.size * self.dist.size
        return StepReport(
            position.step, lr, result.loss, result.grad_norm, result.outcome, result.loss_scale,
            position.epoch, self.dist.size, tokens, seconds, result.stop,
        )  # fmt: skip

    def fit(self, position: LoopPosition) -> StepReport | None:
        """Steps until ``train.steps``, or until a step every rank agrees to stop after; returns the
        last step's report (None if there was none)."""
        order, report = self.batch_order(), None
        # SIGTERM/SIGINT only request a stop while steps run: outside, a stopped rank loses nothing.
        with self.stop.on_signals():
            self.hooks.on_train_start(self, position)
            try:
                while position.step < self.config.steps:
                    self.hooks.before_step(position.step)
                    report = self.train_step(position, order)
                    self.hooks.after_step(report, position)
                    if report.stop:
                        break
            finally:
                self.hooks.on_train_end()
        return report


@dataclass(frozen=True)
class ElasticSettings:
    """An elastic job (``horovodrun --min-np/--max-np``): weights, AdamW state and loop position are
    committed in memory every ``commit_every`` steps; when a rank fails or ranks join, every rank
    rolls back to the last commit and goes on at the new size."""

    commit_every: int

    def __post_init__(self) -> None:
        if self.commit_every < 1:
            raise ValueError(f"--commit-every must be at least 1, got {self.commit_every}")


@dataclass(frozen=True)
class Replicas:
    """Each rank's weight checksum, peak RSS (MiB) and host name, in rank order."""

    weights_sha256: list[str]
    peak_rss_mib: list[float]
    hostnames: list[str]


def gather_replicas(backend: Backend, dist: Distributed) -> Replicas:
    # Horovod: every replica must end bitwise equal; gather each rank's checksum to prove it.
    checksum = state_checksum(backend.export_model_state())
    sums = dist.allgather(np.frombuffer(bytes.fromhex(checksum), np.uint8)[None], name="weights_sha256")
    peak = dist.allgather(np.array([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0]), name="peak_rss")
    host = np.frombuffer(socket.gethostname().encode()[:64].ljust(64), np.uint8)[None]
    hosts = dist.allgather(host, name="host")
    return Replicas(
        [row.tobytes().hex() for row in sums],
        [round(float(x), 1) for x in peak],
        [row.tobytes().decode().rstrip() for row in hosts],
    )


@dataclass
class RunSummary:
    framework: str
    family: str
    world_size: int
    steps: int
    final_loss: float
    final_val_loss: float
    final_val_perplexity: float
    final_val_metrics: dict[str, float]
    tokens_per_second: float
    peak_rss_mib_per_rank: list[float]
    weights_sha256_per_rank: list[str]
    hostname_per_rank: list[str]
    skipped_steps: int
    checkpoint: str


def resume_point(run_dir: Path, family: Family, config: RunConfig, resume: bool) -> Checkpoint | None:
    """The verified checkpoint to resume from, or None for a fresh run; ``ValueError`` when the
    run directory and the request disagree (so nothing in it is touched)."""
    if resume:
        checkpoint = latest_checkpoint(run_dir, family, config.model)
        check_tokenizer(checkpoint, data_tokenizer(config.data))
        if checkpoint.step >= config.train.steps:
            raise ValueError(
                f"{run_dir} is already at step {checkpoint.step} of {config.train.steps}; "
                "pass a larger --steps to train further"
            )
        return checkpoint
    if list_checkpoints(run_dir):
        raise ValueError(f"{run_dir} already holds checkpoints; pass --resume, or choose a new --run-dir")
    return None


def open_resume_point(run_dir: Path, family: Family, config: RunConfig, resume: bool) -> Checkpoint | None:
    """``resume_point``, saying on stderr what it skipped and removed."""
    checkpoint = resume_point(run_dir, family, config, resume)
    if checkpoint is not None:
        for reason in checkpoint.skipped:
            print(f"skipped a checkpoint: {reason}", file=sys.stderr, flush=True)
        removed = remove_partial_checkpoints(run_dir)
        if removed:
            print(f"removed what an interrupted writer left: {', '.join(removed)}", file=sys.stderr, flush=True)
        print(f"resuming from {checkpoint.path} (step {checkpoint.step})", file=sys.stderr, flush=True)
    return checkpoint


def initial_state(init_from: str, family: Family, fresh: State, tokenizer: Tokenizer) -> State:
    """``fresh`` with the tensors of ``init_from``'s newest checkpoint, saying on stderr what it took."""
    state, origin, left_fresh = initial_state_from(Path(init_from), family, fresh, tokenizer)
    print(
        f"initialised {len(fresh) - len(left_fresh)} tensors from {origin}; fresh: {', '.join(left_fresh) or 'none'}",
        file=sys.stderr,
        flush=True,
    )
    return state


def run(
    framework: str,
    family: Family,
    config: RunConfig,
    run_dir: Path | str,
    *,
    resume: bool = False,
    progress: bool = True,
    elastic: ElasticSettings | None = None,
    hooks: Iterable[Hook] = (),
    tensorboard: bool = True,
) -> RunSummary | None:
    """Train ``family`` with ``framework`` under Horovod in this process: one rank of a horovodrun
    job, or alone at size 1. Rank 0 returns the summary (also written to RUN_DIR/summary.json),
    the other ranks None. ``hooks`` run after the loop's own, on every rank. With ``tensorboard``
    rank 0 also writes TensorBoard event files into RUN_DIR/tb. Rank 0 holds the run
    directory for the whole run (``harness.rundir``): a second job on it is refused.

    SIGTERM or SIGINT during training (on any rank) stops every rank after the same step; rank 0
    saves it and every rank raises ``Preempted``. Before the first step there is nothing to save,
    and these signals end the process as usual.
    """
    dist: Distributed = framework_module(framework, "distributed").init_distributed()
    with hold_run_dir(run_dir) if dist.rank == 0 else contextlib.nullcontext():
        return train_rank(dist, framework, family, config, Path(run_dir), resume, progress, elastic, hooks, tensorboard)


def train_rank(
    dist: Distributed,
    framework: str,
    family: Family,
    config: RunConfig,
    run_dir: Path,
    resume: bool,
    progress: bool,
    elastic: ElasticSettings | None,
    hooks: Iterable[Hook],
    tensorboard: bool,
) -> RunSummary | None:
    """``run``'s work on one rank, once the job has the run directory."""
    is_main, t = dist.rank == 0, config.train
    task = family.task(config.model)
    train_split, val_split = task.splits(config.data)
    checkpoint = open_resume_point(run_dir, family, config, resume) if is_main else None

    # Each rank initialises from its own seed; the broadcast makes rank 0's state everyone's.
    backend = framework_module(framework, "backend").make_backend(family, config, dist, t.seed + dist.rank)
    order = BatchOrder(len(train_split), t.windows_per_rank, dist.size, t.seed)
    position = LoopPosition.start(checkpoint, order)
    tokenizer = data_tokenizer(config.data)
    if checkpoint is not None:
        backend.import_model_state(checkpoint.model)
        backend.import_optimizer_state(checkpoint.optimizer)
    elif t.init_from and is_main:  # the broadcast below gives every rank rank 0's weights
        fresh = backend.export_model_state()
        backend.import_model_state(initial_state(t.init_from, family, fresh, tokenizer))

    meter = Throughput()
    reporter = Reporter(run_dir, t.steps, progress, log_loss_scale=t.precision == "fp16")
    board = TensorBoard(run_dir, log_loss_scale=t.precision == "fp16") if tensorboard and is_main else None
    evaluator = Evaluator(backend, task, val_split, config.eval, t, [reporter, *([board] if board else [])])
    record = {
        "framework": framework, "family": family.spec, "config": config.to_dict(),
        "tokenizer": tokenizer_record(tokenizer),
    }  # fmt: skip
    checkpointer = Checkpointer(
        run_dir, backend, config.checkpoint.every, config.checkpoint.keep, t.steps, record,
        last_saved=checkpoint.path if checkpoint is not None else None,
        files={TOKENIZER_FILE: tokenizer.path} if tokenizer.path else None,
    )  # fmt: skip
    loop_hooks: list[Hook] = [meter]
    hang_timeout = float(os.environ.get(HANG_TIMEOUT_VARIABLE, "0"))
    if hang_timeout > 0 and dist.size > 1 and elastic is None:
        loop_hooks.append(Watchdog(dist.rank, hang_timeout))
    # Rank 0 logs, evaluates and writes before any commit: a commit may end an elastic attempt.
    loop_hooks += [*([reporter, evaluator, checkpointer] if is_main else []), *([board] if board else []), *hooks]
    trainer = Trainer(backend, task, train_split, t, dist, loop_hooks)

    try:
        if elastic is not None:
            from harness.elastic import ElasticCommit, ElasticTrainingState, elastic_run

            state = ElasticTrainingState(backend, dist, position)
            trainer.hooks.append(ElasticCommit(state, elastic.commit_every))

            def fit_and_gather(current: ElasticTrainingState) -> Replicas:
                trainer.fit(current.position)
                return gather_replicas(backend, dist)  # collectives too: a rank lost here also rolls back

            def save_commit(current: ElasticTrainingState) -> None:
                if is_main and current.position.step > checkpointer.last_step:
                    checkpointer.save(current.position)

            # Horovod: run until done; on a failed or added rank, roll back to the last commit and go on.
            replicas = elastic_run(fit_and_gather, state, dist, run_dir, before_waiting=save_commit)
            position = state.position
        else:
            position = position.broadcast(dist)
            backend.broadcast_initial_state()
            trainer.fit(position)
            replicas = gather_replicas(backend, dist)
    except NonFiniteError as err:
        err.last_checkpoint = checkpointer.last_saved
        raise
    if len(set(replicas.weights_sha256)) != 1:
        raise RuntimeError(f"replicas diverged: the ranks' weight checksums differ after training: {replicas}")
    if position.step < t.steps:  # every rank agreed to stop early
        raise Preempted(position.step, trainer.stop.signal, checkpointer.last_saved if is_main else None)
    if not is_main:
        return None
    val_loss = evaluator.last.get("val_loss", float("nan"))
    summary = RunSummary(
        framework=framework,
        family=family.spec,
        world_size=dist.size,
        steps=t.steps,
        final_loss=meter.last_loss,
        final_val_loss=val_loss,
        final_val_perplexity=math.exp(val_loss),
        final_val_metrics=dict(evaluator.last),
        tokens_per_second=meter.tokens_per_second,
        peak_rss_mib_per_rank=replicas.peak_rss_mib,
        weights_sha256_per_rank=replicas.weights_sha256,
        hostname_per_rank=replicas.hostnames,
        skipped_steps=position.skipped,
        checkpoint=str(checkpointer.last_saved or ""),
    )
    tmp = run_dir / f".{SUMMARY_FILE}.tmp"
    tmp.write_text(json.dumps(asdict(summary), indent=2) + "\n")
    os.replace(tmp, run_dir / SUMMARY_FILE)  # a reader never sees half a summary
    return summary
