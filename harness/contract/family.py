"""The model-family contract: what a pair of twin implementations declares to train under the loop.

A family is one object (see ``harness/families/gpt/`` for a built-in one, docs/bring-your-model.md
for a walk-through):

- ``config_class``: a frozen dataclass that validates itself in ``__post_init__``, and ``presets``
  (name -> instance; ``--model NAME`` picks one, ``[model]`` / ``--set model.KEY=...`` change it);
- its neutral state: ``state_shapes(config)`` gives every parameter's name and shape (the layout
  of each tensor is the family's to document; both twins store it as is), and
  ``init_state(config, seed)`` draws float32 numpy arrays, so both frameworks start from the same
  numbers;
- ``task(config)``: a ``harness.contract.task.Task`` (data splits, numpy batches, evaluation metrics);
  with ``tokenized_text`` its text comes through ``data.tokenizer`` and the config's ``vocab_size``
  is set to the tokenizer's;
- its two implementations, named ``"module:attr"`` and imported only in the process that runs
  that framework: a ``torch.nn.Module`` and a TF model (a ``tf.Module`` of plain ``tf.Variable``s,
  or a Keras 3 / tf-keras model), both built as ``Model(config, compute_dtype=<framework dtype>)``
  and called on the batch's inputs: one (B, ...) integer array positionally, or named arrays as
  keyword arguments (TF adds ``training=...``). The call returns the logits, whose leading axes
  match the targets', or an output holding them (``logits_output``: a key, attribute or index).
  Their parameters (torch ``named_parameters()``; TF attribute paths, lists indexed; Keras weight
  paths) are ``state_shapes``'s names and layouts, or map onto them through ``parameter_maps``;
- optionally its own loss per framework (``losses``), else the backends' weighted cross-entropy;
- optionally ``run_defaults(config)``: the settings its configs train best with, per config table
  (``{"train": {"lr": 1e-3}}``), beneath the TOML file and ``--set``;
- optionally ``formats``: model formats from outside the harness (``ExternalFormat``, e.g. a
  Hugging Face ``save_pretrained`` directory) that ``--init-from DIR`` reads and ``harness export``
  writes; and what ``harness bench`` may time beyond the harness itself (``bench_sizes``,
  ``reference_loops``).

Everything else (AdamW and its state, decay masks, clipping, the loss, Horovod, checkpoints,
parity, elastic state) is generic and written once in ``harness/`` or in a framework's backend.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.contract.mapping import IDENTITY_MAP, ParameterMap
from harness.contract.state import State

ENTRY_POINT_GROUP = "harness.families"  # installed packages register families by name here
# The registry of built-in names: the one place outside a family's folder that names it.
BUILTIN_FAMILIES = {"gpt": "harness.families.gpt:FAMILY", "bert": "harness.families.bert:FAMILY"}
DEFAULT_FAMILY = "gpt"


@dataclass(frozen=True)
class ExternalFormat:
    """A model format from outside the harness that a family reads and writes: a directory of another
    library's config and weights, converted to and from the family's neutral state (numpy only)."""

    key: str  # what ``harness export --format`` calls it
    description: str  # what the directory holds, for messages ("Hugging Face GPT-2")
    recognizes: Callable[[Path], bool]  # is this directory in the format?
    read_config: Callable[[Path], Any]  # the family's model config of such a directory
    read_state: Callable[[Path], tuple[Any, State]]  # its model config and neutral state
    # (state, model config, new directory, tokenizer.json or None) -> the file names written
    export: Callable[[State, Any, Path, Path | None], list[str]]


@dataclass(frozen=True)
class BenchSize:
    """A row of ``harness bench``'s model-size table: a preset, and how much of it to time."""

    model: str  # the family's preset
    batch_size: int  # windows per rank
    steps: int
    warmup: int  # of ``steps``, not timed


