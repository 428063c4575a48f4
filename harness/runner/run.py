"""One rank's run: the family's task and data, the backend, the checkpoint to resume, the loop's
hooks, Horovod's broadcast (or its elastic loop), and the summary."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harness.contract.backend import Backend
from harness.contract.config import RunConfig
from harness.contract.distributed import Distributed
from harness.contract.family import Family
from harness.contract.frameworks import framework_module
from harness.contract.state import state_checksum
from harness.data.corpus import data_tokenizer
from harness.data.order import batch_order
from harness.loop.checkpointer import Checkpointer
from harness.loop.evaluator import Evaluator
from harness.loop.preemption import Preempted
from harness.loop.reporter import Reporter, Throughput
from harness.loop.tensorboard import TensorBoard
from harness.loop.trainer import Hook, LoopPosition, NonFiniteError, Trainer
from harness.loop.watchdog import HANG_TIMEOUT_VARIABLE, Watchdog
from harness.runner.resume import initial_state, open_resume_point
from harness.storage.checkpoint import tokenizer_record
from harness.storage.rundir import hold_run_dir

SUMMARY_FILE = "summary.json"


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
    final_val_metrics: dict[str, float]
    tokens_per_second: float
    peak_rss_mib_per_rank: list[float]
    weights_sha256_per_rank: list[str]
    hostname_per_rank: list[str]
    skipped_steps: int
    checkpoint: str


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
    directory for the whole run (``harness.storage.rundir``): a second job on it is refused.

    SIGTERM or SIGINT during training (on any rank) stops every rank after the same step; rank 0
    saves it and every rank raises ``Preempted``. Before the first step there is nothing to save,
    and these signals end the process as usual.
    """
    family.enter_environment()  # before the framework loads (TF_USE_LEGACY_KERAS, say)
    dist: Distributed = framework_module(framework, "distributed").init_distributed()
    # Each rank initialises from its own seed; the broadcast makes rank 0's state everyone's. Built
    # before the run directory is touched: a model whose parameters do not map onto the family's
    # neutral state is refused (ValueError) with nothing written.
    seed = config.train.seed + dist.rank
    backend = framework_module(framework, "backend").make_backend(family, config, dist, seed)
    with hold_run_dir(run_dir) if dist.rank == 0 else contextlib.nullcontext():
        return train_rank(
            dist, backend, framework, family, config, Path(run_dir), resume, progress, elastic, hooks, tensorboard
        )


def train_rank(
    dist: Distributed,
    backend: Backend,
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
    position = LoopPosition.start(checkpoint, batch_order(t, len(train_split), dist.size))
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
        files={tokenizer.file_name: tokenizer.path} if tokenizer.path else None,
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
            from harness.loop.elastic import ElasticCommit, ElasticTrainingState, elastic_run

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
