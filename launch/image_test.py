"""`make image-test`: build the images for real and train inside them.

No Docker engine here, and no image registry to pull a base from, so:
1. a Debian bookworm base image is made with debootstrap (`FROM scratch` + the root filesystem)
   and kept in buildah's storage, its tarball cached under the cache directory;
2. docker/Dockerfile.cpu (the CPU image), then docker/Dockerfile (the GPU image) are built on it
   with buildah (vfs storage, chroot isolation), with Horovod's wheel cache and pip's cache
   mounted from the cache directory, so that a re-run does not recompile Horovod; the Horovod
   wheels this host built (`make setup`) are linked into that cache first under their keys, so
   that an image whose key is the host's (the same Horovod, frameworks, Python minor version,
   platform, switches and patches) does not compile it either;
3. inside each image: `harness doctor`, `horovodrun --check-build` (the GPU image must tick NCCL),
   then a 2-rank training of the `tiny` model with each framework (torch on Gloo, TF on Open MPI),
   whose summary must show both ranks ending with equal weights: the GPU image's build trains on
   the CPU where there is no GPU.

The GPU image takes about 16 minutes more here (its CUDA libraries, Horovod's CUDA kernels), so by
default (``--gpu changed``, what CI runs) it is built only when its inputs (GPU_INPUTS) differ
from those of the last build that passed, recorded in docker/gpu-image.verified; a pass writes that
record, to be committed with the change.

Standard library only: it runs before `make setup`. Needs root, buildah and debootstrap.

    python3 -m launch.image_test                # the CPU image; the GPU image if its inputs changed
    python3 -m launch.image_test --gpu always   # both images (--gpu only: the GPU image alone)
    python3 -m launch.image_test --fresh        # drop the cached base image, rootfs, pip cache and image wheels
                                                # first (the host's wheel is offered again: no compile)
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from launch.build_horovod import cache_root

PROG = "image-test"
ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "localhost/harness-base:bookworm"
BUILDAH = ["buildah", "--storage-driver", "vfs"]
ISOLATION = ["--isolation", "chroot"]
# Where the image build sees the mounted caches (the Dockerfiles' ARGs point there).
BUILD_CACHE = "/var/cache/harness-image-test"
WHEELS_MOUNT = "/var/cache/harness-wheels"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_MOUNT = "/var/cache/harness-ca-bundle.crt"
# What the GPU image is made of, besides the harness's own code (which the CPU image tests on every
# run): a change to any of these builds it again under `--gpu changed`.
GPU_INPUTS = (
    "docker/Dockerfile",
    "docker/install-os-packages.sh",
    "versions.env",
    "launch/build_horovod.py",
    "Makefile",
    "pyproject.toml",
)
GPU_RECORD = ROOT / "docker" / "gpu-image.verified"


@dataclass(frozen=True)
class Image:
    name: str
    dockerfile: str
    gpu: bool


CPU_IMAGE = Image("localhost/horovod-harness:cpu-test", "docker/Dockerfile.cpu", gpu=False)
GPU_IMAGE = Image("localhost/horovod-harness:gpu-test", "docker/Dockerfile", gpu=True)


class ImageTestError(Exception):
    """One step failed; the message is the one line the user sees."""


def cache_dir() -> Path:
    return cache_root() / "image-test"


def share_host_wheels(host_wheels: Path, image_wheels: Path) -> list[str]:
    """Link each Horovod wheel of ``host_wheels`` (launch/build_horovod.py's cache: one folder per
    build key) into ``image_wheels`` under the same key, where that key has none yet; the image's
    build then installs it instead of compiling, if the key is its own, and compiles as before if
    not (or if the wheel fails its check there). Returns the keys linked."""
    shared = []
    for wheel in sorted(host_wheels.glob("*/horovod-*.whl")):
        folder = image_wheels / wheel.parent.name
        if any(folder.glob("horovod-*.whl")):
            continue
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{wheel.name}.partial"  # never seen under the wheel's name half-copied
        try:
            os.link(wheel, partial)
        except OSError:  # another filesystem
            shutil.copyfile(wheel, partial)
        os.replace(partial, folder / wheel.name)
        shared.append(wheel.parent.name)
    return shared


def log(message: str) -> None:
    print(f"[{PROG}] {message}", flush=True)


def run(step: str, command: list[str], capture: bool = False) -> str:
    """Run ``command`` with its output shown (or captured); a failure names ``step``."""
    proc = subprocess.run(command, stdout=subprocess.PIPE if capture else None, text=True)
    if proc.returncode != 0:
        raise ImageTestError(f"{step} failed (exit {proc.returncode}; {command[0]}'s output is above)")
    return proc.stdout if capture else ""


def image_exists(name: str) -> bool:
    listed = subprocess.run([*BUILDAH, "images", "--quiet", name], capture_output=True, text=True)
    return listed.returncode == 0 and bool(listed.stdout.strip())


def remove_image(name: str) -> None:
    if image_exists(name):
        run(f"removing {name}", [*BUILDAH, "rmi", "--force", name], capture=True)


def make_base(cache: Path, mirror: str) -> None:
    """The bookworm base image: from buildah's storage, else from the cached root filesystem
    tarball, else made now with debootstrap."""
    if image_exists(BASE_IMAGE):
        log(f"base image {BASE_IMAGE} present")
        return
    rootfs_tar = cache / "bookworm-rootfs.tar"
    if not rootfs_tar.exists():
        log(f"debootstrap bookworm from {mirror} (minutes)")
        with tempfile.TemporaryDirectory(dir=cache) as work:
            rootfs = Path(work) / "rootfs"
            run("debootstrap", ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror])
            partial = rootfs_tar.with_suffix(".tar.partial")
            run("packing the root filesystem", ["tar", "-C", str(rootfs), "-cf", str(partial), "."])
            os.replace(partial, rootfs_tar)  # only a whole tarball is ever cached
    with tempfile.TemporaryDirectory(dir=cache) as context:
        os.link(rootfs_tar, Path(context) / "rootfs.tar")
        (Path(context) / "Containerfile").write_text('FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n')
        run("importing the base image", [*BUILDAH, "bud", *ISOLATION, "--tag", BASE_IMAGE, context])
    log(f"base image {BASE_IMAGE} made")


def pip_find_links() -> str:
    """The wheel directory this host's pip is given (PIP_FIND_LINKS, else pip's configuration)."""
    if os.environ.get("PIP_FIND_LINKS"):
        return os.environ["PIP_FIND_LINKS"]
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    for line in listed.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.endswith(".find-links"):
            return value.strip("'\"").split()[0]
    return ""


def build(image: Image, cache: Path) -> None:
    """Build ``image`` on the base image, Horovod's wheel cache and pip's cache mounted."""
    (cache / "build").mkdir(exist_ok=True)
    for key in share_host_wheels(cache_root() / "wheels", cache / "build" / "harness" / "wheels"):
        log(f"the host's Horovod wheel {key} offered to the image build")
    command = [
        *BUILDAH, "bud", *ISOLATION,
        "--format", "docker",  # as docker build makes it: keeps SHELL, which OCI images lack
        "--file", str(ROOT / image.dockerfile),
        "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
        "--build-arg", f"HARNESS_CACHE_DIR={BUILD_CACHE}/harness",
        "--build-arg", f"PIP_CACHE_DIR={BUILD_CACHE}/pip",
        "--volume", f"{cache / 'build'}:{BUILD_CACHE}",
    ]  # fmt: skip
    # pip in the build trusts what this host trusts (a TLS-intercepting proxy's CA, say); the image
    # itself keeps Debian's bundle.
    if HOST_CA_BUNDLE.is_file():
        command += ["--volume", f"{HOST_CA_BUNDLE}:{CA_MOUNT}:ro", "--build-arg", f"PIP_CERT={CA_MOUNT}"]
    # A wheel directory pip is configured with here (this machine's CPU torch) serves the CPU image
    # too; without one, its Dockerfile's default (torch's CPU index) applies. The GPU image takes
    # PyPI's CUDA build of torch.
    wheels = pip_find_links()
    if not image.gpu and wheels and Path(wheels).is_dir():
        command += [
            "--volume", f"{Path(wheels).resolve()}:{WHEELS_MOUNT}:ro",
            "--build-arg", f"PIP_FIND_LINKS={WHEELS_MOUNT}",
            "--build-arg", "TORCH_INDEX_URL=",
        ]  # fmt: skip
    remove_image(image.name)
    run("building the image", [*command, "--tag", image.name, str(ROOT)])


def gpu_build_problem(doctor: str, check_build: str) -> str | None:
    """What makes an image's stack no GPU build, from `harness doctor` and `horovodrun --check-build`:
    Horovod without NCCL, or a framework that is a CPU build. None: neither."""
    if not any("[X] NCCL" in line for line in check_build.splitlines()):
        return "its Horovod does not tick NCCL in horovodrun --check-build (above)"
    gpus = next((line for line in doctor.splitlines() if line.startswith("gpus ")), "")
    if gpus.count("(CUDA ") != 2:
        return f"its torch and TensorFlow are not both CUDA builds: harness doctor says {gpus.split(maxsplit=1)[-1]!r}"
    return None


def check_inside(image: Image, runs: Path) -> None:
    """`harness doctor` and `horovodrun --check-build`, then a 2-rank tiny training per framework,
    inside ``image``: torch on Horovod's Gloo controller, TF on its MPI one (the image has Open MPI)."""
    container = run("starting a container", [*BUILDAH, "from", image.name], capture=True).strip()
    try:
        # The host's UTS namespace: its hostname is in /etc/hosts (buildah's own container name is
        # not, unlike under docker run, and Gloo must resolve it).
        inside = [*BUILDAH, "run", *ISOLATION, "--uts", "host", "--volume", f"{runs}:/runs", container, "--"]
        doctor = run("harness doctor in the image", [*inside, "/opt/venv/bin/harness", "doctor"], capture=True)
        report = run("horovodrun --check-build in the image", [*inside, "/opt/venv/bin/horovodrun", "--check-build"],
                     capture=True)  # fmt: skip
        print(doctor + report, flush=True)
        if image.gpu and (problem := gpu_build_problem(doctor, report)):
            raise ImageTestError(f"the GPU image: {problem}")
        for framework, controller in (("torch", "gloo"), ("tf", "mpi")):
            started = time.monotonic()
            train = ["/opt/venv/bin/harness", "train", "--framework", framework, "--np", "2", "--model", "tiny"]
            train += ["--steps", "20", "--run-dir", f"/runs/{framework}", "--controller", controller]
            run(f"{framework} training in the image", [*inside, *train])
            summary = json.loads((runs / framework / "summary.json").read_text())
            checksums = summary["weights_sha256_per_rank"]
            if summary["world_size"] != 2 or len(set(checksums)) != 1:
                raise ImageTestError(f"{framework}: the ranks' final weights differ: {checksums}")
            log(f"{framework} ({controller}): 2 ranks, 20 steps, final loss {summary['final_loss']:.4f}, equal weights "
                f"({time.monotonic() - started:.0f} s)")  # fmt: skip
    finally:
        subprocess.run([*BUILDAH, "rm", container], capture_output=True)


