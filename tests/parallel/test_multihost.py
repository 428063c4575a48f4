"""`harness train --hosts hostA:1,hostB:1` across two real hosts: network namespaces with sshd.

horovodrun starts on hostA, reaches hostB over ssh and the ranks talk Gloo over the veth pair, as
between two cluster nodes. Skips (saying why) where namespaces or sshd are unavailable.
"""

import json
import math
import subprocess
import sys

import pytest
from netns_hosts import HOSTS, INTERFACE, two_hosts, unavailable_reason

from harness.families.gpt import FAMILY, state_shapes

REASON = unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no namespace test hosts: {REASON}")
STEPS = 10


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    with two_hosts(tmp_path_factory.mktemp("hosts")) as made:
        yield made


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_two_hosts_train_one_model(hosts, framework, tmp_path):
    run_dir = tmp_path / "run"
    received_before = hosts.received_bytes("hostB")
    argv = [sys.executable, "-m", "launch.cli", "train", "--framework", framework, "--model", "tiny"]
    argv += ["--np", "2", "--hosts", "hostA:1,hostB:1", "--steps", str(STEPS), "--run-dir", str(run_dir)]
    proc = subprocess.run(hosts.command("hostA", argv), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["hostname_per_rank"] == list(HOSTS)  # one rank on each host
    assert len(summary["weights_sha256_per_rank"]) == 2
    assert len(set(summary["weights_sha256_per_rank"])) == 1  # identical weights on both hosts
    assert math.isfinite(summary["final_val_loss"])
    # The gradients crossed the veth: hostB received at least one gradient's worth per step.
    gradient_bytes = 4 * sum(math.prod(s) for s in state_shapes(FAMILY.preset("tiny")).values())
    received = hosts.received_bytes("hostB") - received_before
    assert received > STEPS * gradient_bytes / 2, f"hostB's {INTERFACE} received only {received} bytes"
