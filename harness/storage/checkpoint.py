"""Framework-neutral checkpoints, written atomically by rank 0 and verified before use.

    RUN_DIR/checkpoints/step_<N>/model.safetensors      weights (the family's neutral layout)
    RUN_DIR/checkpoints/step_<N>/optimizer.safetensors  AdamW step and moments
    RUN_DIR/checkpoints/step_<N>/trainer.json           step, data position, config, family,
                                                        framework, tokenizer, SHA-256 of the files
    RUN_DIR/checkpoints/step_<N>/tokenizer.json         the run's tokenizer (none for bytes)

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
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.contract.family import DEFAULT_FAMILY, Family, load_family
from harness.contract.state import State, check_state, load_state, optimizer_moments, save_state
from harness.data.tokenizer import BYTES, Tokenizer, load_tokenizer, tokenizer_beside

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
    family: Family
    model_config: Any  # the family's config the checkpoint was written for
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


def foreign_entries(run_dir: Path) -> list[str]:
    """Names in RUN_DIR/checkpoints that are neither checkpoints (step_<N> directories) nor what a
    killed writer left (those are removed on resume)."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return []
    ours = lambda p: (p.is_dir() and CHECKPOINT_DIR.match(p.name)) or PARTIAL_DIR.match(p.name)  # noqa: E731
    return sorted(p.name for p in root.iterdir() if not ours(p))


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: State,
    optimizer: State,
    trainer: dict,
    keep: int,
    on_file: Callable[[Path], None] = lambda path: None,
    files: Mapping[str, Path] = MappingProxyType({}),
) -> Path:
    """Write checkpoint ``step`` atomically, then delete all but the newest ``keep``.

    ``files`` (name -> path) are copied in beside the tensors (the tokenizer) and checksummed with
    them; ``on_file`` hears of each file once it is written into the hidden directory.
    """
    root = checkpoints_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step}"
    tmp = root / f".step_{step}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, state in zip(TENSOR_FILES, (model, optimizer), strict=True):
            save_state(tmp / name, state)
            on_file(tmp / name)
        for name, source in files.items():
            shutil.copyfile(source, tmp / name)
            on_file(tmp / name)
        sums = {name: _sha256(tmp / name) for name in (*TENSOR_FILES, *files)}
        (tmp / "trainer.json").write_text(json.dumps({**trainer, "step": step, "sha256": sums}, indent=2) + "\n")
        on_file(tmp / "trainer.json")
        for name in (*sums, "trainer.json"):
            _fsync(tmp / name)
        _fsync(tmp)
    except OSError:  # a full disk, say: give the space back, leave the older checkpoints as they were
        shutil.rmtree(tmp, ignore_errors=True)
        raise
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


def load_checkpoint(path: Path, family: Family | None = None, model_config: Any = None) -> Checkpoint:
    """Read and verify one checkpoint; ``ValueError`` says what is wrong with it.

    With ``family`` (and ``model_config``) the checkpoint must have been written for exactly that
    family (and model config); without, the family and the model config saved in it are used.
    """
    path = Path(path)
    try:
        trainer = json.loads((path / "trainer.json").read_text())
        sums, step, config = trainer["sha256"], trainer["step"], trainer.get("config", {})
        if not (isinstance(sums, dict) and isinstance(step, int) and isinstance(config, dict)):
            raise ValueError("its sha256, step or config has the wrong type")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise CorruptCheckpointError(f"checkpoint {path} is incomplete or unreadable: trainer.json: {err}") from None
    for name in dict.fromkeys([*TENSOR_FILES, *sums]):
        if not (path / name).is_file() or _sha256(path / name) != sums.get(name):
            raise CorruptCheckpointError(f"checkpoint {path} is corrupt: {name} is missing, truncated or modified")
    saved_family = trainer.get("family", DEFAULT_FAMILY)  # written before families: the GPT twin
    if family is None:
        family = load_family(saved_family)
    elif saved_family not in (family.spec, family.name) and family_name(saved_family) != family.name:
        raise ValueError(f"checkpoint {path} was written for model family {saved_family!r}, not {family.spec!r}")
    saved = config.get("model", {})
    if model_config is None:
        model_config = family.config_from_dict(saved)
    expected = json.loads(json.dumps(asdict(model_config)))  # as trainer.json holds it (tuples as lists)
    if saved != expected:
        changed = sorted(k for k in expected if saved.get(k) != expected[k])
        raise ValueError(
            f"checkpoint {path} was written for a different model config (differs in {', '.join(changed)})"
        )
    shapes = family.state_shapes(model_config)
    model, optimizer = load_state(path / "model.safetensors"), load_state(path / "optimizer.safetensors")
    check_state(shapes, model)
    try:
        optimizer_moments(shapes, optimizer)
    except ValueError as err:
        raise ValueError(f"checkpoint {path}: {err}") from None
    return Checkpoint(
        path=path,
        step=step,
        model=model,
        optimizer=optimizer,
        trainer=trainer,
        family=family,
        model_config=model_config,
    )


def family_name(spec: str) -> str:
    """The name of the family ``spec`` loads (the spec itself when it no longer loads)."""
    try:
        return load_family(spec).name
    except ValueError:
        return spec


def latest_checkpoint(run_dir: Path, family: Family | None = None, model_config: Any = None) -> Checkpoint:
    """The newest checkpoint of ``run_dir`` that verifies; corrupt newer ones are skipped and named
    in ``Checkpoint.skipped``. ``ValueError`` if none verifies, or one was written for another model.
    """
    found = list_checkpoints(run_dir)
    skipped = [
        f"{checkpoints_dir(run_dir) / name} is not a checkpoint (those are step_<N> directories)"
        for name in foreign_entries(run_dir)
    ]
    if not found:
        raise ValueError(f"no checkpoint in {checkpoints_dir(run_dir)}" + "".join(f"; {why}" for why in skipped))
    for _, path in reversed(found):
        try:
            checkpoint = load_checkpoint(path, family, model_config)
        except CorruptCheckpointError as err:
            skipped.append(str(err))
            continue
        checkpoint.skipped = skipped
        return checkpoint
    raise ValueError(f"no valid checkpoint in {checkpoints_dir(run_dir)}: {'; '.join(skipped)}")


def tokenizer_record(tokenizer: Tokenizer) -> dict:
    """What trainer.json says of the run's tokenizer."""
    return {"sha256": tokenizer.sha256, "vocab_size": tokenizer.vocab_size}


def checkpoint_tokenizer(checkpoint: Checkpoint) -> Tokenizer:
    """The tokenizer a checkpoint was trained with (its own copy; bytes when it records none)."""
    if checkpoint.trainer.get("tokenizer", {}).get("sha256", BYTES) == BYTES:
        return load_tokenizer(BYTES)
    path = tokenizer_beside(checkpoint.path)
    if path is None:
        raise ValueError(f"checkpoint {checkpoint.path} records a tokenizer but holds no tokenizer file")
    return load_tokenizer(str(path))


def check_tokenizer(checkpoint: Checkpoint, tokenizer: Tokenizer) -> None:
    """``ValueError`` unless ``tokenizer`` is the one ``checkpoint`` was trained with."""
    saved = checkpoint.trainer.get("tokenizer", {}).get("sha256", BYTES)
    if saved != tokenizer.sha256:
        raise ValueError(
            f"the tokenizer ({tokenizer.name}) is not the one checkpoint {checkpoint.path} was trained with "
            f"(sha256 {saved[:12]}); its ids would mean other text: use the tokenizer file stored in that checkpoint"
        )
