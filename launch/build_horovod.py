"""Build (or reuse) a Horovod wheel that works with the installed torch and TensorFlow.

Horovod's newest release (0.28.1, June 2023) does not compile against today's frameworks.
This script downloads its PyPI source release, applies small, checked source patches (PATCHES),
builds a wheel against the frameworks already installed in *this* interpreter's environment,
installs it, and verifies the result with ``horovodrun --check-build``.

The wheel's extensions are ABI-bound to the exact torch, TensorFlow and Python versions, so
it is cached under ``$HARNESS_CACHE_DIR`` (default ``~/.cache/harness``) keyed by those
versions and by the build switches. A second run with a warm cache installs in seconds, and
a run that finds the same build already installed does nothing.

Standard library only: it runs before the project itself is installed.

    .venv/bin/python launch/build_horovod.py            # CPU: PyTorch + TensorFlow + Gloo (+ MPI with mpicxx)
    HOROVOD_WITHOUT_MPI=1 .venv/bin/python launch/build_horovod.py   # Gloo only, even where mpicxx is
    HOROVOD_GPU_OPERATIONS=NCCL .venv/bin/python launch/build_horovod.py   # GPU: CUDA + NCCL

A GPU build (HOROVOD_GPU_OPERATIONS=NCCL, with a CUDA build of torch installed) takes what the
environment does not say from the machine (``gpu_switches``): the CUDA toolkit at CUDA_HOME or
/usr/local/cuda (else one of torch's CUDA version assembled from NVIDIA's wheels), NCCL from the
installed ``nvidia-nccl-cu*`` wheel (torch's own), shared NCCL linking, and CUDA_ARCHITECTURES
(those the toolkit's nvcc knows).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

PROG = "build_horovod"
VERSIONS_FILE = Path(__file__).resolve().parent.parent / "versions.env"
# Build switches that change what the wheel contains; they are part of the cache key. (A GPU build's
# toolkit and NCCL enter it by their versions, not by the paths a machine finds them at.)
KEY_SWITCHES = (
    "HOROVOD_WITH_MPI",
    "HOROVOD_WITHOUT_MPI",
    "HOROVOD_GPU",
    "HOROVOD_GPU_OPERATIONS",
    "HOROVOD_GPU_ALLREDUCE",
    "HOROVOD_GPU_BROADCAST",
    "HOROVOD_NCCL_LINK",
    "HOROVOD_BUILD_CUDA_CC_LIST",
)
# The GPUs a GPU build compiles its kernels for, as the toolkit allows: Ampere (A100), Hopper
# (H100/H200), Blackwell (B200, then RTX/workstation parts); the newest also as PTX for later ones.
CUDA_ARCHITECTURES = (80, 90, 100, 120)
DEFAULT_CUDA_HOME = Path("/usr/local/cuda")
# Source patches: (file, old text, new text, why). Each old text must occur exactly once, so a
# source that changed under us fails loudly instead of building something unexpected.
PATCHES = (
    (
        "CMakeLists.txt",
        "set(CMAKE_CXX_STANDARD 14)",
        "set(CMAKE_CXX_STANDARD 17)",
        "torch >= 2.1 and TensorFlow's bundled abseil headers require C++17",
    ),
    (
        "horovod/torch/CMakeLists.txt",
        "    set(CMAKE_CXX_STANDARD 14)",
        "    set(CMAKE_CXX_STANDARD 20)",
        "torch >= 2.15's headers need C++20 (std::bit_width, std::strong_ordering); C++14 also failed on "
        "TF's flatbuffers/abseil headers",
    ),
    (
        "CMakeLists.txt",
        "# GPU Operations\nset(HOROVOD_GPU $ENV{HOROVOD_GPU})\n",
        'set(CMAKE_BUILD_RPATH "\\$ORIGIN/../../nvidia/nccl/lib")\n'
        "# GPU Operations\nset(HOROVOD_GPU $ENV{HOROVOD_GPU})\n",
        "GPU builds: the NCCL of a wheel (nvidia-nccl-cu13/cu12, beside horovod/ in site-packages) is found from "
        "the extensions wherever the environment lies; the build's own NCCL folder is gone in an image",
    ),
    (
        "horovod/tensorflow/CMakeLists.txt",
        'list(APPEND TF_SOURCES "${PROJECT_SOURCE_DIR}/horovod/tensorflow/xla_mpi_ops.cc")\n',
        "",
        "XLA collectives (off unless HOROVOD_ENABLE_XLA_OPS) need headers TF >= 2.16 no longer ships",
    ),
    (
        "horovod/torch/mpi_ops_v2.cc",
        "      std::this_thread::yield();",
        "      std::this_thread::sleep_for(std::chrono::microseconds(200));",
        "hvd.synchronize() spun on sched_yield, taking the core from Horovod's communication thread",
    ),
    (
        "horovod/runner/common/util/safe_shell_exec.py",
        "GRACEFUL_TERMINATION_TIME_S = 5\n",
        'GRACEFUL_TERMINATION_TIME_S = float(os.environ.get("HOROVOD_GRACEFUL_TERMINATION_TIME_S", "5"))\n',
        "horovodrun SIGKILLs a rank 5 s after forwarding SIGTERM: too short to checkpoint on preemption",
    ),
    (
        "horovod/runner/common/util/safe_shell_exec.py",
        "    # Kill shell itself.\n    try:\n        p.terminate()\n",
        "    # Kill shell itself.\n    try:\n        p.kill()\n",
        "the rank's shell was SIGSTOPped just before: a SIGTERM waits the whole grace period for a SIGCONT",
    ),
    (
        "horovod/runner/mpi_run.py",
        "_OMPI_FLAGS = ['-mca pml ob1', '-mca btl ^openib']\n",
        "_OMPI_FLAGS = ['-mca pml ob1', '-mca btl ^openib,uct,ofi']\n",
        "horovodrun's `-mca btl ^openib` overrode the exclusions of Debian's Open MPI (^uct,openib,ofi): the OFI "
        "BTL it loaded sleeps 1 s in MPI_Finalize, so hvd.shutdown() took 1.006 s on every rank (0.045 s patched)",
    ),
    (
        "horovod/runner/launch.py",
        "    if use_gloo:\n"
        "        if not gloo_built(verbose=verbose):\n"
        "            raise ValueError('Gloo support has not been built.  If this is not expected, ensure CMake is "
        "installed '\n"
        "                             'and reinstall Horovod with HOROVOD_WITH_GLOO=1 to debug the build error.')\n"
        "        gloo_run()\n"
        "    elif use_mpi:\n"
        "        if not mpi_built(verbose=verbose):\n"
        "            raise ValueError('MPI support has not been built.  If this is not expected, ensure MPI is "
        "installed '\n"
        "                             'and reinstall Horovod with HOROVOD_WITH_MPI=1 to debug the build error.')\n"
        "        mpi_run()\n",
        "    if use_gloo:\n        gloo_run()\n    elif use_mpi:\n        mpi_run()\n",
        "horovodrun --gloo/--mpi probed the controller by importing horovod.tensorflow, so TensorFlow, in a forked "
        "child: 2.5 s and 590 MB before any rank started, also for a torch job. The harness checks the build's record "
        "before it starts horovodrun (launch/horovodrun.py, check_controller); --mpi without Open MPI still stops at "
        "mpi_run's own check for mpirun",
    ),
    (
        "horovod/common/util.py",
        "            sys.stderr = open(os.devnull, 'w')\n",
        "            sys.stderr = open(os.devnull, 'w')\n"
        "            os.dup2(sys.stdout.fileno(), 1)\n"
        "            os.dup2(sys.stderr.fileno(), 2)\n",
        "horovodrun's extension probe mutes only Python's streams: TensorFlow's C++ start-up lines leaked",
    ),
    # Idle wait: Horovod's background thread negotiates with every rank each cycle (a collective of
    # bit vectors) even when no tensor is pending, taking CPU from the training step between
    # gradient bursts. Patched, a rank with nothing pending in its only process set waits for a tensor
    # (woken by the enqueue, or by shutdown) for up to HOROVOD_IDLE_WAIT_MS (default 100; 0 restores
    # the original loop) before it takes part in a cycle; a peer with work blocks in the negotiation
    # meanwhile, as it would have waited for that rank's tensor anyway.
    (
        "horovod/common/tensor_queue.h",
        "#include <mutex>\n",
        "#include <atomic>\n#include <chrono>\n#include <condition_variable>\n#include <mutex>\n",
        "idle wait: headers",
    ),
    (
        "horovod/common/tensor_queue.h",
        "  void RemoveJoinTensor();\n",
        "  void RemoveJoinTensor();\n\n"
        "  // Blocks until a tensor is pending here or `stop` is set, for at most `timeout`.\n"
        "  void WaitWhileIdle(std::chrono::microseconds timeout, const std::atomic_bool& stop);\n\n"
        "  void WakeWaiter();\n",
        "idle wait: declarations",
    ),
    (
        "horovod/common/tensor_queue.h",
        "  mutable std::mutex mutex_;\n",
        "  mutable std::mutex mutex_;\n\n"
        "  // Signalled when a tensor is enqueued (or at shutdown).\n"
        "  std::condition_variable enqueued_;\n",
        "idle wait: the condition variable",
    ),
    (
        "horovod/common/tensor_queue.cc",
        "  message_queue_.push(std::move(message));\n  return Status::OK();\n}\n",
        "  message_queue_.push(std::move(message));\n  enqueued_.notify_one();\n  return Status::OK();\n}\n",
        "idle wait: an enqueue wakes the background thread",
    ),
    (
        "horovod/common/tensor_queue.cc",
        "    message_queue_.push(std::move(messages[i]));\n  }\n  return Status::OK();\n}\n",
        "    message_queue_.push(std::move(messages[i]));\n  }\n  enqueued_.notify_one();\n  return Status::OK();\n}\n",
        "idle wait: a grouped enqueue wakes the background thread",
    ),
    (
        "horovod/common/tensor_queue.cc",
        "} // namespace common\n} // namespace horovod\n",
        "void TensorQueue::WaitWhileIdle(std::chrono::microseconds timeout,\n"
        "                                const std::atomic_bool& stop) {\n"
        "  std::unique_lock<std::mutex> lock(mutex_);\n"
        "  enqueued_.wait_for(lock, timeout, [&] {\n"
        "    return stop || !tensor_table_.empty() || !message_queue_.empty();\n"
        "  });\n"
        "}\n\n"
        "void TensorQueue::WakeWaiter() {\n"
        "  std::lock_guard<std::mutex> guard(mutex_);\n"
        "  enqueued_.notify_all();\n"
        "}\n\n"
        "} // namespace common\n} // namespace horovod\n",
        "idle wait: the wait and the wake-up",
    ),
    (
        "horovod/common/operations.cc",
        "  state.last_cycle_start = std::chrono::steady_clock::now();\n",
        "  static const long idle_wait_us = [] {\n"
        '    const char* value = std::getenv("HOROVOD_IDLE_WAIT_MS");\n'
        "    return value == nullptr ? 100000L : long(std::atof(value) * 1000.);\n"
        "  }();\n"
        "  if (idle_wait_us > 0 && state.process_set_table.Ids().size() == 1) {\n"
        "    state.process_set_table.Get(0).tensor_queue.WaitWhileIdle(\n"
        "        std::chrono::microseconds(idle_wait_us), state.shut_down);\n"
        "  }\n"
        "  state.last_cycle_start = std::chrono::steady_clock::now();\n",
        "idle wait: the background loop waits for a tensor before it negotiates",
    ),
    (
        "horovod/common/operations.cc",
        "    horovod_global.shut_down = true;\n    horovod_global.background_thread.join();\n",
        "    horovod_global.shut_down = true;\n"
        "    if (horovod_global.process_set_table.Contains(0)) {\n"
        "      horovod_global.process_set_table.Get(0).tensor_queue.WakeWaiter();\n"
        "    }\n"
        "    horovod_global.background_thread.join();\n",
        "idle wait: shutdown wakes a waiting background thread",
    ),
    (
        "horovod/tensorflow/mpi_ops.cc",
        '#include "tensorflow/stream_executor/stream.h"\n#endif // TENSORFLOW_VERSION >= 2011000000\n'
        "#endif // HAVE_GPU\n",
        '#include "tensorflow/stream_executor/stream.h"\n#endif // TENSORFLOW_VERSION >= 2011000000\n'
        "namespace stream_executor {\n"
        "namespace gpu {\n"
        "GpuStreamHandle AsGpuStreamValue(Stream* stream) {\n"
        "  return static_cast<GpuStreamHandle>(stream->platform_specific_handle().stream);\n"
        "}\n"
        "} // namespace gpu\n"
        "} // namespace stream_executor\n"
        "#endif // HAVE_GPU\n",
        "GPU builds: TF 2.21 no longer exports stream_executor::gpu::AsGpuStreamValue (the TF extension failed "
        "to load: undefined symbol); the stream's own platform handle is the same CUDA stream",
    ),
    (
        "horovod/common/ops/gloo_operations.cc",
        "    buffer_data = (void*)first_entry.output->data();\n"
        "    std::memcpy(buffer_data, first_entry.tensor->data(),\n"
        "                (size_t)first_entry.tensor->size());\n",
        "    buffer_data = (void*)first_entry.output->data();\n"
        "    if (buffer_data != first_entry.tensor->data()) {\n"
        "      std::memcpy(buffer_data, first_entry.tensor->data(),\n"
        "                  (size_t)first_entry.tensor->size());\n"
        "    }\n",
        "an in-place allreduce (the optimizer's) copied the tensor onto itself before reducing it",
    ),
)


class BuildError(RuntimeError):
    """A failure with a one-line reason for the user."""


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines of versions.env (comments and blanks ignored)."""
    versions = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


