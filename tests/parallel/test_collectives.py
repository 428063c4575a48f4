"""Horovod's collectives through each framework's binding, 2 ranks over Gloo."""

import pytest
from horovod_job import run_job


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_collectives_on_two_ranks(framework, tmp_path):
    results = run_job("collectives.py", framework, tmp_path=tmp_path)
    for rank, result in enumerate(results):
        assert result["rank"] == rank
        assert result["size"] == 2
        assert result["local_rank"] == rank
        assert result["is_main_process"] == (rank == 0)
        assert result["raw_allreduce_sum"] == [3.0] * 4  # (0 + 1) + (1 + 1)
        assert result["allreduce_mean"] == [1.5] * 3
        assert result["allreduce_sum"] == [1, 10]
        assert result["broadcast"] == [10.0, -1.0]  # rank 1's value
        assert result["allgather"] == [[0, 0], [1, 1], [1, 1]]


def test_failing_worker_shows_every_rank_stderr(tmp_path):
    job = run_job("collectives.py", "no-such-framework", tmp_path=tmp_path, expect_success=False)
    assert job.returncode != 0
    report = job.report()
    for rank in range(2):
        assert f"rank {rank} stderr" in report
        assert "unknown framework 'no-such-framework'" in job.stderr[rank]
