"""Gradient buckets: which tensors each grouped allreduce carries (harness.contract.backend.gradient_buckets)."""

import pytest

from harness.contract.backend import gradient_buckets
from harness.contract.config import TrainConfig

MB = 2**20


def test_buckets_fill_in_backward_order_and_close_at_the_size():
    sizes = [("embed", 3 * MB), ("block.0", 2 * MB), ("block.1", 2 * MB), ("head", 1 * MB)]
    # The backward pass produces the head's gradient first; a bucket closes once it reaches 2 MB.
    assert gradient_buckets(sizes, 2) == [["head", "block.1"], ["block.0"], ["embed"]]


def test_a_model_smaller_than_one_bucket_has_one():
    sizes = [("a", MB), ("b", MB)]
    assert gradient_buckets(sizes, 25) == [["b", "a"]]


def test_zero_puts_every_tensor_alone():
    sizes = [("a", 10), ("b", 0), ("c", 5)]
    assert gradient_buckets(sizes, 0) == [["c"], ["b"], ["a"]]


def test_every_tensor_lands_in_exactly_one_bucket():
    sizes = [(i, (i * 7919) % 1000 * 1024) for i in range(50)]
    buckets = gradient_buckets(sizes, 0.5)
    assert sorted(key for bucket in buckets for key in bucket) == list(range(50))
    assert all(sum(dict(sizes)[k] for k in bucket) >= 0.5 * MB for bucket in buckets[:-1])


def test_a_negative_bucket_size_is_refused():
    with pytest.raises(ValueError, match=r"train.gradient_bucket_mb must be >= 0, received -1"):
        TrainConfig(gradient_bucket_mb=-1)
