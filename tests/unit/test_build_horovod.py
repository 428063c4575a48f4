"""The Horovod build script's decisions, and the build it produced in this environment."""

import importlib.metadata
import json
import sys
import tarfile
from pathlib import Path

import pytest

from launch import build_horovod

ROOT = Path(__file__).resolve().parents[2]
# What the standard library's extraction filter raises (Debian's Python 3.11.2 has none).
FILTER_ERROR = getattr(tarfile, "FilterError", build_horovod.BuildError)


def test_pins_are_read_from_versions_env():
    versions = build_horovod.read_versions()
    assert set(versions) >= {"PYTHON_VERSION", "TORCH_VERSION", "TENSORFLOW_VERSION", "HOROVOD_VERSION"}
    assert versions["HOROVOD_VERSION"] == "0.28.1"


def test_installed_stack_matches_the_pins():
    versions = build_horovod.read_versions()
    import torch

    pin = "TORCH_GPU_VERSION" if torch.version.cuda else "TORCH_VERSION"  # the GPU image's, or make setup's
    assert importlib.metadata.version("torch").split("+")[0] == versions[pin]
    assert build_horovod.installed_version("tensorflow", "tensorflow-cpu") == versions["TENSORFLOW_VERSION"]
    assert importlib.metadata.version("horovod") == versions["HOROVOD_VERSION"]
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == versions["PYTHON_VERSION"]


def nccl_home(root: Path, version: str = "2.30.7") -> Path:
    """A NCCL home whose header says ``version`` (as NCCL's nccl.h defines it)."""
    (root / "include").mkdir(parents=True)
    major, minor, patch = version.split(".")
    defines = f"#define NCCL_MAJOR {major}\n#define NCCL_MINOR {minor}\n#define NCCL_PATCH {patch}\n"
    (root / "include" / "nccl.h").write_text(f"#ifndef NCCL_H_\n{defines}#endif\n")
    return root


def cuda_home(root: Path, release: str = "13.0", architectures=(75, 80, 90, 100, 120)) -> Path:
    """A CUDA toolkit whose nvcc answers ``--version`` and ``--list-gpu-arch`` as nvcc does, so the
    build script's choices are checked on a machine without one."""
    (root / "bin").mkdir(parents=True)
    listed = " ".join(f"compute_{cc}" for cc in architectures)
    nvcc = root / "bin" / "nvcc"
    nvcc.write_text(
        f'#!/bin/sh\nif [ "$1" = --list-gpu-arch ]; then for a in {listed}; do echo $a; done; exit 0; fi\n'
        f'echo "Cuda compilation tools, release {release}, V{release}.88"\n'
    )
    nvcc.chmod(0o755)
    return root


HAS_TOOLKIT = (build_horovod.DEFAULT_CUDA_HOME / "bin" / "nvcc").is_file()


def test_cache_key_names_every_abi_input_and_the_switches(monkeypatch, tmp_path):
    for name in build_horovod.KEY_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    key = build_horovod.build_key("0.28.1", "2.13.0", "2.21.0")
    assert "horovod-0.28.1" in key and "torch-2.13.0" in key and "tf-2.21.0" in key
    assert f"cp{sys.version_info.major}{sys.version_info.minor}" in key
    assert build_horovod.build_key("0.28.1", "2.13.1", "2.21.0") != key
    patches = build_horovod.PATCHES
    monkeypatch.setattr(build_horovod, "PATCHES", patches[:-1])
    assert build_horovod.build_key("0.28.1", "2.13.0", "2.21.0") != key  # another patch set
    monkeypatch.setattr(build_horovod, "PATCHES", patches)
    monkeypatch.setenv("HOROVOD_GPU_OPERATIONS", "NCCL")
    monkeypatch.setenv("HOROVOD_NCCL_HOME", str(nccl_home(tmp_path / "nccl")))
    monkeypatch.setenv("HOROVOD_CUDA_HOME", str(cuda_home(tmp_path / "cuda", release="13.1")))
    gpu = build_horovod.build_key("0.28.1", "2.13.0", "2.21.0")
    assert gpu != key and "_tf-2.21.0_cuda-13.1_nccl-2.30.7_cp3" in gpu


