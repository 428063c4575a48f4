from pathlib import Path

import pytest
from horovod_job import UNINTERRUPTED, harness_train


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    """framework -> the run directory of UNINTERRUPTED on 2 ranks, trained on first use (read it, never
    write into it: copy it first)."""
    runs: dict[str, Path] = {}

    def run_of(framework: str) -> Path:
        if framework not in runs:
            run_dir = tmp_path_factory.mktemp(f"uninterrupted-{framework}") / "run"
            harness_train("--framework", framework, "--run-dir", str(run_dir), *UNINTERRUPTED)
            runs[framework] = run_dir
        return runs[framework]

    return run_of
