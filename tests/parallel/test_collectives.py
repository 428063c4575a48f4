"""Horovod's collectives through each framework's binding, 2 ranks over Gloo."""

import pytest
from horovod_job import run_job


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_collectives_on_two_ranks(framework):
    results = run_job("collectives.py", framework).results()
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


def test_failing_worker_shows_every_rank_stderr():
    job = run_job("fails_on_rank_1.py", expect_success=False, timeout=60)
    assert job.returncode != 0
    assert "rank 0 started" in job.stderr[0]
    assert "RuntimeError: rank 1 fails on purpose" in job.stderr[1]
    report = job.report()
    assert report.index("rank 0 stderr") < report.index("rank 0 started") < report.index("rank 1 stderr")
    assert "fails on purpose" in report
