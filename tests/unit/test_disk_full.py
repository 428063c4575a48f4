"""A full disk, for real (a small tmpfs): metrics.jsonl never ends torn, a failed checkpoint leaves
nothing behind, and both say which path found no space."""

import json

import numpy as np
import pytest
from filesystems import fill_disk

from harness.loop.reporter import Reporter
from harness.loop.trainer import LoopPosition
from harness.storage.checkpoint import list_checkpoints, save_checkpoint
from harness.storage.rundir import DiskFullError, disk_full_as_error


def test_a_metrics_line_that_does_not_fit_is_cut_off_and_named(small_disk):
    reporter = Reporter(small_disk, steps=10**6, progress=False, log_loss_scale=False)
    reporter.on_train_start(trainer=None, position=LoopPosition())
    reporter.write({"step": 1, "loss": 1.0})
    fill_disk(small_disk)
    written = 1
    with pytest.raises(DiskFullError) as raised:
        for step in range(2, 100_000):  # the log's last page fills up, then a write falls short
            reporter.write({"step": step, "loss": 1.0 / step, "padding": "x" * 100})
            written += 1
    reporter.on_train_end()
    lines = (small_disk / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(1, written + 1))  # every line whole
    assert str(raised.value).startswith(f"no space left on device writing {small_disk / 'metrics.jsonl'} (0.0 MiB")


def test_a_checkpoint_that_does_not_fit_is_removed_and_the_older_ones_stay(small_disk):
    state = {"w": np.ones((64, 64), np.float32)}
    first = save_checkpoint(small_disk, 5, state, state, {}, keep=3)
    fill_disk(small_disk, leave_bytes=8192)  # less than one checkpoint (2 x 16 KiB of tensors)
    with pytest.raises(DiskFullError) as raised, disk_full_as_error(small_disk, last_checkpoint=first):
        save_checkpoint(small_disk, 10, state, state, {}, keep=3)
    assert [step for step, _ in list_checkpoints(small_disk)] == [5]
    assert [p.name for p in (small_disk / "checkpoints").iterdir()] == ["step_5"]  # no half-written leftovers
    message = str(raised.value)
    assert "no space left on device writing " + str(small_disk / "checkpoints" / ".step_10.tmp-") in message
    assert message.endswith(f"the last complete checkpoint is {first}: free some space, then --resume")