def test_a_gpu_build_finds_the_toolkit_and_names_the_architectures(monkeypatch, tmp_path):
    for name in (*build_horovod.KEY_SWITCHES, "CUDA_HOME"):
        monkeypatch.delenv(name, raising=False)
    env = {"HOROVOD_GPU_OPERATIONS": "NCCL", "HOROVOD_NCCL_HOME": str(nccl_home(tmp_path / "nccl"))}
    default = cuda_home(tmp_path / "cuda")  # where /usr/local/cuda is looked for
    switches = build_horovod.gpu_switches(env, default_cuda=default)
    assert switches == {
        "HOROVOD_CUDA_HOME": str(default),
        "CUDA_HOME": str(default),
        "HOROVOD_NCCL_LINK": "SHARED",
        "HOROVOD_BUILD_CUDA_CC_LIST": "80,90,100,120",  # Ampere, Hopper, Blackwell: what nvcc knows of them
    }
    older = cuda_home(tmp_path / "cuda-12", release="12.4", architectures=(75, 80, 90))
    assert build_horovod.gpu_switches(env, default_cuda=older)["HOROVOD_BUILD_CUDA_CC_LIST"] == "80,90"
    given = build_horovod.gpu_switches(
        env | {"HOROVOD_BUILD_CUDA_CC_LIST": "90", "HOROVOD_NCCL_LINK": "STATIC"}, default_cuda=default
    )
    assert set(given) == {"HOROVOD_CUDA_HOME", "CUDA_HOME"}  # what the user set stays theirs
    assert build_horovod.nccl_version(tmp_path / "nccl") == "2.30.7"
    none = cuda_home(tmp_path / "cuda-old", architectures=(60, 70))
    with pytest.raises(build_horovod.BuildError, match="compiles for none of sm_80, sm_90"):
        build_horovod.gpu_switches(env, default_cuda=none)


@pytest.mark.skipif(not HAS_TOOLKIT, reason=f"no CUDA toolkit at {build_horovod.DEFAULT_CUDA_HOME}")
def test_this_machines_toolkit_compiles_for_every_architecture_built():
    cuda = build_horovod.DEFAULT_CUDA_HOME  # CUDA 13.0's nvcc on this machine kind
    assert build_horovod.supported_architectures(cuda) >= set(build_horovod.CUDA_ARCHITECTURES)
    assert build_horovod.cuda_version(cuda).startswith("13.")


def test_a_gpu_build_without_a_toolkit_or_nccl_is_one_line(monkeypatch, tmp_path):
    with pytest.raises(build_horovod.BuildError, match=f"no nvcc in {tmp_path}/bin"):
        build_horovod.gpu_switches({"HOROVOD_GPU_OPERATIONS": "NCCL", "HOROVOD_CUDA_HOME": str(tmp_path)})
    # This environment's torch is a CPU build: no nvidia-nccl wheel came with it, and no
    # cuda-toolkit to assemble a toolkit from where a machine has none.
    with pytest.raises(build_horovod.BuildError, match="a GPU build needs NCCL: pip install nvidia-nccl-cu13"):
        build_horovod.gpu_switches({"HOROVOD_GPU_OPERATIONS": "NCCL"})
    with pytest.raises(build_horovod.BuildError, match=f"none at {tmp_path}/none and no CUDA 13 torch from PyPI"):
        build_horovod.gpu_switches({"HOROVOD_GPU_OPERATIONS": "NCCL"}, default_cuda=tmp_path / "none")


def test_required_features_follow_the_switches(monkeypatch):
    monkeypatch.delenv("HOROVOD_WITH_MPI", raising=False)
    monkeypatch.delenv("HOROVOD_GPU_OPERATIONS", raising=False)
    monkeypatch.delenv("HOROVOD_GPU_ALLREDUCE", raising=False)
    assert build_horovod.required_features() == ["TensorFlow", "PyTorch", "Gloo"]
    monkeypatch.setenv("HOROVOD_WITH_MPI", "1")
    monkeypatch.setenv("HOROVOD_GPU_OPERATIONS", "NCCL")
    assert build_horovod.required_features() == ["TensorFlow", "PyTorch", "Gloo", "MPI", "NCCL"]


def _fake_source(root: Path) -> None:
    """Every patched file holding each of its patches' old texts once."""
    texts: dict[str, str] = {}
    for rel, old, _, _ in build_horovod.PATCHES:
        texts[rel] = texts.get(rel, "# before\n") + f"{old}\n# between\n"
    for rel, text in texts.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_patches_apply_once(tmp_path):
    _fake_source(tmp_path)
    build_horovod.patch_source(tmp_path)
    assert "set(CMAKE_CXX_STANDARD 17)" in (tmp_path / "CMakeLists.txt").read_text()
    assert "xla_mpi_ops.cc" not in (tmp_path / "horovod/tensorflow/CMakeLists.txt").read_text()
    shell_exec = (tmp_path / "horovod/runner/common/util/safe_shell_exec.py").read_text()
    assert "HOROVOD_GRACEFUL_TERMINATION_TIME_S" in shell_exec and "p.terminate()" not in shell_exec


def test_patch_refuses_a_source_that_changed(tmp_path):
    _fake_source(tmp_path)
    (tmp_path / "horovod/torch/CMakeLists.txt").write_text("set(CMAKE_CXX_STANDARD 20)\n")
    with pytest.raises(build_horovod.BuildError, match="horovod/torch/CMakeLists.txt"):
        build_horovod.patch_source(tmp_path)


