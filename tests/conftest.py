import sys
from pathlib import Path

# Let tests import helpers from the tests tree as plain modules.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib
import importlib.util
import os
import subprocess

# Triton (torch's CUDA builds) before any test module imports TensorFlow: models_tf/__init__.py says why.
if importlib.util.find_spec("triton") is not None:
    import triton  # noqa: F401

import pytest

from harness.data.inputs import default_corpus
from harness.data.pairs import demo_pairs
from harness.data.tokenizer import train_bpe, train_sentencepiece

SMALL_DISK_MIB = 4
# Under CI (.ci/run exports CI=true) every test must run: a skip there, for a missing tool or a
# refused privilege, fails the session with the reasons, so a CI in a weaker container cannot pass
# without the tests it could not run.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_skipped: list[tuple[str, str]] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append((report.nodeid, reason))


def pytest_terminal_summary(terminalreporter):
    if IN_CI and _skipped:
        terminalreporter.section("skipped under CI=true: each of these must run in CI", red=True)
        for nodeid, reason in _skipped:
            terminalreporter.line(f"{nodeid}: {reason}")


def pytest_sessionfinish(session):
    if IN_CI and _skipped:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def bpe_file(tmp_path_factory):
    """A 512-id byte-level BPE trained on the default corpus (once per test session)."""
    out = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    train_bpe([default_corpus()], 512, out)
    return out


@pytest.fixture(scope="session")
def pairs_spm(tmp_path_factory):
    """A SentencePiece unigram model (at most 400 pieces, <pad> and </s> among them) trained on the
    translation demo corpus's both sides (once per test session)."""
    out = tmp_path_factory.mktemp("sentencepiece") / "pairs.model"
    train_sentencepiece((side for pair in demo_pairs() for side in pair), 400, out, pairs=True)
    return out


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs mounted at tmp_path/disk for the test (root only; skips with the reason elsewhere)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK_MIB}m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip() or 'mount failed'}")
    try:
        yield mount_point
    finally:
        with contextlib.suppress(OSError):
            subprocess.run(["umount", "--lazy", str(mount_point)], check=False)