def installed_version(*dists: str) -> str | None:
    """Version of the first installed distribution among ``dists``, without importing it."""
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def required_features() -> list[str]:
    """Lines ``horovodrun --check-build`` must tick for the requested build."""
    features = ["TensorFlow", "PyTorch", "Gloo"]
    if os.environ.get("HOROVOD_WITH_MPI") == "1":
        features.append("MPI")
    if gpu_build(dict(os.environ)):
        features.append("NCCL")
    return features


def build_key(horovod: str, torch: str, tensorflow: str) -> str:
    """Cache key: every input the compiled extensions are bound to (for a GPU build also the CUDA
    toolkit's and NCCL's versions)."""
    python = f"cp{sys.version_info.major}{sys.version_info.minor}"
    env = build_switches()
    switches = {k: v for k, v in env.items() if k in KEY_SWITCHES}
    # The patches are part of what was built: changing one must not reuse an old wheel.
    digest = hashlib.sha256(json.dumps([switches, PATCHES], sort_keys=True).encode()).hexdigest()[:8]
    platform = sysconfig.get_platform().replace("-", "_")
    gpu = ""
    if gpu_build(env):
        cuda, nccl = cuda_version(Path(env["HOROVOD_CUDA_HOME"])), nccl_version(Path(env["HOROVOD_NCCL_HOME"]))
        gpu = f"_cuda-{cuda}_nccl-{nccl}"
    return f"horovod-{horovod}_torch-{torch}_tf-{tensorflow}{gpu}_{python}_{platform}_{digest}"


def cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "harness"
    return Path(os.environ.get("HARNESS_CACHE_DIR", default))


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    print(f"[{PROG}] $ {' '.join(cmd)}", flush=True)
    return subprocess.run(cmd, check=True, **kwargs)


def pip(*args: str) -> None:
    run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args])


def fetch_sdist(horovod: str, sources: Path) -> Path:
    """Horovod's source release, downloaded once and kept in the cache."""
    sdist = sources / f"horovod-{horovod}.tar.gz"
    if not sdist.exists():
        sources.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=sources) as tmp:
            pip("download", "--no-deps", "--no-binary", ":all:", f"horovod=={horovod}", "-d", tmp)
            os.replace(Path(tmp) / sdist.name, sdist)
    return sdist


def patch_source(src: Path) -> None:
    for rel, old, new, why in PATCHES:
        path = src / rel
        text = path.read_text()
        if text.count(old) != 1:
            raise BuildError(f"patch for {rel} expected {old.strip()!r} once, found it {text.count(old)} times")
        path.write_text(text.replace(old, new))
        print(f"[{PROG}] patched {rel}: {why}", flush=True)


def extract(tar: tarfile.TarFile, dest: Path, use_filter: bool = hasattr(tarfile, "data_filter")) -> None:
    """Unpack ``tar`` into ``dest``, refusing any member or link that would land outside it: tarfile's
    "data" filter where this Python has it (3.11.4+; Debian bookworm's 3.11.2 has not), else the
    same check by hand."""
    if use_filter:
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    for member in tar.getmembers():
        target = (root / member.name).resolve()
        if member.issym():  # relative to the link's own folder
            link = (target.parent / member.linkname).resolve()
        else:  # a hard link names another member of the archive
            link = (root / member.linkname).resolve() if member.islnk() else target
        if not (target.is_relative_to(root) and link.is_relative_to(root)):
            raise BuildError(f"refusing to unpack {member.name!r} from {tar.name}: it points outside {dest}")
    tar.extractall(dest)


