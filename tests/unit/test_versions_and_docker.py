"""One place pins the stack (versions.env); the Dockerfiles lint clean with hadolint."""

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
        ("versions.env", "CUDA_VERSION=12.8.1", "CUDA_VERSION=12.9.0", "ARG CUDA_VERSION=12.8.1, but versions.env"),
        ("docker/Dockerfile", "ARG TORCH_CUDA=cu128", "ARG TORCH_CUDA=cu126", "ARG TORCH_CUDA=cu126, but"),
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
        ("versions.env", "CUDA_VERSION=12.8.1", "CUDA_VERSION=12.9.0"),
        ("docker/Dockerfile", "ARG CUDA_VERSION=12.8.1", "ARG CUDA_VERSION=12.9.0"),
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
