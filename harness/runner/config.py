"""A run's configuration, built: a family's preset and run defaults, a TOML file and ``--set``
overrides, each value checked by name; then the model follows ``--init-from`` (a format the family
reads) and the data's tokenizer. For the commands that build no model, the [data] table alone."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from harness.contract.config import DataConfig, RunConfig
from harness.contract.family import DEFAULT_FAMILY, Family, external_format, load_family
from harness.data.corpus import data_tokenizer
from harness.data.tokenizer import BYTES, seq2seq_ids, tokenizer_beside

# RunConfig's tables but the family's own ``model``: name -> config dataclass (each table's default's).
TABLES = {f.name: type(f.default) for f in dataclasses.fields(RunConfig) if f.name != "model"}


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
    values = _given_tables(file_values, overrides)
    built = {"model": _build_table("model", family.preset(preset), values["model"])}
    suggested = _family_defaults(family, built["model"])
    for section, cls in TABLES.items():
        built[section] = _build_table(section, cls(), {**suggested.get(section, {}), **values[section]})
    built["model"], built["data"], imported = _follow_init_from(family, built, values["model"])
    built["model"] = _follow_tokenizer(
        family, built["model"], built["data"], imported or "vocab_size" in values["model"]
    )
    return RunConfig(**built)


def build_data_config(file_values: dict | None = None, overrides: list[str] = ()) -> DataConfig:
    """The [data] table alone, for the commands that read data but build no model (``harness prepare``,
    ``harness tokenizer train``): no family, so [model] and ``model.*`` go unread, but every other
    table is checked as ``build_run_config`` checks it (the same file and overrides serve ``harness
    train``), and the data's tokenizer is loaded, so a bad data.tokenizer or data.prepared is refused
    here with the same message."""
    values = _given_tables(file_values, overrides)
    built = {section: _build_table(section, cls(), values[section]) for section, cls in TABLES.items()}
    data_tokenizer(built["data"])
    return built["data"]


def _given_tables(file_values: dict | None, overrides: list[str]) -> dict[str, dict]:
    """The TOML file's tables, then the ``key=value`` overrides, by RunConfig table; ``ValueError``
    for an unknown table, a malformed override and one that names the model family."""
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
    return values


def _build_table(section: str, base: Any, given: dict) -> Any:
    """``base`` (a config dataclass) with the ``given`` keys, each checked by name and type."""
    hints = {f.name: f.type for f in dataclasses.fields(base)}
    for name in given:
        if name not in hints:
            raise ValueError(f"unknown config key '{section}.{name}'; known keys in [{section}]: {', '.join(hints)}")
    return dataclasses.replace(
        base, **{name: _coerce(f"{section}.{name}", v, hints[name]) for name, v in given.items()}
    )


def _family_defaults(family: Family, model: Any) -> dict[str, dict]:
    """The family's suggested settings for ``model``, by table of ``TABLES``; the model table is its
    presets' job."""
    suggested = family.run_defaults(model) if family.run_defaults else {}
    unknown = [
        f"{table}.{key}"
        for table, settings in suggested.items()
        for key in settings
        if table not in TABLES or key not in {f.name for f in dataclasses.fields(TABLES[table])}
    ]
    if unknown:
        raise ValueError(
            f"family {family.name!r}: run_defaults sets {unknown}, which the run config does not have "
            f"(its tables: {sorted(TABLES)})"
        )
    return {table: dict(settings) for table, settings in suggested.items()}


def _follow_init_from(family: Family, built: dict, given: dict) -> tuple[Any, DataConfig, bool]:
    """With train.init_from a directory in one of the family's external formats: its model config
    (model keys given explicitly must agree, but for dropout) and, unless data.tokenizer is set, its
    tokenizer.json. Returns the model config, the data config and whether they came from such a directory."""
    model, data, source = built["model"], built["data"], built["train"].init_from
    known = external_format(family, source) if source else None
    if known is None:
        return model, data, False
    imported = known.read_config(Path(source))
    for key in given:
        if key != "dropout" and getattr(model, key) != getattr(imported, key):
            raise ValueError(
                f"model.{key} is {getattr(model, key)!r} but --init-from {source} holds a model with "
                f"{getattr(imported, key)!r}"
            )
    model = dataclasses.replace(imported, **({"dropout": model.dropout} if "dropout" in given else {}))
    tokenizer_file = tokenizer_beside(source)
    if tokenizer_file is not None and data.tokenizer == BYTES and not data.prepared:
        data = dataclasses.replace(data, tokenizer=str(tokenizer_file))
    return model, data, True


def _follow_tokenizer(family: Family, model: Any, data: DataConfig, vocab_given: bool) -> Any:
    """``model`` with the vocabulary of the data's tokenizer (families that read tokenized text), and
    its pad and end ids where the config has ``pad_token_id``/``eos_token_id`` fields (a
    sequence-to-sequence model); ``ValueError`` when an explicit model.vocab_size disagrees, a
    byte-only family gets another, or a sequence-to-sequence model's tokenizer has no pad or end token."""
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
    fields = {field.name for field in dataclasses.fields(model)}
    special = {}
    if {"pad_token_id", "eos_token_id"} & fields:
        ids = dict(zip(("pad_token_id", "eos_token_id"), seq2seq_ids(tokenizer), strict=True))
        special = {name: value for name, value in ids.items() if name in fields}
    return dataclasses.replace(model, vocab_size=tokenizer.vocab_size, **special)


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
    """The family (``family``, else the file's ``[model] family``, else the default) and its run config."""
    file_values = read_config_file(config_file)
    model_table = file_values.get("model", {})
    spec = family or (model_table.get("family") if isinstance(model_table, dict) else None) or DEFAULT_FAMILY
    chosen = load_family(spec)
    return chosen, build_run_config(chosen, preset, file_values, overrides)
