"""Each rank pins the GPU of its local rank. No GPU exists here, so CUDA/TF device queries are faked."""

import pytest

from harness.contract.distributed import gpu_for_local_rank


def test_one_gpu_per_local_rank():
    assert [gpu_for_local_rank(r, 8) for r in range(8)] == list(range(8))
    assert gpu_for_local_rank(0, 0) is None  # no GPU: run on the CPU
    assert gpu_for_local_rank(5, 0) is None


def test_more_ranks_than_gpus_on_a_host_is_an_error():
    with pytest.raises(ValueError, match=r"local rank 2 has no GPU of its own: this host has 2 GPU\(s\)"):
        gpu_for_local_rank(2, 2)


def test_torch_sets_the_local_ranks_gpu_current(monkeypatch):
    import torch

    from models_torch.distributed import select_device

    assert select_device(0) == torch.device("cpu")  # this machine has no CUDA
    made_current = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", made_current.append)
    assert select_device(2) == torch.device("cuda", 2)
    assert made_current == [2]
    with pytest.raises(ValueError, match="local rank 4 has no GPU"):
        select_device(4)


def test_tf_shows_each_rank_only_its_own_gpu_with_memory_growth(monkeypatch):
    import tensorflow as tf

    from models_tf.distributed import select_device

    assert select_device(0) == "/CPU:0"  # this machine has no GPU
    gpus = ["GPU:0", "GPU:1", "GPU:2"]  # stand-ins for PhysicalDevice objects
    visible, growth = [], []
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.config, "set_visible_devices", lambda device, kind: visible.append((device, kind)))
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda device, on: growth.append((device, on)))
    assert select_device(1) == "/GPU:0"
    assert visible == [("GPU:1", "GPU")]
    assert growth == [("GPU:1", True)]


def test_a_host_name_that_does_not_resolve_is_one_clear_error():
    from harness.contract.distributed import check_hostname_resolves

    check_hostname_resolves()  # this machine's own name resolves
    with pytest.raises(ValueError, match="'no-such-host.invalid' does not resolve, and Horovod's Gloo needs it"):
        check_hostname_resolves("no-such-host.invalid")
