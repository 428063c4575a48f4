"""`harness train --hosts hostA:1,hostB:1` across two real hosts: network namespaces with sshd.

horovodrun starts on hostA, reaches hostB over ssh and the ranks talk Gloo over the veth pair, as
between two cluster nodes. Skips (saying why) where namespaces or sshd are unavailable.
"""

import json
import math
import subprocess
import sys
import time

import pytest
from netns_hosts import HOSTS, INTERFACE, two_hosts, unavailable_reason

from harness.families.gpt import FAMILY, state_shapes
from harness.storage.checkpoint import list_checkpoints
from launch.horovodrun import GRACE_SECONDS

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


def test_a_host_cut_off_mid_run_is_named_with_the_checkpoint_to_resume(hosts, tmp_path):
    run_dir, hang_timeout = tmp_path / "run", 30
    argv = [sys.executable, "-m", "launch.cli", "train", "--framework", "torch", "--model", "tiny", "--np", "2"]
    argv += ["--hosts", "hostA:1,hostB:1", "--run-dir", str(run_dir), "--no-progress", "--set", "eval.every=0"]
    argv += ["--hang-timeout", str(hang_timeout), "--set", "checkpoint.every=10"]
    job = subprocess.Popen(hosts.command("hostA", [*argv, "--steps", "100000"]), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not list_checkpoints(run_dir) and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    hosts.set_link("hostB", up=False)
    cut = time.monotonic()
    try:
        _, err = job.communicate(timeout=hang_timeout + GRACE_SECONDS + 60)
    finally:
        hosts.set_link("hostB", up=True)
    waited = time.monotonic() - cut
    assert job.returncode == 1, err[-4000:]
    assert waited < hang_timeout + GRACE_SECONDS, f"the job ended {waited:.0f} s after the link was cut"

    step, checkpoint = list_checkpoints(run_dir)[-1]
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        "Error: training failed: rank 1 on hostB was lost: rank 0 saw it exit or stop responding for 30 s "
        f"(--hang-timeout); --resume continues from {checkpoint} (step {step})"
    ), err[-4000:]
    assert "Traceback" not in err and "RuntimeError" not in err, err[-4000:]  # horovodrun's went to its log
    if last.endswith(".log"):
        assert "Traceback" in (run_dir / "horovodrun.log").read_text()
    for host in hosts.namespaces:  # hostB's rank gives up on its own (Gloo's timeout, its watchdog)
        while any("launch.cli" in line for line in hosts.command_lines(host)) and time.monotonic() < cut + 120:
            time.sleep(0.5)
        assert not [line for line in hosts.command_lines(host) if "launch.cli" in line], host

    resumed = subprocess.run(
        hosts.command("hostA", [*argv, "--steps", str(step + 5), "--resume"]), capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == step + 5
    print(f"hostB cut off after step {step}'s checkpoint: the job ended {waited:.1f} s later; resumed to {step + 5}")