def build_wheel(horovod: str, sources: Path, out_dir: Path) -> Path:
    """Compile Horovod against this environment's frameworks; returns the wheel path."""
    with tempfile.TemporaryDirectory(prefix="horovod-build-") as tmp:
        with tarfile.open(fetch_sdist(horovod, sources)) as tar:
            extract(tar, Path(tmp))
        src = Path(tmp) / f"horovod-{horovod}"
        patch_source(src)
        env = dict(os.environ)
        env.setdefault("HOROVOD_WITH_PYTORCH", "1")
        env.setdefault("HOROVOD_WITH_TENSORFLOW", "1")
        env.setdefault("HOROVOD_WITH_GLOO", "1")
        env.setdefault("HOROVOD_WITHOUT_MXNET", "1")
        if env.get("HOROVOD_WITH_MPI") != "1":
            env.setdefault("HOROVOD_WITHOUT_MPI", "1")
        # CMake 4 rejects the bundled gloo's cmake_minimum_required(2.8); 3.x ignores this.
        env.setdefault("CMAKE_POLICY_VERSION_MINIMUM", "3.5")
        env.setdefault("MAKEFLAGS", f"-j{os.cpu_count() or 1}")
        dist = Path(tmp) / "dist"
        run(
            [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-w", str(dist), str(src)],
            env=env,
        )
        (wheel,) = dist.glob("horovod-*.whl")
        out_dir.mkdir(parents=True, exist_ok=True)
        staged = out_dir / (wheel.name + ".partial")
        shutil.copyfile(wheel, staged)
        return staged


def check_build_report() -> str:
    """What ``horovodrun --check-build`` prints (echoed here); ``BuildError`` when it fails."""
    horovodrun = Path(sys.executable).parent / "horovodrun"
    out = subprocess.run([str(horovodrun), "--check-build"], capture_output=True, text=True)
    print(out.stdout, flush=True)
    if out.returncode != 0:
        raise BuildError(f"horovodrun --check-build failed: {out.stderr.strip().splitlines()[-1:]}")
    return out.stdout


def check_build(features: list[str], report: str | None = None) -> set[str]:
    """Require every feature to be ticked in ``report`` (by default a fresh ``check_build_report()``);
    returns the ticked ones."""
    ticked = set(re.findall(r"\[X\] (\w+)", check_build_report() if report is None else report))
    missing = [f for f in features if f not in ticked]
    if missing:
        raise BuildError(f"Horovod was built without {', '.join(missing)} (horovodrun --check-build)")
    return ticked


def write_marker(marker: Path, key: str, features: set[str]) -> None:
    """Record what is installed; the launcher reads "mpi" to choose Horovod's controller
    (launch/horovodrun.py)."""
    marker.write_text(json.dumps({"key": key, "mpi": "MPI" in features}) + "\n")


def build_switches() -> dict[str, str]:
    """The environment the build runs with: the caller's, plus HOROVOD_WITH_MPI=1 where mpicxx is
    and the environment says nothing either way (MPI's controller and CPU operations beat Gloo's
    on one machine: docs/measurements.md, "Benchmarks"), plus a GPU build's ``gpu_switches``."""
    env = dict(os.environ)
    if not {"HOROVOD_WITH_MPI", "HOROVOD_WITHOUT_MPI"} & set(env) and shutil.which("mpicxx"):
        env["HOROVOD_WITH_MPI"] = "1"
    return env | gpu_switches(env) if gpu_build(env) else env


def gpu_build(env: dict[str, str]) -> bool:
    return "NCCL" in env.get("HOROVOD_GPU_OPERATIONS", "") + env.get("HOROVOD_GPU_ALLREDUCE", "")


def gpu_switches(env: dict[str, str], default_cuda: Path = DEFAULT_CUDA_HOME) -> dict[str, str]:
    """What a NCCL build needs and ``env`` does not say: the CUDA toolkit (HOROVOD_CUDA_HOME, else
    CUDA_HOME, else /usr/local/cuda, else one from PyPI: ``cuda_toolkit``; CUDA_HOME too, which
    torch's extension check reads), NCCL (a
    folder of links to the installed nvidia-nccl wheel's headers and library, under the cache),
    shared NCCL linking (the wheel has no static library) and the architectures. ``BuildError``
    naming what is missing."""
    cuda = cuda_toolkit(env, default_cuda)
    switches = {"HOROVOD_CUDA_HOME": str(cuda), "CUDA_HOME": str(cuda), "HOROVOD_NCCL_LINK": "SHARED"}
    switches["HOROVOD_NCCL_HOME"] = env.get("HOROVOD_NCCL_HOME") or str(nccl_from_wheel())
    if "HOROVOD_BUILD_CUDA_CC_LIST" not in env:
        known = supported_architectures(cuda)
        chosen = [str(cc) for cc in CUDA_ARCHITECTURES if cc in known]
        if not chosen:
            raise BuildError(f"{cuda}/bin/nvcc compiles for none of sm_{', sm_'.join(map(str, CUDA_ARCHITECTURES))} "
                             "(its --list-gpu-arch names none): set HOROVOD_BUILD_CUDA_CC_LIST")  # fmt: skip
        switches["HOROVOD_BUILD_CUDA_CC_LIST"] = ",".join(chosen)
    return {key: value for key, value in switches.items() if key not in env}


def cuda_toolkit(env: dict[str, str], default: Path = DEFAULT_CUDA_HOME) -> Path:
    """The CUDA toolkit to compile with: HOROVOD_CUDA_HOME or CUDA_HOME as given, else ``default``
    (/usr/local/cuda), else (a machine without one, e.g. inside the image) the toolkit of torch's own
    CUDA version assembled from NVIDIA's wheels (``cuda-toolkit[nvcc,cccl]``: nvcc, nvvm, the
    runtime with its static library, the headers), installed once under the cache."""
    given = env.get("HOROVOD_CUDA_HOME") or env.get("CUDA_HOME")
    if given or (default / "bin" / "nvcc").is_file():
        cuda = Path(given or default)
        if not (cuda / "bin" / "nvcc").is_file():
            raise BuildError(f"a GPU build needs a CUDA toolkit: no nvcc in {cuda}/bin (set HOROVOD_CUDA_HOME)")
        return cuda
    version = installed_version("cuda-toolkit")  # what torch's CUDA builds from PyPI require
    if version is None or not version.startswith("13."):
        raise BuildError(f"a GPU build needs a CUDA toolkit: none at {default} and no CUDA 13 torch from PyPI "
                         "to match one to; set HOROVOD_CUDA_HOME")  # fmt: skip
    target = cache_root() / "cuda-toolkit" / version
    if not target.is_dir():  # installed whole, then renamed: a cached toolkit is complete
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{version}-"))
        try:
            pip("install", "--quiet", "--target", str(staged), f"cuda-toolkit[nvcc,cccl]=={version}")
            # The wheels ship versioned libraries only (libcudart.so.13); CMake's FindCUDAToolkit
            # looks for the development names (libcudart.so), as a toolkit install has them.
            for library in (staged / "nvidia" / "cu13" / "lib").glob("*.so.*"):
                development = library.with_name(library.name.split(".so.")[0] + ".so")
                if not development.exists():
                    development.symlink_to(library.name)
            os.replace(staged, target)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
    return target / "nvidia" / "cu13"


def supported_architectures(cuda: Path) -> set[int]:
    """The sm_XX numbers ``cuda``'s nvcc compiles for."""
    listed = subprocess.run([str(cuda / "bin" / "nvcc"), "--list-gpu-arch"], capture_output=True, text=True)
    return {int(number) for number in re.findall(r"compute_(\d+)", listed.stdout)}


def cuda_version(cuda: Path) -> str:
    """The toolkit's release, e.g. "13.0", as its nvcc reports it."""
    found = re.search(r"release (\d+\.\d+)", subprocess.run(
        [str(cuda / "bin" / "nvcc"), "--version"], capture_output=True, text=True).stdout)  # fmt: skip
    if found is None:
        raise BuildError(f"{cuda}/bin/nvcc --version names no release")
    return found.group(1)


def nccl_version(home: Path) -> str:
    """NCCL's version from its header, e.g. "2.30.7"."""
    try:
        header = (home / "include" / "nccl.h").read_text()
    except OSError as err:
        raise BuildError(f"NCCL at {home}: include/nccl.h unreadable ({err.strerror}); set HOROVOD_NCCL_HOME") from None
    parts = [re.search(rf"#define NCCL_{part}\s+(\d+)", header) for part in ("MAJOR", "MINOR", "PATCH")]
    if None in parts:
        raise BuildError(f"{home}/include/nccl.h defines no NCCL_MAJOR/MINOR/PATCH")
    return ".".join(found.group(1) for found in parts)


def nccl_from_wheel() -> Path:
    """A NCCL home (include/, lib/libnccl.so) made of links to the installed nvidia-nccl-cu13/cu12
    wheel, which ships only libnccl.so.2 where CMake looks for libnccl.so."""
    dist = next((d for d in ("nvidia-nccl-cu13", "nvidia-nccl-cu12") if installed_version(d)), None)
    if dist is None:
        raise BuildError("a GPU build needs NCCL: pip install nvidia-nccl-cu13 (torch's CUDA builds bring it), "
                         "or set HOROVOD_NCCL_HOME")  # fmt: skip
    version = installed_version(dist)
    files = importlib.metadata.distribution(dist).files or []
    library = next((f for f in files if f.name == "libnccl.so.2"), None)
    if library is None:
        raise BuildError(f"{dist} holds no libnccl.so.2")
    wheel_home = Path(library.locate()).resolve().parent.parent  # .../nvidia/nccl
    # nvidia-nccl-cu12 (tensorflow[and-cuda]'s) and -cu13 (torch's) write the same files; build
    # against the wheel that owns them, not one whose files the other replaced.
    if (found := nccl_version(wheel_home)) != version:
        raise BuildError(f"{dist} {version}'s files were replaced by another NCCL wheel's (its nccl.h says {found}): "
                         "install torch after TensorFlow, or pip install --force-reinstall --no-deps "
                         f"{dist}=={version}")  # fmt: skip
    home = cache_root() / "nccl" / f"{dist}-{version}"
    (home / "lib").mkdir(parents=True, exist_ok=True)
    for link, target in (("include", wheel_home / "include"), ("lib/libnccl.so", wheel_home / "lib" / "libnccl.so.2"),
                         ("lib/libnccl.so.2", wheel_home / "lib" / "libnccl.so.2")):  # fmt: skip
        (home / link).unlink(missing_ok=True)
        (home / link).symlink_to(target)
    return home


def main() -> None:
    os.environ.update(build_switches())  # the key, the required features and the build all see it
    versions = read_versions()
    horovod = versions["HOROVOD_VERSION"]
    torch = installed_version("torch")
    tensorflow = installed_version("tensorflow", "tensorflow-cpu")
    if torch is None or tensorflow is None:
        raise BuildError("install torch and tensorflow into this environment before building Horovod")
    key = build_key(horovod, torch, tensorflow)
    marker = Path(sys.prefix) / "horovod-build.json"
    features = required_features()

    if installed_version("horovod") == horovod and marker.exists() and json.loads(marker.read_text())["key"] == key:
        print(f"[{PROG}] {key} already installed", flush=True)
        write_marker(marker, key, check_build(features))
        return

    wheels = cache_root() / "wheels" / key
    marker.unlink(missing_ok=True)
    cached, ticked = sorted(wheels.glob("horovod-*.whl")), None
    if cached:
        print(f"[{PROG}] using cached wheel {cached[0]}", flush=True)
        try:
            ticked = install_and_check(cached[0], features)
        except (BuildError, subprocess.CalledProcessError) as err:  # e.g. one another machine built (image-test's)
            print(f"[{PROG}] the cached wheel failed here ({err}); removing it", flush=True)
            cached[0].unlink()
    if ticked is None:
        print(f"[{PROG}] no usable cached wheel for {key}; building from source (minutes)", flush=True)
        staged = build_wheel(horovod, cache_root() / "sources", wheels)
        try:
            ticked = install_and_check(staged, features)
        except BuildError:
            staged.unlink()  # never cache a wheel that failed the check
            raise
        # Only a wheel that passed the check enters the cache, under its final name, atomically.
        os.replace(staged, staged.with_name(staged.name.removesuffix(".partial")))
    write_marker(marker, key, ticked)
    print(f"[{PROG}] ready: {key}", flush=True)


def install_and_check(wheel: Path, features: list[str]) -> set[str]:
    """Install ``wheel`` in place of any Horovod here and require ``features`` of it; returns the
    ticked ones."""
    if installed_version("horovod") is not None:
        pip("uninstall", "--yes", "horovod")
    # A staged wheel is named *.whl.partial; pip needs the real name, so install from a copy.
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / wheel.name.removesuffix(".partial")
        shutil.copyfile(wheel, target)
        pip("install", str(target))
    return check_build(features)


if __name__ == "__main__":
    try:
        main()
    except BuildError as err:
        sys.exit(f"{PROG}: error: {err}")
    except subprocess.CalledProcessError as err:
        sys.exit(f"{PROG}: error: command failed with exit code {err.returncode}: {' '.join(map(str, err.cmd))}")
