"""The run configuration: one frozen dataclass per TOML table, built from a family's preset, a TOML
file and ``--set`` overrides, each value checked by name."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.family import Family


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation. ``batch_size`` is per rank: the global batch is ``batch_size * world_size``."""

    seed: int = 1234
    steps: int = 300
    batch_size: int = 16
    lr: float = 2e-3
    # "linear" multiplies lr by the world size (Goyal et al.); "none" keeps it as given.
    lr_scaling: str = "none"
    warmup_steps: int = 30
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0
    # Deterministic kernels in both frameworks (torch.use_deterministic_algorithms,
    # tf.config.experimental.enable_op_determinism): what `harness parity` runs with.
    deterministic: bool = False
    # A non-finite loss or gradient norm never reaches the weights. By default it stops the run;
    # with skip_nonfinite the step is skipped (counted as "skipped" in the metrics) and training goes on.
    skip_nonfinite: bool = False
    # Micro-batches of batch_size per optimizer step and rank, with one allreduce per step:
    # the same update as a batch of accumulation_steps * batch_size.
    accumulation_steps: int = 1
    # "fp32"; "bf16": matmul inputs in bfloat16, weights, norms and the loss in fp32 (model.py);
    # "fp16": matmuls in float16 with dynamic loss scaling (meant for CUDA; runs on CPUs too).
    precision: str = "fp32"
    initial_loss_scale: float = 2.0**16  # fp16 only; torch.amp.GradScaler's default
    # Horovod's wire format for gradients: "none" (float32) or "fp16" (half the bytes).
    compression: str = "none"
    # Grouped allreduces the gradients travel in per step: 1 (default) reduces all of them in one
    # after the backward pass, N > 1 in N groups of parameters, each sent once its gradients are all
    # ready, 0 each tensor as soon as it is ready (Horovod's default). One group measured fastest
    # here in both frameworks (README, "Benchmarks"); on GPUs, measure with `harness bench`.
    gradient_groups: int = 1
    # Label smoothing epsilon of the cross-entropy: the target distribution puts 1 - epsilon on the
    # true class and spreads epsilon uniformly over all classes (Szegedy et al. 2016; torch's rule).
    label_smoothing: float = 0.0
    # A run directory whose newest checkpoint gives the starting weights of every tensor this model
    # shares with it (same name and shape: a pretrained encoder under a new head); "" starts fresh.
    init_from: str = ""

    @property
    def windows_per_rank(self) -> int:
        """Examples each rank reads per optimizer step: accumulation_steps micro-batches of batch_size."""
        return self.batch_size * self.accumulation_steps

    def __post_init__(self) -> None:
        choices = {"precision": ("fp32", "bf16", "fp16"), "compression": ("none", "fp16")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"train.{name} must be one of {list(allowed)}, received {getattr(self, name)!r}")
        if self.gradient_groups < 0:
            raise ValueError(f"train.gradient_groups must be >= 0, received {self.gradient_groups!r}")
        if self.initial_loss_scale <= 0:
            raise ValueError(f"train.initial_loss_scale must be > 0, received {self.initial_loss_scale!r}")
        for name in ("steps", "batch_size", "accumulation_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"train.{name} must be positive, received {getattr(self, name)!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"train.label_smoothing must be in [0, 1), received {self.label_smoothing!r}")
        if self.lr_scaling not in ("none", "linear"):
            raise ValueError(f"train.lr_scaling must be 'none' or 'linear', received {self.lr_scaling!r}")
        if self.lr <= 0 or self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1 or self.grad_clip < 0:
            raise ValueError(
                "train.lr must be > 0, train.warmup_steps >= 0, train.min_lr_ratio in [0, 1] and "
                f"train.grad_clip >= 0; received lr={self.lr}, warmup_steps={self.warmup_steps}, "
                f"min_lr_ratio={self.min_lr_ratio}, grad_clip={self.grad_clip}"
            )


@dataclass(frozen=True)
class DataConfig:
    """What to train on: ``paths`` (files, directories, globs, JSON lines, Parquet, saved ``datasets``;
    harness/inputs.py; empty: CPython's own documentation) read through ``tokenizer`` ("bytes" or a
    tokenizer.json), or a directory ``harness prepare`` made from them (``prepared``)."""

    paths: tuple[str, ...] = ()
    val_fraction: float = 0.1
    tokenizer: str = "bytes"
    text_field: str = "text"  # the text of a JSON-lines record, a Parquet or a datasets row
    prepared: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in (0, 1), received {self.val_fraction!r}")
        if not self.text_field or not self.tokenizer:
            raise ValueError(
                "data.text_field and data.tokenizer must not be empty, received "
                f"{self.text_field!r}, {self.tokenizer!r}"
            )
        if self.prepared and self.paths:
            raise ValueError(
                f"data.prepared ({self.prepared!r}) already holds the tokenized inputs; data.paths must be empty, "
                f"received {list(self.paths)}"
            )


@dataclass(frozen=True)
class EvalConfig:
    """Rank-0 evaluation over the validation split every ``every`` steps (0: only at the end)."""

    every: int = 100
    batch_size: int = 32
    max_examples: int = 0  # evaluate the first this many validation examples (0: all of them)

    def __post_init__(self) -> None:
        if self.every < 0 or self.batch_size <= 0 or self.max_examples < 0:
            raise ValueError(
                "eval.every and eval.max_examples must be >= 0 and eval.batch_size > 0, received "
                f"{self.every}, {self.max_examples}, {self.batch_size}"
            )


@dataclass(frozen=True)
class CheckpointConfig:
    """Rank-0 checkpoints every ``every`` steps (0: only at the end); the newest ``keep`` are kept."""

    every: int = 100
    keep: int = 3

    def __post_init__(self) -> None:
        if self.every < 0 or self.keep < 1:
            raise ValueError(
                f"checkpoint.every must be >= 0 and checkpoint.keep >= 1, received {self.every}, {self.keep}"
            )


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs; identical on every rank and in both frameworks."""

    model: Any  # the family's config dataclass
    train: TrainConfig = TrainConfig()
    data: DataConfig = DataConfig()
    eval: EvalConfig = EvalConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _parse_value(text: str):
    """A ``--set`` value as TOML (``3``, ``1e-3``, ``true``, ``["a", "b"]``), else as a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _coerce(key: str, value, expected):
    """Check ``value`` against a field's annotated type; ints are accepted where floats are expected."""
    if expected in ("int", int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        kind = "an integer"
    elif expected in ("float", float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
        kind = "a number"
    elif expected in ("bool", bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif str(expected).startswith("tuple[str"):
        value = [value] if isinstance(value, str) else value
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value, kind = (tuple(value) if ok else value), "a list of strings"
    else:  # str and Literal[...] of str: the dataclass validates the choice itself
        ok, kind = isinstance(value, str), "a string"
    if not ok:
        raise ValueError(f"config key {key} expects {kind}, received {value!r} ({type(value).__name__})")
    return value


def build_run_config(
    family: Family, preset: str, file_values: dict | None = None, overrides: list[str] = ()
) -> RunConfig:
    """The family's ``preset`` and its ``run_defaults``, then the TOML file's tables, then ``key=value``
    overrides (dotted keys).

    Raises ``ValueError`` naming the key for unknown keys, wrong types and invalid values.
    """
    sections = {f.name: f for f in dataclasses.fields(RunConfig)}
    values: dict[str, dict] = {name: {} for name in sections}
    for section, table in (file_values or {}).items():
        if section not in sections or not isinstance(table, dict):
            raise ValueError(f"unknown config table [{section}]; expected one of {sorted(sections)}")
        values[section].update(table)
    values["model"].pop("family", None)  # chose the family (read_config_file's caller)
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise ValueError(f"--set expects SECTION.KEY=VALUE, received {item!r}")
        if section not in sections:
            raise ValueError(f"unknown config key {key.strip()!r}; sections are {sorted(sections)}")
        if (section, name) == ("model", "family"):
            raise ValueError("the model family is chosen with --family (or [model] family in the config file)")
        values[section][name] = _parse_value(text.strip())
    built = {"model": _build_table("model", family.preset(preset), values["model"])}
    tables = _table_classes()
    suggested = _family_defaults(family, built["model"], tables)
    for section, cls in tables.items():
        built[section] = _build_table(section, cls(), {**suggested.get(section, {}), **values[section]})
    built["model"], built["data"], imported = _follow_init_from(family, built, values["model"])
    built["model"] = _follow_tokenizer(
        family, built["model"], built["data"], imported or "vocab_size" in values["model"]
    )
    return RunConfig(**built)


def _table_classes() -> dict[str, type]:
    """RunConfig's tables but the family's own ``model``: name -> config dataclass."""
    fields = dataclasses.fields(RunConfig)
    return {f.name: f.type if isinstance(f.type, type) else globals()[f.type] for f in fields if f.name != "model"}


def _build_table(section: str, base: Any, given: dict) -> Any:
    """``base`` (a config dataclass) with the ``given`` keys, each checked by name and type."""
    hints = {f.name: f.type for f in dataclasses.fields(base)}
    for name in given:
        if name not in hints:
            raise ValueError(f"unknown config key '{section}.{name}'; known keys in [{section}]: {', '.join(hints)}")
    return dataclasses.replace(
        base, **{name: _coerce(f"{section}.{name}", v, hints[name]) for name, v in given.items()}
    )


def _family_defaults(family: Family, model: Any, tables: dict[str, type]) -> dict[str, dict]:
    """The family's suggested settings for ``model``, by table of ``tables`` (``_table_classes``);
    the model table is its presets' job."""
    suggested = family.run_defaults(model) if family.run_defaults else {}
    unknown = [
        f"{table}.{key}"
        for table, settings in suggested.items()
        for key in settings
        if table not in tables or key not in {f.name for f in dataclasses.fields(tables[table])}
    ]
    if unknown:
        raise ValueError(
            f"family {family.name!r}: run_defaults sets {unknown}, which the run config does not have "
            f"(its tables: {sorted(tables)})"
        )
    return {table: dict(settings) for table, settings in suggested.items()}


def _follow_init_from(family: Family, built: dict, given: dict) -> tuple[Any, DataConfig, bool]:
    """With train.init_from a Hugging Face GPT-2 directory: its model config (model keys given
    explicitly must agree, but for dropout) and, unless data.tokenizer is set, its tokenizer.json.
    Returns the model config, the data config and whether they came from such a directory."""
    from harness.hf import is_hf_directory, read_hf_config
    from harness.tokenizer import BYTES

    model, data, source = built["model"], built["data"], built["train"].init_from
    if not source or not is_hf_directory(source):
        return model, data, False
    if family.name != "gpt":
        raise ValueError(
            f"--init-from {source} is a Hugging Face GPT-2 directory: it starts family 'gpt', not {family.name!r}"
        )
    imported = read_hf_config(source)
    for key in given:
        if key != "dropout" and getattr(model, key) != getattr(imported, key):
            raise ValueError(
                f"model.{key} is {getattr(model, key)!r} but --init-from {source} holds a model with "
                f"{getattr(imported, key)!r}"
            )
    model = dataclasses.replace(imported, **({"dropout": model.dropout} if "dropout" in given else {}))
    tokenizer_file = Path(source) / "tokenizer.json"
    if tokenizer_file.is_file() and data.tokenizer == BYTES and not data.prepared:
        data = dataclasses.replace(data, tokenizer=str(tokenizer_file))
    return model, data, True


def _follow_tokenizer(family: Family, model: Any, data: DataConfig, vocab_given: bool) -> Any:
    """``model`` with the vocabulary of the data's tokenizer (families that read tokenized text);
    ``ValueError`` when an explicit model.vocab_size disagrees, or a byte-only family gets another."""
    from harness.data import data_tokenizer
    from harness.tokenizer import BYTES

    tokenizer = data_tokenizer(data)
    if not family.tokenized_text:
        if tokenizer.sha256 != BYTES:
            raise ValueError(
                f"family {family.name!r} reads bytes: data.tokenizer must be 'bytes', not {tokenizer.name}"
            )
        return model
    if vocab_given and model.vocab_size != tokenizer.vocab_size:
        raise ValueError(
            f"model.vocab_size is {model.vocab_size} but the tokenizer ({tokenizer.name}) has {tokenizer.vocab_size} "
            "ids; leave model.vocab_size unset: it follows the tokenizer"
        )
    return dataclasses.replace(model, vocab_size=tokenizer.vocab_size)


def read_config_file(config_file: str | None) -> dict:
    """The tables of a TOML config file ({} for none); ``ValueError`` if it cannot be read or parsed."""
    if config_file is None:
        return {}
    try:
        with open(config_file, "rb") as f:
            return tomllib.load(f)
    except OSError as err:
        raise ValueError(f"cannot read config file {config_file!r}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"config file {config_file!r} is not valid TOML: {err}") from None


def load_run_config(
    preset: str, config_file: str | None = None, overrides: list[str] = (), family: str | None = None
) -> tuple[Family, RunConfig]:
    """The family (``family``, else the file's ``[model] family``, else gpt) and its run config."""
    from harness.family import DEFAULT_FAMILY, load_family

    file_values = read_config_file(config_file)
    model_table = file_values.get("model", {})
    spec = family or (model_table.get("family") if isinstance(model_table, dict) else None) or DEFAULT_FAMILY
    chosen = load_family(spec)
    return chosen, build_run_config(chosen, preset, file_values, overrides)
