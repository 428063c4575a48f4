"""Byte data, the global batch order shared by both frameworks, and the learning-rate schedule."""

import math
from dataclasses import replace

import numpy as np
import pytest

from harness.contract.config import DataConfig, TrainConfig
from harness.data.corpus import decode, encode, load_corpus, train_val_split
from harness.data.order import BatchOrder
from harness.loop.trainer import learning_rate


def test_default_corpus_is_cpython_documentation():
    tokens = load_corpus(DataConfig())
    assert tokens.dtype == np.uint8
    assert 400_000 < len(tokens) < 2_000_000
    assert "lambda" in decode(tokens[:200_000])


def test_user_files_and_a_missing_one(tmp_path):
    (tmp_path / "a.txt").write_text("héllo")
    assert decode(load_corpus(DataConfig(paths=(str(tmp_path / "a.txt"),)))) == "héllo"
    with pytest.raises(ValueError, match="data file '.*nope.txt' does not exist"):
        load_corpus(DataConfig(paths=(str(tmp_path / "nope.txt"),)))


def test_split_windows_are_next_token_pairs():
    tokens = encode("abcdefghijklmnopqrstuvwxyz" * 10)
    train, val = train_val_split(tokens, seq_len=8, val_fraction=0.2)
    assert len(train.tokens) + len(val.tokens) == len(tokens)
    x, y = train.windows(np.array([0, 3]))
    assert x.shape == y.shape == (2, 8) and x.dtype == np.int64
    assert np.array_equal(x[:, 1:], y[:, :-1])
    assert np.array_equal(x[1], tokens[24:32])
    with pytest.raises(ValueError, match="too small for seq_len 8"):
        train_val_split(encode("tiny corpus"), seq_len=8, val_fraction=0.2)


def test_each_epoch_is_one_permutation_sharded_over_ranks():
    order = BatchOrder(num_windows=103, windows_per_rank=5, world_size=2, seed=3)
    assert order.steps_per_epoch == 10  # 103 // 10; the last 3 windows of each epoch are skipped
    epoch0 = np.concatenate([order.indices(s, r) for s in range(10) for r in range(2)])
    assert len(set(epoch0.tolist())) == 100
    assert set(epoch0.tolist()) <= set(range(103))
    # Rank slices are disjoint within a step and each is batch_size long.
    assert not set(order.indices(4, 0)) & set(order.indices(4, 1))
    # A new epoch reshuffles; a fresh object (another framework, a resumed run) repeats the order.
    assert not np.array_equal(order.indices(10, 0), order.indices(0, 0))
    again = BatchOrder(num_windows=103, windows_per_rank=5, world_size=2, seed=3)
    assert np.array_equal(again.indices(13, 1), order.indices(13, 1))
    assert order.position(13) == (1, 3)


def test_one_rank_with_a_double_batch_reads_what_two_ranks_read():
    two = BatchOrder(num_windows=64, windows_per_rank=4, world_size=2, seed=0)
    one = BatchOrder(num_windows=64, windows_per_rank=8, world_size=1, seed=0)
    for step in range(10):
        assert np.array_equal(one.indices(step, 0), np.concatenate([two.indices(step, 0), two.indices(step, 1)]))


def test_too_little_data_for_one_global_batch():
    with pytest.raises(ValueError, match="fewer than one global batch \\(16 per rank x 4 ranks\\)"):
        BatchOrder(num_windows=50, windows_per_rank=16, world_size=4, seed=0)


def test_warmup_then_cosine_to_the_floor():
    config = TrainConfig(lr=1e-3, warmup_steps=10, steps=110, min_lr_ratio=0.1)
    assert learning_rate(0, config, 1) == pytest.approx(1e-4)
    assert learning_rate(9, config, 1) == pytest.approx(1e-3)
    assert learning_rate(60, config, 1) == pytest.approx(1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert learning_rate(110, config, 1) == pytest.approx(1e-4)
    lrs = [learning_rate(s, config, 1) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))
    linear = TrainConfig(lr=1e-3, warmup_steps=0, steps=10, lr_scaling="linear")
    assert learning_rate(0, linear, 4) == pytest.approx(4e-3)


def test_an_epoch_reads_every_window_once_even_when_the_world_size_changes():
    from harness.loop.trainer import LoopPosition

    position, read = LoopPosition(), []
    for world_size, steps in ((2, 3), (1, 4), (3, 2)):  # ranks lost, then added, mid-epoch
        order = BatchOrder(num_windows=100, windows_per_rank=4, world_size=world_size, seed=7)
        for _ in range(steps):
            # Every rank holds its own copy of the position and advances it alike.
            read += [i for rank in range(world_size) for i in replace(position).next_batch(order, rank)]
            position.next_batch(order, 0)
    assert position.epoch == 0 and position.consumed == len(read) == 3 * 8 + 4 * 4 + 2 * 12
    assert len(set(read)) == len(read)  # nothing read twice
    permutation = BatchOrder(100, 4, 1, seed=7).window_slice(0, 0, 100)
    assert sorted(read) == sorted(permutation[: len(read)])  # nothing skipped


def test_a_fixed_world_size_reads_what_the_step_based_order_reads():
    from harness.loop.trainer import LoopPosition

    order, position = BatchOrder(num_windows=103, windows_per_rank=5, world_size=2, seed=3), LoopPosition()
    for step in range(25):  # 10 steps per epoch: crosses two epoch boundaries
        batches = [replace(position).next_batch(order, rank) for rank in range(2)]
        position.next_batch(order, 0)
        assert all(np.array_equal(batches[r], order.indices(step, r)) for r in range(2))
    assert position.epoch == 2
