"""`make image-test`: build the CPU image for real and train inside it.

No Docker engine here, and no image registry to pull a base from, so:
1. a Debian bookworm base image is made with debootstrap (`FROM scratch` + the root filesystem)
   and kept in buildah's storage, its tarball cached under the cache directory;
2. docker/Dockerfile.cpu is built on it with buildah (vfs storage, chroot isolation), with
   Horovod's wheel cache and pip's cache mounted from the cache directory, so that a re-run
   does not recompile Horovod; the Horovod wheels this host built (`make setup`) are linked into
   that cache first under their keys, so that an image whose key is the host's (the same Horovod,
   frameworks, Python minor version, platform, switches and patches) does not compile it either;
3. inside the image: `harness doctor`, then a 2-rank training of the `tiny` model with each
   framework (torch on Gloo, TF on Open MPI), whose summary must show both ranks ending with
   equal weights.

Standard library only: it runs before `make setup`. Needs root, buildah and debootstrap.

    python3 -m launch.image_test            # caches warm when present
    python3 -m launch.image_test --fresh    # drop the cached base image, rootfs, pip cache and image wheels
                                            # first (the host's wheel is offered again: no compile)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from launch.build_horovod import cache_root

PROG = "image-test"
ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "localhost/harness-base:bookworm"
IMAGE = "localhost/horovod-harness:cpu-test"
BUILDAH = ["buildah", "--storage-driver", "vfs"]
ISOLATION = ["--isolation", "chroot"]
# Where the image build sees the mounted caches (docker/Dockerfile.cpu's ARGs point there).
BUILD_CACHE = "/var/cache/harness-image-test"
WHEELS_MOUNT = "/var/cache/harness-wheels"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_MOUNT = "/var/cache/harness-ca-bundle.crt"


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


def build(dockerfile: Path, cache: Path) -> None:
    """Build ``dockerfile`` on the base image, Horovod's wheel cache and pip's cache mounted."""
    (cache / "build").mkdir(exist_ok=True)
    for key in share_host_wheels(cache_root() / "wheels", cache / "build" / "harness" / "wheels"):
        log(f"the host's Horovod wheel {key} offered to the image build")
    command = [
        *BUILDAH, "bud", *ISOLATION,
        "--format", "docker",  # as docker build makes it: keeps SHELL, which OCI images lack
        "--file", str(dockerfile),
        "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
        "--build-arg", f"HARNESS_CACHE_DIR={BUILD_CACHE}/harness",
        "--build-arg", f"PIP_CACHE_DIR={BUILD_CACHE}/pip",
        "--volume", f"{cache / 'build'}:{BUILD_CACHE}",
    ]  # fmt: skip
    # pip in the build trusts what this host trusts (a TLS-intercepting proxy's CA, say); the image
    # itself keeps Debian's bundle.
    if HOST_CA_BUNDLE.is_file():
        command += ["--volume", f"{HOST_CA_BUNDLE}:{CA_MOUNT}:ro", "--build-arg", f"PIP_CERT={CA_MOUNT}"]
    # A wheel directory pip is configured with here (this machine's CPU torch) serves the image too;
    # without one, the Dockerfile's default (torch's CPU index) applies.
    wheels = pip_find_links()
    if wheels and Path(wheels).is_dir():
        command += [
            "--volume", f"{Path(wheels).resolve()}:{WHEELS_MOUNT}:ro",
            "--build-arg", f"PIP_FIND_LINKS={WHEELS_MOUNT}",
            "--build-arg", "TORCH_INDEX_URL=",
        ]  # fmt: skip
    remove_image(IMAGE)
    run("building the image", [*command, "--tag", IMAGE, str(ROOT)])


def check_inside(runs: Path) -> None:
    """`harness doctor`, then a 2-rank tiny training per framework, inside the image: torch on
    Horovod's Gloo controller, TF on its MPI one (the image has Open MPI)."""
    container = run("starting a container", [*BUILDAH, "from", IMAGE], capture=True).strip()
    try:
        # The host's UTS namespace: its hostname is in /etc/hosts (buildah's own container name is
        # not, unlike under docker run, and Gloo must resolve it).
        inside = [*BUILDAH, "run", *ISOLATION, "--uts", "host", "--volume", f"{runs}:/runs", container, "--"]
        run("harness doctor in the image", [*inside, "/opt/venv/bin/harness", "doctor"])
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


def image_size() -> str:
    return run("reading the image size", [*BUILDAH, "images", "--format", "{{.Size}}", IMAGE], capture=True).strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="drop the cached base image, rootfs and wheels first")
    parser.add_argument("--file", type=Path, default=ROOT / "docker" / "Dockerfile.cpu", help="the Dockerfile")
    parser.add_argument("--mirror", default="http://deb.debian.org/debian", help="Debian mirror for debootstrap")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        raise ImageTestError(f"--file {args.file}: no such Dockerfile")
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        raise ImageTestError(f"needs {' and '.join(missing)}: apt-get install {' '.join(missing)}")
    if os.geteuid() != 0:
        raise ImageTestError("needs root (buildah with vfs storage and chroot isolation, debootstrap)")

    cache = cache_dir()
    if args.fresh:
        log(f"--fresh: removing {cache}, {BASE_IMAGE} and {IMAGE}")
        remove_image(IMAGE)
        remove_image(BASE_IMAGE)
        shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    timings = {}
    started = time.monotonic()
    make_base(cache, args.mirror)
    timings["base image"] = time.monotonic() - started
    started = time.monotonic()
    build(args.file, cache)
    timings["image build"] = time.monotonic() - started
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as runs:
        check_inside(Path(runs))
    timings["doctor + training"] = time.monotonic() - started
    spent = ", ".join(f"{step} {seconds:.0f} s" for step, seconds in timings.items())
    log(f"passed: {IMAGE} ({image_size()}); {spent}")


if __name__ == "__main__":
    try:
        main()
    except ImageTestError as err:
        sys.exit(f"Error: {PROG}: {err}")
