"""Framework-neutral checkpoints, written atomically by rank 0 and verified before use.

    RUN_DIR/checkpoints/step_<N>/model.safetensors      weights (harness/state.py layout)
    RUN_DIR/checkpoints/step_<N>/optimizer.safetensors  AdamW step and moments
    RUN_DIR/checkpoints/step_<N>/trainer.json           step, data position, config, framework,
                                                        SHA-256 of both tensor files

A checkpoint is assembled in a hidden temporary directory, every file fsynced, then renamed into
place in one step: a reader sees a complete checkpoint or none. trainer.json is written last.
Old checkpoints are renamed to a hidden name before they are deleted, so a process killed at any
moment leaves only complete step_<N> directories (plus hidden leftovers, removed on resume).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.config import ModelConfig
from harness.state import State, check_state, load_state, optimizer_state_names, save_state

CHECKPOINT_DIR = re.compile(r"^step_(\d+)$")
PARTIAL_DIR = re.compile(r"^\.step_\d+\.(tmp|old)-\d+$")  # a write or a deletion cut short
TENSOR_FILES = ("model.safetensors", "optimizer.safetensors")


@dataclass
class Checkpoint:
    path: Path
    step: int
    model: State
    optimizer: State
    trainer: dict
    skipped: list[str] = field(default_factory=list)  # newer checkpoints passed over, and why


class CorruptCheckpointError(ValueError):
    """A checkpoint directory whose files are missing, unreadable or fail their checksums."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoints_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every finished checkpoint directory, oldest first."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return []
    found = [(int(m[1]), p) for p in root.iterdir() if p.is_dir() and (m := CHECKPOINT_DIR.match(p.name))]
    return sorted(found)


def save_checkpoint(run_dir: Path, step: int, model: State, optimizer: State, trainer: dict, keep: int) -> Path:
    """Write checkpoint ``step`` atomically, then delete all but the newest ``keep``."""
    root = checkpoints_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step}"
    tmp = root / f".step_{step}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_state(tmp / "model.safetensors", model)
    save_state(tmp / "optimizer.safetensors", optimizer)
    sums = {name: _sha256(tmp / name) for name in TENSOR_FILES}
    (tmp / "trainer.json").write_text(json.dumps({**trainer, "step": step, "sha256": sums}, indent=2) + "\n")
    for name in (*TENSOR_FILES, "trainer.json"):
        _fsync(tmp / name)
    _fsync(tmp)
    if final.exists():  # the same step saved again: swap the new one in whole
        _delete(final)
    os.replace(tmp, final)
    _fsync(root)
    for _, old in list_checkpoints(run_dir)[:-keep]:
        _delete(old)
    return final


def _delete(path: Path) -> None:
    """Hide a checkpoint first, so a deletion cut short never leaves a partial step_<N>."""
    hidden = path.with_name(f".{path.name}.old-{os.getpid()}")
    os.replace(path, hidden)
    shutil.rmtree(hidden)


def remove_partial_checkpoints(run_dir: Path) -> list[str]:
    """Delete what a killed writer left behind (hidden temporary or half-deleted directories)."""
    root = checkpoints_dir(run_dir)
    partial = sorted(p for p in root.iterdir() if PARTIAL_DIR.match(p.name)) if root.is_dir() else []
    for path in partial:
        shutil.rmtree(path, ignore_errors=True)
    return [path.name for path in partial]


def load_checkpoint(path: Path, model_config: ModelConfig | None = None) -> Checkpoint:
    """Read and verify one checkpoint; ``ValueError`` says what is wrong with it.

    With ``model_config`` the checkpoint must have been written for exactly that model; without,
    the model config saved in the checkpoint is used.
    """
    path = Path(path)
    try:
        trainer = json.loads((path / "trainer.json").read_text())
        sums = trainer["sha256"]
    except (OSError, ValueError, KeyError) as err:
        raise CorruptCheckpointError(f"checkpoint {path} is incomplete or unreadable: trainer.json: {err}") from None
    for name in TENSOR_FILES:
        if not (path / name).is_file() or _sha256(path / name) != sums.get(name):
            raise CorruptCheckpointError(f"checkpoint {path} is corrupt: {name} is missing, truncated or modified")
    saved = trainer.get("config", {}).get("model", {})
    if model_config is None:
        model_config = ModelConfig(**saved)
    expected = asdict(model_config)
    if saved != expected:
        changed = sorted(k for k in expected if saved.get(k) != expected[k])
        raise ValueError(
            f"checkpoint {path} was written for a different model config (differs in {', '.join(changed)})"
        )
    model, optimizer = load_state(path / "model.safetensors"), load_state(path / "optimizer.safetensors")
    check_state(model_config, model)
    if sorted(optimizer) != sorted(optimizer_state_names(model_config)):
        raise ValueError(f"checkpoint {path} has an optimizer state that does not match the model config")
    return Checkpoint(path=path, step=int(trainer["step"]), model=model, optimizer=optimizer, trainer=trainer)


def latest_checkpoint(run_dir: Path, model_config: ModelConfig | None = None) -> Checkpoint:
    """The newest checkpoint of ``run_dir`` that verifies; corrupt newer ones are skipped and named
    in ``Checkpoint.skipped``. ``ValueError`` if none verifies, or one was written for another model.
    """
    found = list_checkpoints(run_dir)
    if not found:
        raise ValueError(f"no checkpoint to resume from in {checkpoints_dir(run_dir)}")
    skipped = []
    for _, path in reversed(found):
        try:
            checkpoint = load_checkpoint(path, model_config)
        except CorruptCheckpointError as err:
            skipped.append(str(err))
            continue
        checkpoint.skipped = skipped
        return checkpoint
    raise ValueError(f"no valid checkpoint in {checkpoints_dir(run_dir)}: {'; '.join(skipped)}")
