"""Where a run starts: the checkpoint it resumes from, or the weights ``--init-from`` gives it."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.contract.config import RunConfig
from harness.contract.family import Family, external_format
from harness.contract.state import State
from harness.data.corpus import data_tokenizer
from harness.data.tokenizer import Tokenizer, load_tokenizer, tokenizer_beside
from harness.storage.checkpoint import (
    Checkpoint,
    check_tokenizer,
    latest_checkpoint,
    list_checkpoints,
    remove_partial_checkpoints,
)


def resume_point(run_dir: Path, family: Family, config: RunConfig, resume: bool) -> Checkpoint | None:
    """The verified checkpoint to resume from, or None for a fresh run; ``ValueError`` when the
    run directory and the request disagree (so nothing in it is touched)."""
    if resume:
        checkpoint = latest_checkpoint(run_dir, family, config.model)
        check_tokenizer(checkpoint, data_tokenizer(config.data))
        if checkpoint.step >= config.train.steps:
            raise ValueError(
                f"{run_dir} is already at step {checkpoint.step} of {config.train.steps}; "
                "pass a larger --steps to train further"
            )
        return checkpoint
    if list_checkpoints(run_dir):
        raise ValueError(f"{run_dir} already holds checkpoints; pass --resume, or choose a new --run-dir")
    return None


def open_resume_point(run_dir: Path, family: Family, config: RunConfig, resume: bool) -> Checkpoint | None:
    """``resume_point``, saying on stderr what it skipped and removed."""
    checkpoint = resume_point(run_dir, family, config, resume)
    if checkpoint is not None:
        say_skipped(checkpoint)
        removed = remove_partial_checkpoints(run_dir)
        if removed:
            print(f"removed what an interrupted writer left: {', '.join(removed)}", file=sys.stderr, flush=True)
        print(f"resuming from {checkpoint.path} (step {checkpoint.step})", file=sys.stderr, flush=True)
    return checkpoint


def newest_checkpoint(run_dir: str | Path, option: str, family: Family | None = None) -> Checkpoint:
    """``latest_checkpoint`` of the run directory a user gave as ``option``, whose errors name it."""
    try:
        return latest_checkpoint(Path(run_dir), family)
    except ValueError as err:
        raise ValueError(f"{option} {run_dir}: {err}") from None


def say_skipped(checkpoint: Checkpoint) -> None:
    """Name on stderr what ``latest_checkpoint`` passed over to reach ``checkpoint`` (newer corrupt ones)."""
    for reason in checkpoint.skipped:
        print(f"skipped a checkpoint: {reason}", file=sys.stderr, flush=True)


def initial_state(init_from: str, family: Family, fresh: State, tokenizer: Tokenizer) -> State:
    """``fresh`` with the tensors of ``init_from``'s newest checkpoint, saying on stderr what it took."""
    state, origin, left_fresh = initial_state_from(Path(init_from), family, fresh, tokenizer)
    print(
        f"initialised {len(fresh) - len(left_fresh)} tensors from {origin}; fresh: {', '.join(left_fresh) or 'none'}",
        file=sys.stderr,
        flush=True,
    )
    return state


def initial_state_from(
    source: Path, family: Family, fresh: State, tokenizer: Tokenizer
) -> tuple[State, str, list[str]]:
    """``fresh`` with every tensor that ``source`` holds under the same name: the newest checkpoint
    of a run of the same family (any head, the same ``tokenizer``), e.g. a pretrained encoder under
    a new task head; or a directory in one of the family's external formats (``Family.formats``),
    which must hold them all.

    Returns the state, what it came from and the names left fresh; ``ValueError`` when the family
    or the tokenizer differs, a shared name has another shape, or nothing is shared.
    """
    known = external_format(family, source)
    if known is not None:
        _, model = known.read_state(Path(source))
        origin = f"{source} ({known.description})"
        theirs = tokenizer_beside(source)
        if theirs is not None and load_tokenizer(str(theirs)).sha256 != tokenizer.sha256:
            raise ValueError(f"--init-from {source}: its {theirs.name} is not this run's tokenizer ({tokenizer.name})")
    else:
        checkpoint = newest_checkpoint(source, "--init-from")
        if checkpoint.family.name != family.name:
            raise ValueError(
                f"--init-from {source}: its checkpoints are of family {checkpoint.family.name!r}, not {family.name!r}"
            )
        check_tokenizer(checkpoint, tokenizer)
        say_skipped(checkpoint)
        model, origin = checkpoint.model, f"{checkpoint.path} (step {checkpoint.step})"
    shared = [name for name in fresh if name in model]
    for name in shared:
        if model[name].shape != fresh[name].shape:
            raise ValueError(
                f"--init-from {origin}: {name} has shape {model[name].shape} there, "
                f"{fresh[name].shape} in this model; the two model configs differ"
            )
    if not shared:
        raise ValueError(f"--init-from {origin}: no tensor of it belongs to this model")
    return {**fresh, **{name: model[name] for name in shared}}, origin, [n for n in fresh if n not in shared]