def image_size(image: Image) -> str:
    listed = run("reading the image size", [*BUILDAH, "images", "--format", "{{.Size}}", image.name], capture=True)
    return listed.strip()


def gpu_inputs_digest(root: Path = ROOT) -> str:
    """sha256 over GPU_INPUTS' paths and contents."""
    digest = hashlib.sha256()
    for relative in GPU_INPUTS:
        digest.update(relative.encode() + b"\0" + (root / relative).read_bytes() + b"\0")
    return digest.hexdigest()


def gpu_image_due(mode: str, record: Path = GPU_RECORD, root: Path = ROOT) -> str | None:
    """Why the GPU image is built this run (a line to log), or None to skip it: ``--gpu always``, or
    ``changed`` and its inputs are not those of the last verified build (``record``)."""
    if mode != "changed":
        return f"--gpu {mode}" if mode in ("always", "only") else None
    try:
        verified = json.loads(record.read_text())
    except (OSError, ValueError):
        return f"no record of a verified build ({record.name})"
    if verified.get("inputs_sha256") != gpu_inputs_digest(root):
        return f"its inputs changed since the build verified on {verified.get('verified', '?')} ({record.name})"
    return None


def write_gpu_record(seconds: float, size: str, record: Path = GPU_RECORD) -> None:
    """Record the inputs of the GPU image that just passed (commit the file with the change)."""
    verified = {
        "inputs_sha256": gpu_inputs_digest(),
        "inputs": list(GPU_INPUTS),
        "verified": datetime.date.today().isoformat(),
        "build_and_check_s": round(seconds),
        "image_size": size,
    }
    partial = record.with_suffix(".partial")
    partial.write_text(json.dumps(verified, indent=2) + "\n")
    os.replace(partial, record)


