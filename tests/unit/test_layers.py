"""The layer contract of `make lint` (pyproject.toml's [tool.importlinter]): kept by the tree as it
is, and broken by a deliberately wrong import in a copy of it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("harness", "models_torch", "models_tf", "launch")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)}  # the copy, not the installed tree
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True)


@pytest.fixture
def tree(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def add_import(module: Path, line: str) -> None:
    module.write_text(module.read_text() + f"\n{line}\n")


def test_the_tree_keeps_the_contract(tree):
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # the generic run layer reaching into a family's format
        (
            "harness/runner/config.py",
            "from harness.families.gpt import hf",
            "harness.runner.config -> harness.families.gpt",
        ),
        # a lower layer importing a higher one
        ("harness/data/order.py", "from harness.loop import trainer", "harness.data.order -> harness.loop.trainer"),
        # the loop importing a framework
        ("harness/loop/trainer.py", "import torch", "harness.loop.trainer -> torch"),
        # the loop importing the twin checks, which import both frameworks
        (
            "harness/loop/evaluator.py",
            "from harness.testing import twins",
            "harness.loop is not allowed to import harness.testing",
        ),
        # one framework's package importing the other's
        ("models_torch/ops.py", "from models_tf import ops", "models_torch.ops -> models_tf.ops"),
        # a cycle between two sibling modules of one layer
        ("harness/loop/trainer.py", "from harness.loop import reporter", "No cycles are allowed in harness.loop"),
        # the same cycle through type annotations only
        (
            "harness/loop/trainer.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from harness.loop import reporter",
            "No cycles are allowed in harness.loop",
        ),
    ],
)
def test_a_wrong_import_breaks_it(tree, module, line, broken):
    add_import(tree / module, line)
    result = lint_imports(tree)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout and broken in result.stdout, result.stdout
