"""The Trainer driven by a fake backend: no framework, no Horovod, milliseconds per test."""

import os
import signal
from dataclasses import dataclass, field

import numpy as np
import pytest

from harness.contract.backend import StepOutcome, StepResult
from harness.contract.config import TrainConfig
from harness.contract.task import Batch
from harness.data.causal_lm import CausalLMTask
from harness.data.corpus import encode, train_val_split
from harness.loop.trainer import Hook, LoopPosition, NonFiniteError, Trainer, due, learning_rate

SEQ_LEN = 4
TRAIN_SPLIT, _ = train_val_split(encode("abcdefghijklmnopqrstuvwxyz" * 20), SEQ_LEN, 0.1)


@dataclass
class FakeDist:
    rank: int = 0
    size: int = 1


@dataclass
class Clock:
    """The trainer's clock in these tests: time passes only when a test advances it."""

    now: float = 0.0

    def perf_counter(self) -> float:
        return self.now


@dataclass
class FakeBackend:
    """Answers each step with the next scripted outcome (APPLIED once the script runs out)."""

    script: list[StepOutcome] = field(default_factory=list)
    calls: list[tuple[Batch, float]] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    peer_stops_at: int = 0  # another rank asks to stop during this (1-based) step
    clock: Clock = field(default_factory=Clock)
    step_seconds: list[float] = field(default_factory=list)  # how long each step takes on the clock

    def seed_step(self, seed: int) -> None:
        self.seeds.append(seed)

    def train_step(self, batch: Batch, lr: float, stop_requested: bool = False) -> StepResult:
        self.clock.now += self.step_seconds.pop(0) if self.step_seconds else 0.0
        self.calls.append((batch, lr))
        outcome = self.script.pop(0) if self.script else StepOutcome.APPLIED
        loss = float("nan") if outcome is StepOutcome.NONFINITE else 1.0 / len(self.calls)
        stop = stop_requested or len(self.calls) == self.peer_stops_at  # what the allreduce would say
        return StepResult(loss, 0.5, outcome, loss_scale=2.0, stop=stop)


class Recorder(Hook):
    def __init__(self):
        self.events = []

    def on_train_start(self, trainer, position):
        self.events.append(("start", position.step))

    def before_step(self, step):
        self.events.append(("before", step))

    def after_step(self, report, position):
        self.events.append(("after", report.step, report.outcome.value, position.skipped))

    def on_train_end(self):
        self.events.append(("end",))


def trainer(backend, hooks=(), dist=None, **train) -> Trainer:
    config = TrainConfig(**{"steps": 3, "batch_size": 2, "warmup_steps": 1, **train})
    task, dist = CausalLMTask(SEQ_LEN), dist or FakeDist()
    return Trainer(backend, task, TRAIN_SPLIT, config, dist, hooks, clock=backend.clock.perf_counter)


def test_fit_runs_each_step_between_its_hooks_and_returns_the_last_report():
    backend, recorder = FakeBackend(), Recorder()
    loop = trainer(backend, [recorder], accumulation_steps=2)
    position = LoopPosition()
    last = loop.fit(position)
    assert recorder.events == [
        ("start", 0),
        ("before", 0), ("after", 1, "applied", 0),
        ("before", 1), ("after", 2, "applied", 0),
        ("before", 2), ("after", 3, "applied", 0),
        ("end",),
    ]  # fmt: skip
    assert position.step == 3 and last.step == 3 and last.loss == pytest.approx(1 / 3)
    assert last.tokens == 2 * 2 * SEQ_LEN  # 2 micro-batches of 2 windows
    batch, lr = backend.calls[0]
    assert batch.inputs.shape == batch.targets.shape == (2, 2, SEQ_LEN)  # (k, B, T)
    assert [lr for _, lr in backend.calls] == [learning_rate(s, loop.config, 1) for s in range(3)]
    assert len(set(backend.seeds)) == 3  # a dropout seed per step


def test_a_reports_seconds_time_its_own_step_and_not_the_hooks_between_steps():
    took = [0.25, 0.5, 2.0]
    backend, seconds = FakeBackend(step_seconds=list(took)), []

    class Between(Hook):  # evaluations and checkpoints: not the step's time, so not in its tokens/s
        def before_step(self, step):
            backend.clock.now += 100.0

        def after_step(self, report, position):
            seconds.append(report.seconds)
            backend.clock.now += 1000.0

    trainer(backend, [Between()]).fit(LoopPosition())
    assert seconds == pytest.approx(took)


def test_a_nonfinite_step_stops_the_fit_naming_the_step_and_the_hooks_still_end():
    backend, recorder = FakeBackend([StepOutcome.APPLIED, StepOutcome.NONFINITE]), Recorder()
    with pytest.raises(NonFiniteError, match=r"non-finite loss \(nan\) or gradient norm \(0.5\) at step 2"):
        trainer(backend, [recorder]).fit(LoopPosition())
    assert recorder.events[-2:] == [("before", 1), ("end",)]


