"""Check that every file naming a pinned version agrees with versions.env.

The Makefile includes versions.env and the Dockerfiles run ``make setup``, so torch, TensorFlow and
Horovod come from there; what the Dockerfiles and pyproject.toml must still spell out themselves
(base image, Python, extras) is compared here. ``python -m launch.versions [ROOT]`` prints each
drift on its own line and exits 1, or prints one OK line.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from launch.build_horovod import read_versions

ROOT = Path(__file__).resolve().parent.parent
# The ARGs each Dockerfile must declare (with versions.env's value as the default).
DOCKERFILE_ARGS = {
    "docker/Dockerfile": ("PYTHON_VERSION", "TORCH_GPU_VERSION"),
    "docker/Dockerfile.cpu": ("PYTHON_VERSION",),
}
# The packages of pyproject.toml's transformers-tf extra, and the versions.env pin of each.
TRANSFORMERS_TF_PINS = {
    "transformers": "TRANSFORMERS_TF_VERSION",
    "tf-keras": "TF_KERAS_VERSION",
    "huggingface_hub": "HF_HUB_TF_VERSION",
    "tokenizers": "TOKENIZERS_TF_VERSION",
}
ARG_LINE = re.compile(r"^\s*ARG\s+(?P<name>\w+)=(?P<value>\S+)\s*$", re.MULTILINE)


def check_pyproject(pins: dict[str, str], path: Path) -> list[str]:
    project = tomllib.loads(path.read_text())["project"]
    problems = []
    expected_python = f">={pins['PYTHON_VERSION']}"
    if project.get("requires-python") != expected_python:
        problems.append(
            f"{path.name}: requires-python is {project.get('requires-python')!r}, expected {expected_python!r}"
        )
    frameworks = project.get("optional-dependencies", {}).get("frameworks", [])
    for requirement in (f"torch=={pins['TORCH_VERSION']}", f"tensorflow=={pins['TENSORFLOW_VERSION']}"):
        if requirement not in frameworks:
            problems.append(f"{path.name}: extra 'frameworks' is {frameworks}, expected it to list {requirement!r}")
    listed = project.get("optional-dependencies", {}).get("transformers-tf", [])
    for package, pin in TRANSFORMERS_TF_PINS.items():
        requirement = f"{package}=={pins[pin]}"
        if requirement not in listed:
            problems.append(f"{path.name}: extra 'transformers-tf' is {listed}, expected it to list {requirement!r}")
    return problems


def check_makefile(pins: dict[str, str], path: Path) -> list[str]:
    text = path.read_text()
    problems = (
        [] if re.search(r"^include versions\.env$", text, re.MULTILINE) else [f"{path.name}: no 'include versions.env'"]
    )
    problems += [
        f"{path.name}: spells out {name}'s value {value!r}; use $({name})"
        for name, value in pins.items()
        if value in text
    ]
    return problems


def check_dockerfile(pins: dict[str, str], path: Path, required: tuple[str, ...]) -> list[str]:
    text = path.read_text()
    declared = {m["name"]: m["value"] for m in ARG_LINE.finditer(text)}
    problems = [f"{path.name}: no ARG {name}= default" for name in required if name not in declared]
    problems += [
        f"{path.name}: ARG {name}={value}, but versions.env pins {name}={pins[name]}"
        for name, value in declared.items()
        if name in pins and value != pins[name]
    ]
    if "make setup" not in text:
        problems.append(f"{path.name}: does not run `make setup` (the one install path that reads versions.env)")
    return problems


def check(root: Path = ROOT) -> list[str]:
    """Every disagreement between versions.env and the files that must follow it (empty: none)."""
    pins = read_versions(root / "versions.env")
    problems = check_pyproject(pins, root / "pyproject.toml") + check_makefile(pins, root / "Makefile")
    for relative, required in DOCKERFILE_ARGS.items():
        problems += check_dockerfile(pins, root / relative, required)
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else ROOT
    problems = check(root)
    for problem in problems:
        print(f"version drift: {problem}", file=sys.stderr)
    if not problems:
        print(f"versions agree: {', '.join(f'{k}={v}' for k, v in read_versions(root / 'versions.env').items())}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