def test_environment_records_the_build_it_holds():
    key = json.loads((Path(sys.prefix) / "horovod-build.json").read_text())["key"]
    horovod, torch = importlib.metadata.version("horovod"), importlib.metadata.version("torch")
    tensorflow = build_horovod.installed_version("tensorflow", "tensorflow-cpu")
    # The key names what is installed as the packages' own metadata says, not as build_key was told.
    python = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert key.startswith(f"horovod-{horovod}_torch-{torch}_tf-{tensorflow}_"), key  # then a GPU build's CUDA, NCCL
    assert f"_{python}_" in key, key
    # Today's switches and patches give the same key: `make setup` has nothing to rebuild.
    assert key == build_horovod.build_key(horovod, torch, tensorflow)
    cached = build_horovod.cache_root() / "wheels" / key
    assert list(cached.glob(f"horovod-{horovod}-*.whl")), f"no cached wheel of horovod {horovod} under {cached}"


def test_check_build_fails_with_one_line_for_a_missing_feature(capsys):
    report = build_horovod.check_build_report()  # one real `horovodrun --check-build` (about 19 s here)
    assert "[X] PyTorch" in capsys.readouterr().out
    with pytest.raises(build_horovod.BuildError, match="built without MXNet") as err:
        build_horovod.check_build(["TensorFlow", "PyTorch", "Gloo", "MXNet"], report)
    assert "\n" not in str(err.value)
    assert {"TensorFlow", "PyTorch", "Gloo"} <= build_horovod.check_build(["TensorFlow", "PyTorch", "Gloo"], report)


def make_tar(path: Path, members: dict[str, bytes], link: tuple[str, str] | None = None) -> Path:
    import io

    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            tar.addfile(info)
    return path


@pytest.mark.parametrize("use_filter", [True, False])  # False: Debian bookworm's Python 3.11.2, no filter
def test_the_source_archive_unpacks_inside_its_folder_only(tmp_path, use_filter):
    good = make_tar(tmp_path / "good.tar.gz", {"horovod-0.28.1/setup.py": b"x"}, link=("horovod-0.28.1/l", "setup.py"))
    (tmp_path / "out").mkdir()
    with tarfile.open(good) as tar:
        build_horovod.extract(tar, tmp_path / "out", use_filter)
    assert (tmp_path / "out" / "horovod-0.28.1" / "setup.py").read_bytes() == b"x"
    for name, archive in {
        "parent": make_tar(tmp_path / "up.tar.gz", {"../evil": b"x"}),
        "link": make_tar(tmp_path / "link.tar.gz", {}, link=("h/l", "../../etc/passwd")),
    }.items():
        (tmp_path / name).mkdir()
        with tarfile.open(archive) as tar, pytest.raises((build_horovod.BuildError, FILTER_ERROR)):
            build_horovod.extract(tar, tmp_path / name, use_filter)
        assert not (tmp_path / "evil").exists()


def nccl_wheel(site: Path, dist: str, version: str, header_version: str) -> None:
    """An installed NCCL wheel as pip leaves it (dist-info with its RECORD), whose header says
    ``header_version`` (another wheel's, where that one overwrote its files)."""
    nccl_home(site / "nvidia" / "nccl", header_version)
    (site / "nvidia" / "nccl" / "lib").mkdir()
    (site / "nvidia" / "nccl" / "lib" / "libnccl.so.2").write_bytes(b"\x7fELF")
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "RECORD").write_text("nvidia/nccl/include/nccl.h,,\nnvidia/nccl/lib/libnccl.so.2,,\n")


def test_nccl_comes_from_torchs_wheel_unless_another_wheel_overwrote_it(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    site = tmp_path / "site"
    nccl_wheel(site, "nvidia-nccl-cu13", "2.30.7", header_version="2.30.7")
    monkeypatch.syspath_prepend(str(site))
    home = build_horovod.nccl_from_wheel()
    assert (home / "lib" / "libnccl.so").resolve() == (site / "nvidia/nccl/lib/libnccl.so.2").resolve()
    assert build_horovod.nccl_version(home) == "2.30.7"
    # tensorflow[and-cuda]'s nvidia-nccl-cu12 installed after torch writes the same files.
    nccl_home(tmp_path / "cu12", "2.32.3")
    (site / "nvidia/nccl/include/nccl.h").write_text((tmp_path / "cu12/include/nccl.h").read_text())
    with pytest.raises(build_horovod.BuildError, match=r"nvidia-nccl-cu13 2.30.7's files were replaced .* says 2.32.3"):
        build_horovod.nccl_from_wheel()