def test_skip_nonfinite_counts_the_step_and_goes_on():
    backend, recorder = FakeBackend([StepOutcome.NONFINITE]), Recorder()
    position = LoopPosition()
    trainer(backend, [recorder], skip_nonfinite=True).fit(position)
    assert ("after", 1, "nonfinite", 1) in recorder.events
    assert position.step == 3 and position.skipped == 1


def test_an_fp16_overflow_is_skipped_by_design_even_without_skip_nonfinite():
    backend = FakeBackend([StepOutcome.OVERFLOW, StepOutcome.OVERFLOW])
    position = LoopPosition()
    trainer(backend).fit(position)
    assert position.step == 3 and position.skipped == 2


def test_a_hook_that_raises_ends_the_fit_after_its_step_and_the_position_says_where():
    class Interrupt(Hook):  # what an elastic commit does when the hosts change
        def after_step(self, report, position):
            if report.step == 2:
                raise RuntimeError("hosts changed")

    recorder, position = Recorder(), LoopPosition()
    with pytest.raises(RuntimeError, match="hosts changed"):
        trainer(FakeBackend(), [recorder, Interrupt()]).fit(position)
    assert position.step == 2 and recorder.events[-1] == ("end",)


def test_a_fit_from_a_position_continues_the_data_order():
    whole, resumed = FakeBackend(), FakeBackend()
    trainer(whole, steps=6).fit(LoopPosition())
    position = LoopPosition()
    trainer(FakeBackend(), steps=3).fit(position)
    trainer(resumed, steps=6).fit(position)  # the next fit starts where the first stopped
    for (expected, _), (got, _) in zip(whole.calls[3:], resumed.calls, strict=True):
        np.testing.assert_array_equal(expected.inputs, got.inputs)


def test_batch_randomness_is_a_function_of_seed_step_and_rank():
    class NoisyTask(CausalLMTask):  # masks out a random half of the targets, as masked LM tasks do
        def batch(self, split, indices, rng):
            inputs, targets = split.windows(indices)
            return Batch(inputs, targets, (rng.random(targets.shape) < 0.5).astype(np.float32))

    def weights_seen(rank: int, seed: int) -> list[np.ndarray]:
        backend = FakeBackend()
        config = TrainConfig(steps=3, batch_size=2, seed=seed)
        Trainer(backend, NoisyTask(SEQ_LEN), TRAIN_SPLIT, config, FakeDist(rank, 2)).fit(LoopPosition())
        return [batch.weights for batch, _ in backend.calls]

    first, again = weights_seen(0, seed=1), weights_seen(0, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], first[1])  # a new draw each step
    assert not np.array_equal(first[0], weights_seen(1, seed=1)[0])  # and each rank
    assert not np.array_equal(first[0], weights_seen(0, seed=2)[0])  # and each seed


def test_periodic_work_is_due_every_n_steps_and_at_the_last():
    assert [s for s in range(1, 11) if due(4, s, 10)] == [4, 8, 10]
    assert [s for s in range(1, 11) if due(0, s, 10)] == [10]


def test_a_resumed_metrics_log_keeps_its_steps_and_drops_a_line_torn_by_a_kill(tmp_path):
    from harness.loop.reporter import METRICS_FILE, Reporter

    lines = ['{"step": 1, "loss": 2.0}', '{"step": 2, "loss": 1.9}', '{"step": 3, "loss": 1.8}', '{"step": 4, "lo']
    (tmp_path / METRICS_FILE).write_text("\n".join(lines))
    reporter = Reporter(tmp_path, steps=5, progress=False, log_loss_scale=False)
    reporter.on_train_start(None, LoopPosition(step=2))
    reporter.on_train_end()
    assert (tmp_path / METRICS_FILE).read_text().splitlines() == lines[:2]


class SendSignal(Hook):
    """Sends this process ``signum`` before step ``at`` (1-based), as a scheduler or Ctrl-C would."""

    def __init__(self, signum: int, at: int, times: int = 1):
        self.signum, self.at, self.times = signum, at, times

    def before_step(self, step):
        if step + 1 == self.at:
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_fit_after_the_step_that_carried_it(signum):
    recorder, position = Recorder(), LoopPosition()
    before = signal.getsignal(signum)
    loop = trainer(FakeBackend(), [recorder, SendSignal(signum, at=3)], steps=10)
    last = loop.fit(position)
    assert last.stop and position.step == 3 and recorder.events[-2:] == [("after", 3, "applied", 0), ("end",)]
    assert loop.stop.signal == signum
    assert signal.getsignal(signum) == before  # handlers are the loop's only while it runs


def test_a_stop_asked_on_another_rank_ends_this_rank_after_the_same_step():
    position = LoopPosition()
    loop = trainer(FakeBackend(peer_stops_at=4), steps=10)
    assert loop.fit(position).stop and position.step == 4 and not loop.stop.requested


def test_a_second_ctrl_c_interrupts_at_once():
    with pytest.raises(KeyboardInterrupt):
        trainer(FakeBackend(), [SendSignal(signal.SIGINT, at=2, times=2)], steps=10).fit(LoopPosition())
