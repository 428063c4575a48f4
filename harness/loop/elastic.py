"""Elastic training: the state Horovod's elastic driver commits, restores and syncs.

Framework-free: the weights and AdamW state go through the backend's neutral export/import, the
loop position is a small dataclass, and the broadcasts are the backend's and Horovod's own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from horovod.common.elastic import State as HorovodState
from horovod.common.elastic import run_fn
from horovod.common.exceptions import HorovodInternalError

from harness.contract.backend import Backend
from harness.contract.distributed import Distributed, is_lost_rank_error
from harness.loop.trainer import Hook

T = TypeVar("T")
WAITING_DIR = ".elastic-waiting"  # RUN_DIR/WAITING_DIR/<host>-<pid>: a survivor waiting for the job to re-form


class ElasticTrainingState(HorovodState):
    """Weights, AdamW state and loop position (step, data offset): what a rollback returns to."""

    def __init__(self, backend: Backend, dist: Distributed, position):
        super().__init__(bcast_object=dist.hvd.broadcast_object, get_rank=dist.hvd.rank)
        self.backend, self.dist, self.position = backend, dist, position
        self.save()

    def save(self) -> None:
        model, optimizer = self.backend.export_model_state(), self.backend.export_optimizer_state()
        self._saved = (dataclasses.replace(self.position), model, optimizer)

    def restore(self) -> None:
        position, model, optimizer = self._saved
        self.position = dataclasses.replace(position)
        self.backend.import_model_state(model)
        self.backend.import_optimizer_state(optimizer)

    def sync(self) -> None:
        # Horovod: rank 0's weights, AdamW state and position become every rank's, joiners included.
        # (Horovod's elastic loop also retries a sync that fails because another rank was lost.)
        with lost_rank_as_internal_error():
            self.backend.broadcast_initial_state()
            self.position = self.position.broadcast(self.dist)
        self.save()


class ElasticCommit(Hook):
    """Commit the elastic state every ``every`` steps; the last hook, after rank 0's writes."""

    def __init__(self, state: ElasticTrainingState, every: int):
        self.state, self.every = state, every

    def after_step(self, report, position) -> None:
        if report.step % self.every == 0:
            self.state.commit()  # Horovod: in-memory snapshot; raises if hosts changed


def elastic_run(
    train: Callable[[ElasticTrainingState], T],
    state: ElasticTrainingState,
    dist: Distributed,
    run_dir: Path,
    before_waiting: Callable[[ElasticTrainingState], None],
) -> T:
    """``train(state)`` under Horovod's elastic loop: on a lost or added rank, every rank restores
    the last commit, Horovod re-forms the job, and ``train`` runs again from there.

    A survivor calls ``before_waiting`` with the restored commit (rank 0 saves it: if the job
    cannot re-form, --resume continues from there), then, while it waits for the job to re-form,
    says so on stderr and in ``run_dir``'s WAITING_DIR; if the wait times out (fewer hosts than
    --min-np), the launcher counts them.

    Horovod's own loop (``run_fn``) with its reset (shutdown, init), as both bindings'
    ``hvd.elastic.run`` do; TF's adds a wrapper that returns None on op errors it does not
    recognise, so the lost-rank check here is the one place that decides.
    """

    @functools.wraps(train)
    def attempt(current: ElasticTrainingState) -> T:
        with lost_rank_as_internal_error():
            return train(current)

    def reset() -> None:
        before_waiting(state)
        with waiting_to_reform(Path(run_dir), state.position.step):
            dist.hvd.shutdown()
            dist.hvd.init()

    return run_fn(attempt, reset)(state)


@contextlib.contextmanager
def lost_rank_as_internal_error() -> Iterator[None]:
    """Re-raise a collective that failed because a rank was lost as HorovodInternalError, whatever
    the framework raised (TF wraps Horovod's and Gloo's errors in op errors)."""
    try:
        yield
    except HorovodInternalError:
        raise
    except Exception as err:
        if is_lost_rank_error(err):
            raise HorovodInternalError(err) from err
        raise


@contextlib.contextmanager
def waiting_to_reform(run_dir: Path, step: int) -> Iterator[None]:
    """Mark this process as a survivor waiting for the job to re-form, for the block's duration."""
    name = f"{socket.gethostname()}-{os.getpid()}"
    marker = run_dir / WAITING_DIR / name
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"since": time.time(), "step": step}))
    print(f"{name}: a rank was lost or added; waiting for the job to re-form from step {step}", file=sys.stderr)
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def collect_waiting_survivors(run_dir: Path) -> list[dict]:
    """The survivors still marked as waiting (those the job ended while they waited); removes the marks."""
    records = []
    for marker in sorted((Path(run_dir) / WAITING_DIR).glob("*")):
        with contextlib.suppress(OSError, ValueError):
            records.append(json.loads(marker.read_text()))
    shutil.rmtree(Path(run_dir) / WAITING_DIR, ignore_errors=True)
    return records