def build_and_check(image: Image, cache: Path) -> tuple[dict[str, float], str]:
    """Build ``image`` and check inside it; returns the seconds each took and the image's size."""
    timings = {}
    started = time.monotonic()
    build(image, cache)
    timings["build"] = time.monotonic() - started
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as runs:
        check_inside(image, Path(runs))
    timings["checks + training"] = time.monotonic() - started
    return timings, image_size(image)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="drop the cached base image, rootfs and wheels first")
    parser.add_argument("--gpu", choices=("changed", "always", "never", "only"), default="changed",
                        help="build the GPU image too: when its inputs changed since the last verified build "
                             "(docker/gpu-image.verified; the default), always, never, or only it")  # fmt: skip
    parser.add_argument("--mirror", default="http://deb.debian.org/debian", help="Debian mirror for debootstrap")
    args = parser.parse_args(argv)
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        raise ImageTestError(f"needs {' and '.join(missing)}: apt-get install {' '.join(missing)}")
    if os.geteuid() != 0:
        raise ImageTestError("needs root (buildah with vfs storage and chroot isolation, debootstrap)")

    cache = cache_dir()
    if args.fresh:
        log(f"--fresh: removing {cache}, {BASE_IMAGE} and the test images")
        for name in (CPU_IMAGE.name, GPU_IMAGE.name, BASE_IMAGE):
            remove_image(name)
        shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    make_base(cache, args.mirror)
    log(f"base image: {time.monotonic() - started:.0f} s")
    images = [] if args.gpu == "only" else [CPU_IMAGE]
    why = gpu_image_due(args.gpu)
    if why is None:
        log(f"GPU image skipped (--gpu {args.gpu}" + (": its inputs are those of the last verified build)"
            if args.gpu == "changed" else ")"))  # fmt: skip
    else:
        log(f"GPU image built: {why}")
        images.append(GPU_IMAGE)
    for image in images:
        started = time.monotonic()
        timings, size = build_and_check(image, cache)
        spent = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in timings.items())
        log(f"passed: {image.name} ({size}); {spent}")
        if image.gpu:
            write_gpu_record(time.monotonic() - started, size)
            log(f"recorded in {GPU_RECORD.relative_to(ROOT)}: commit it, so that CI builds the GPU image again "
                "only when its inputs change")  # fmt: skip
            remove_image(image.name)  # its size again in buildah's vfs storage, for nothing further here


if __name__ == "__main__":
    try:
        main()
    except ImageTestError as err:
        sys.exit(f"Error: {PROG}: {err}")
