"""One place pins the stack (versions.env); the Dockerfiles lint clean with hadolint."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from launch.versions import ROOT, check

PINNED_FILES = ["versions.env", "pyproject.toml", "Makefile", "docker/Dockerfile", "docker/Dockerfile.cpu"]
HADOLINT = Path(sys.executable).parent / "hadolint"


def test_every_file_agrees_with_versions_env():
    assert check() == []


def copy_pinned_files(destination: Path) -> Path:
    for relative in PINNED_FILES:
        (destination / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, destination / relative)
    return destination


@pytest.mark.parametrize(
    ("relative", "old", "new", "expected"),
    [
        ("versions.env", "TORCH_VERSION=2.13.0", "TORCH_VERSION=2.14.0", "expected it to list 'torch==2.14.0'"),
        ("pyproject.toml", "tf-keras==2.21.0", "tf-keras==2.20.0", "expected it to list 'tf-keras==2.21.0'"),
        ("versions.env", "PYTHON_VERSION=3.11", "PYTHON_VERSION=3.12", "ARG PYTHON_VERSION=3.11, but versions.env"),
        ("versions.env", "TORCH_GPU_VERSION=2.15.0", "TORCH_GPU_VERSION=2.16.0", "ARG TORCH_GPU_VERSION=2.15.0, but"),
        ("docker/Dockerfile", "ARG TORCH_GPU_VERSION=2.15.0", "ARG TORCH_GPU_VERSION=2.14.0", "2.14.0, but"),
        ("pyproject.toml", '"tensorflow==2.21.0"', '"tensorflow==2.20.0"', "expected it to list 'tensorflow==2.21.0'"),
        ("Makefile", "torch==$(TORCH_VERSION)", "torch==2.13.0", "spells out TORCH_VERSION's value"),
    ],
)
def test_a_pin_changed_in_one_place_only_is_reported(tmp_path, relative, old, new, expected):
    root = copy_pinned_files(tmp_path)
    text = (root / relative).read_text()
    assert old in text
    (root / relative).write_text(text.replace(old, new))
    proc = subprocess.run([sys.executable, "-m", "launch.versions", str(root)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert expected in proc.stderr, proc.stderr


def test_the_same_change_everywhere_is_no_drift(tmp_path):
    root = copy_pinned_files(tmp_path)
    for relative, old, new in [
        ("versions.env", "TORCH_GPU_VERSION=2.15.0", "TORCH_GPU_VERSION=2.16.0"),
        ("docker/Dockerfile", "ARG TORCH_GPU_VERSION=2.15.0", "ARG TORCH_GPU_VERSION=2.16.0"),
    ]:
        (root / relative).write_text((root / relative).read_text().replace(old, new))
    assert check(root) == []


@pytest.mark.parametrize("dockerfile", ["docker/Dockerfile", "docker/Dockerfile.cpu"])
def test_hadolint_passes(dockerfile):
    proc = subprocess.run([str(HADOLINT), dockerfile], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_is_live(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN cd /tmp && apt-get install -y curl\n")  # untagged, cd, no cleanup
    proc = subprocess.run([str(HADOLINT), str(bad)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "DL3006" in proc.stdout, proc.stdout


def test_the_hosts_horovod_wheels_are_offered_to_the_image_build_under_their_keys(tmp_path):
    from launch.image_test import share_host_wheels

    host, image = tmp_path / "host", tmp_path / "image"
    for key, name in (("k1", "horovod-a.whl"), ("k2", "horovod-b.whl"), ("k3", "horovod-c.whl.partial")):
        (host / key).mkdir(parents=True)
        (host / key / name).write_bytes(key.encode() * 100)
    (image / "k2").mkdir(parents=True)
    (image / "k2" / "horovod-own.whl").write_bytes(b"built in the image")
    assert share_host_wheels(host, image) == ["k1"]  # k2 has its own, k3 was never finished
    assert (image / "k1" / "horovod-a.whl").read_bytes() == b"k1" * 100
    assert sorted(p.name for p in image.rglob("*")) == ["horovod-a.whl", "horovod-own.whl", "k1", "k2"]
    assert share_host_wheels(host, image) == []  # once only


def test_the_gpu_image_is_built_when_its_inputs_changed_since_the_verified_build(tmp_path):
    from launch.image_test import GPU_INPUTS, gpu_image_due, gpu_inputs_digest

    for relative in GPU_INPUTS:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, tmp_path / relative)
    record = tmp_path / "docker" / "gpu-image.verified"
    assert gpu_image_due("changed", record, tmp_path) == "no record of a verified build (gpu-image.verified)"
    record.write_text(json.dumps({"inputs_sha256": gpu_inputs_digest(tmp_path), "verified": "2026-12-03"}))
    assert gpu_image_due("changed", record, tmp_path) is None  # what CI runs: skipped
    assert gpu_image_due("always", record, tmp_path) == "--gpu always"
    (tmp_path / "versions.env").write_text((tmp_path / "versions.env").read_text() + "# a comment\n")
    assert gpu_image_due("changed", record, tmp_path) == (
        "its inputs changed since the build verified on 2026-12-03 (gpu-image.verified)"
    )
    assert gpu_image_due("never", record, tmp_path) is None


def test_the_gpu_image_must_tick_nccl_and_hold_cuda_builds_of_both_frameworks():
    from launch.image_test import gpu_build_problem

    # As the GPU image printed them (make image-test, 2026-12-03), then with one part missing.
    check_build = "Available Tensor Operations:\n    [X] NCCL\n    [ ] DDL\n    [ ] CCL\n    [X] MPI\n    [X] Gloo\n"
    doctor = "tensor ops   [X] Gloo  [X] MPI  [X] NCCL  [ ] CCL\ngpus         torch 0 (CUDA 13.2)  tf 0 (CUDA 12.5.1)\n"
    assert gpu_build_problem(doctor, check_build) is None
    assert "does not tick NCCL" in gpu_build_problem(doctor, check_build.replace("[X] NCCL", "[ ] NCCL"))
    cpu_tf = doctor.replace("tf 0 (CUDA 12.5.1)", "tf 0 (CPU build)")
    assert gpu_build_problem(cpu_tf, check_build) == (
        "its torch and TensorFlow are not both CUDA builds: harness doctor says 'torch 0 (CUDA 13.2)  tf 0 (CPU build)'"
    )