@dataclass(frozen=True)
class Family:
    """A model family: its config, neutral state, task and twin implementations (module docstring)."""

    name: str
    config_class: type
    presets: Mapping[str, Any]
    state_shapes: Callable[[Any], dict[str, tuple[int, ...]]]
    init_state: Callable[[Any, int], State]
    task: Callable[[Any], Any]  # config -> harness.contract.task.Task
    torch_model: str  # "module:attr" of the torch.nn.Module class
    tf_model: str  # "module:attr" of the tf.Module class
    # Parameters AdamW decays; by default every tensor of two or more dimensions (matrices and
    # embeddings, not biases or norm scales).
    weight_decay_names: Callable[[Any], set[str]] | None = None
    flops_per_token: Callable[[Any], float] | None = None  # training FLOPs per token, for MFU
    # config -> {table: {key: value}} for the run's other tables ("train", "data", "eval",
    # "checkpoint"): what this model trains best with; a TOML file and --set override each key.
    run_defaults: Callable[[Any], Mapping[str, Mapping[str, Any]]] | None = None
    # `harness generate` samples from it: logits (B, T, V) for its task's ``model_inputs(tokens)``,
    # tokens (B, T) (harness.data.causal_lm.CausalLMTask's).
    causal_lm: bool = False
    # Its task reads the configured text through data.tokenizer, and model.vocab_size follows the
    # tokenizer; otherwise the family takes bytes only (data.tokenizer must stay "bytes").
    tokenized_text: bool = False
    formats: tuple[ExternalFormat, ...] = ()  # --init-from reads them, harness export writes them
    # framework ("torch"/"tf") -> how that framework's own parameter names and layouts map onto the
    # neutral state (harness.contract.mapping); a framework without one uses the neutral ones as is.
    parameter_maps: Mapping[str, ParameterMap] = dataclasses.field(default_factory=dict)
    # ``harness bench``: the presets of its model-size table (how cost grows with the model), and
    # whether benchmarks/' reference loops (minimal Horovod loops, DDP, MultiWorkerMirroredStrategy)
    # can train it: they feed a causal LM random tokens, from its config's vocab_size and block_size.
    bench_sizes: tuple[BenchSize, ...] = ()
    reference_loops: bool = False
    # Where the models' output holds the logits: None, the output is the logits; a string, the key or
    # attribute of that name (a transformers ModelOutput's "logits"); an int, that tuple index.
    logits_output: str | int | None = None
    # framework -> "module:attr" of its loss, ``loss(logits, targets, weights, label_smoothing)``: the
    # weighted mean over targets (weights None: the plain mean) as a scalar, differentiable in that
    # framework, imported in that framework's process only. Absent: the backends' cross-entropy.
    losses: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Environment variables the family's ranks need before their framework is imported, e.g.
    # {"TF_USE_LEGACY_KERAS": "1"} for a tf-keras (Keras 2) TF model; the launcher sets them.
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)
    spec: str = ""  # how it was loaded (a name or "module:attr"); checkpoints record it

    def __post_init__(self) -> None:
        if not self.spec:  # defined in code, not loaded by name: its own name stands for it
            object.__setattr__(self, "spec", self.name)
        for declared, per_framework in (("parameter_maps", self.parameter_maps), ("losses", self.losses)):
            if set(per_framework) - {"torch", "tf"}:
                raise ValueError(
                    f"family {self.name!r}: {declared} is keyed by framework, expected 'torch' and/or 'tf', "
                    f"received {sorted(per_framework)}"
                )
        if not dataclasses.is_dataclass(self.config_class):
            raise ValueError(f"family {self.name!r}: config_class must be a dataclass, received {self.config_class!r}")
        for preset, config in self.presets.items():
            if not isinstance(config, self.config_class):
                raise ValueError(
                    f"family {self.name!r}: preset {preset!r} is a {type(config).__name__}, "
                    f"expected a {self.config_class.__name__}"
                )

    def preset(self, name: str) -> Any:
        if name not in self.presets:
            raise ValueError(f"unknown {self.name} model preset {name!r}; expected one of {sorted(self.presets)}")
        return self.presets[name]

    def decayed(self, config: Any) -> set[str]:
        if self.weight_decay_names is not None:
            return set(self.weight_decay_names(config))
        return {name for name, shape in self.state_shapes(config).items() if len(shape) >= 2}

    def parameter_map(self, framework: str) -> ParameterMap:
        return self.parameter_maps.get(framework, IDENTITY_MAP)

    def enter_environment(self) -> None:
        """Set ``environment`` in this process, before its frameworks load; ``ValueError`` when
        TensorFlow is already imported under another value (too late for it to take effect)."""
        for key, value in self.environment.items():
            if os.environ.get(key) != value and "tensorflow" in sys.modules:
                raise ValueError(
                    f"family {self.name!r} needs {key}={value} before TensorFlow is imported, and this process "
                    f"imported it with {key}={os.environ.get(key)!r}: set {key}={value} in the environment"
                )
            os.environ[key] = value

    def logits_of(self, output: Any) -> Any:
        """The logits in a model's ``output`` (``logits_output``)."""
        where = self.logits_output
        if where is None:
            return output
        if isinstance(where, int) or isinstance(output, Mapping):
            return output[where]
        return getattr(output, where)

    def loss(self, framework: str) -> Callable | None:
        """The family's own loss in ``framework``, imported now; None: the backends' cross-entropy."""
        spec = self.losses.get(framework)
        return None if spec is None else import_attr(spec, f"{self.name}'s {framework} loss")

    def implementation(self, framework: str) -> type:
        """The model class of ``framework`` ("torch" or "tf"), imported now."""
        return import_attr(
            {"torch": self.torch_model, "tf": self.tf_model}[framework], f"{self.name}'s {framework} model"
        )

    def format(self, key: str) -> ExternalFormat:
        """The external format ``key`` of this family; ``ValueError`` naming the ones it has."""
        for known in self.formats:
            if known.key == key:
                return known
        raise ValueError(
            f"family {self.name!r} has no format {key!r}; it has {[known.key for known in self.formats] or 'none'}"
        )

    def config_from_dict(self, values: dict) -> Any:
        """The config saved in a checkpoint (``dataclasses.asdict`` of one) as this family's config."""
        fields = {f.name for f in dataclasses.fields(self.config_class)}
        unknown = sorted(values.keys() - fields)
        if unknown:
            raise ValueError(f"a {self.name} config has no keys {unknown}")
        return self.config_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def import_attr(spec: str, what: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{what}: expected MODULE:ATTR, received {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{what}: cannot import module {module_name!r} ({err}); is it on PYTHONPATH?") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"{what}: module {module_name!r} has no attribute {attr!r}") from None


def registered_families() -> dict[str, str]:
    """Family name -> "module:attr": the built-in ones and those of installed packages' entry points."""
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return {**found, **BUILTIN_FAMILIES}


def load_family(spec: str) -> Family:
    """The family named ``spec``: built in (``gpt``), registered by an installed package under the
    ``harness.families`` entry-point group, or ``MODULE:ATTR`` of a module on ``PYTHONPATH``."""
    known = registered_families()
    if ":" not in spec and spec not in known:
        raise ValueError(f"unknown model family {spec!r}; expected one of {sorted(known)} or MODULE:ATTR")
    family = import_attr(known.get(spec, spec), f"model family {spec!r}")
    if not isinstance(family, Family):
        raise ValueError(f"model family {spec!r} is a {type(family).__name__}, expected a harness.Family")
    return dataclasses.replace(family, spec=spec)


def loadable_families() -> list[Family]:
    """Every registered family that loads (an installed one that no longer imports is left out)."""
    found = []
    for spec in registered_families():
        try:
            found.append(load_family(spec))
        except ValueError:
            continue
    return found


def format_keys() -> list[str]:
    """The keys of every external format a registered family declares (``harness export --format``)."""
    return sorted({known.key for family in loadable_families() for known in family.formats})


def external_format(family: Family, source: str | Path) -> ExternalFormat | None:
    """The format of ``family`` that the directory ``source`` is in; None for a harness run directory
    (one no registered family's format recognises). ``ValueError`` when it starts another family."""
    source = Path(source)
    for known in family.formats:
        if known.recognizes(source):
            return known
    for other in loadable_families():
        for known in other.formats:
            if known.recognizes(source):
                raise ValueError(
                    f"--init-from {source} is a {known.description} directory: it starts family {other.name!r}, "
                    f"not {family.name!r}"
                )
    return None
