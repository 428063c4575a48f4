"""Each rank of a job pins itself to its own share of the host's cores (launch/horovodrun.py)."""

import json
import os
import sys

import pytest

from launch.horovodrun import CONTROLLERS, mpi_built, run_horovodrun

# One rank: pin as `harness train`'s ranks do, then report what the process may run on, in a file
# named by its local rank (a rank that exits at once may lose its last stdout line under mpirun).
REPORT = """
import json, os, sys
from pathlib import Path
from launch.horovodrun import LOCAL_RANK_VARIABLES, pin_to_local_cores
pinned = pin_to_local_cores()
rank = next(os.environ[name] for name, _ in LOCAL_RANK_VARIABLES if name in os.environ)
report = {"pinned": sorted(pinned) if pinned else None, "affinity": sorted(os.sched_getaffinity(0))}
Path(sys.argv[1], rank + ".json").write_text(json.dumps(report))
"""


@pytest.mark.parametrize("controller", CONTROLLERS)
@pytest.mark.parametrize("pin_cores", [True, False])
def test_ranks_pin_to_disjoint_shares_of_the_cores(controller, pin_cores, tmp_path):
    if controller == "mpi" and not mpi_built():
        pytest.skip("Horovod was built without MPI here (no mpicxx at `make setup`)")
    proc = run_horovodrun(
        2,
        [sys.executable, "-c", REPORT, str(tmp_path)],
        capture=True,
        timeout=120,
        controller=controller,
        pin_cores=pin_cores,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    reports = [json.loads((tmp_path / f"{rank}.json").read_text()) for rank in range(2)]
    cpus = sorted(os.sched_getaffinity(0))  # the ranks start with the launcher's CPUs
    if not pin_cores:
        assert reports == [{"pinned": None, "affinity": cpus}] * 2
        return
    share = len(cpus) // 2
    assert [r["affinity"] for r in reports] == [cpus[:share], cpus[share : 2 * share]]
    assert [r["pinned"] for r in reports] == [r["affinity"] for r in reports]
