"""Model configuration shared by both framework twins, its presets, and input validation."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from typing import Literal

POSITIONAL_ENCODINGS = ("learned", "sinusoidal")


@dataclass(frozen=True)
class ModelConfig:
    """A decoder-only Transformer LM; both twins build exactly this architecture.

    Attributes:
        vocab_size: number of token ids (256 for the byte-level tokenizer).
        n_layer: number of Transformer blocks (L).
        n_head: attention heads per block (H); ``n_embd`` must be divisible by it.
        n_embd: model width (d_model).
        mlp_hidden: width of each block's GELU MLP (usually 4 * n_embd).
        block_size: maximum sequence length (T_max).
        dropout: dropout rate on embeddings, attention output and MLP output (0 disables).
        pos_encoding: ``"learned"`` position embeddings (``wpe``) or fixed ``"sinusoidal"`` ones.
        tie_embeddings: share the LM head with the token embedding ``wte``.
        layer_norm_eps: epsilon of every LayerNorm.
    """

    vocab_size: int = 256
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 192
    mlp_hidden: int = 768
    block_size: int = 128
    dropout: float = 0.0
    pos_encoding: Literal["learned", "sinusoidal"] = "learned"
    tie_embeddings: bool = True
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_layer", "n_head", "n_embd", "mlp_hidden", "block_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, received {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"ModelConfig.n_embd must be divisible by n_head, received n_embd={self.n_embd}, n_head={self.n_head}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), received {self.dropout!r}")
        if self.pos_encoding not in POSITIONAL_ENCODINGS:
            raise ValueError(
                f"ModelConfig.pos_encoding must be one of {POSITIONAL_ENCODINGS}, received {self.pos_encoding!r}"
            )
        if not self.layer_norm_eps > 0:
            raise ValueError(f"ModelConfig.layer_norm_eps must be positive, received {self.layer_norm_eps!r}")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def replace(self, **changes) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def num_params(self) -> int:
        """Trainable parameters, counting a tied LM head once."""
        d, L = self.n_embd, self.n_layer
        per_block = (
            2 * 2 * d  # ln_1, ln_2
            + d * 3 * d
            + 3 * d  # attn.qkv
            + d * d
            + d  # attn.proj
            + d * self.mlp_hidden
            + self.mlp_hidden  # mlp.fc
            + self.mlp_hidden * d
            + d  # mlp.proj
        )
        embeddings = self.vocab_size * d + (self.block_size * d if self.pos_encoding == "learned" else 0)
        head = 0 if self.tie_embeddings else self.vocab_size * d
        return embeddings + L * per_block + 2 * d + head

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token, 6N + 12·L·H·Q·T (PaLM appendix B; nanoGPT's estimate_mfu)."""
        T = seq_len or self.block_size
        return 6 * self.num_params() + 12 * self.n_layer * self.n_head * self.head_size * T


# `tiny` runs a training step in milliseconds: for tests. `default` (~1.85 M parameters,
# ~12 MFLOP per token) is sized for the byte-level default corpus (~420 K training tokens) on
# 2 CPU cores: a few thousand tokens/s, so a few hundred steps take about a minute per framework,
# while 4 layers of width 192 are enough to learn words and Python-doc structure at byte level.
MODEL_PRESETS = {
    "tiny": ModelConfig(n_layer=2, n_head=2, n_embd=32, mlp_hidden=128, block_size=32),
    "default": ModelConfig(),
}


def model_preset(name: str) -> ModelConfig:
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown model preset {name!r}; expected one of {sorted(MODEL_PRESETS)}")
    return MODEL_PRESETS[name]


def check_token_shape(config: ModelConfig, shape: tuple, dtype_name: str) -> None:
    """Validate a token batch's static properties; both twins raise these exact messages."""
    if len(shape) != 2:
        raise ValueError(f"tokens must have shape (batch, seq_len), received shape {tuple(shape)}")
    if "int" not in dtype_name:
        raise ValueError(f"tokens must be an integer tensor, received dtype {dtype_name}")
    if shape[1] is not None and shape[1] > config.block_size:
        raise ValueError(f"sequence length {shape[1]} exceeds the model's block_size {config.block_size}")


def token_range_message(config: ModelConfig) -> str:
    return f"token ids must be in [0, {config.vocab_size}), the model's vocab_size"


def check_token_range(config: ModelConfig, min_id: int, max_id: int) -> None:
    if min_id < 0 or max_id >= config.vocab_size:
        raise ValueError(f"{token_range_message(config)}; received ids in [{min_id}, {max_id}]")


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
    # (No Adasum option: Horovod 0.28 runs Adasum over MPI only, and this harness launches Gloo.)
    compression: str = "none"

    def __post_init__(self) -> None:
        choices = {"precision": ("fp32", "bf16", "fp16"), "compression": ("none", "fp16")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"train.{name} must be one of {list(allowed)}, received {getattr(self, name)!r}")
        if self.initial_loss_scale <= 0:
            raise ValueError(f"train.initial_loss_scale must be > 0, received {self.initial_loss_scale!r}")
        for name in ("steps", "batch_size", "accumulation_steps"):
            if getattr(self, name) <= 0:
                raise ValueError(f"train.{name} must be positive, received {getattr(self, name)!r}")
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
    """Text files to train on (empty: CPython's own documentation), byte-level tokens."""

    paths: tuple[str, ...] = ()
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in (0, 1), received {self.val_fraction!r}")


@dataclass(frozen=True)
class EvalConfig:
    """Rank-0 evaluation over the whole validation split every ``every`` steps (0: only at the end)."""

    every: int = 100
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.every < 0 or self.batch_size <= 0:
            raise ValueError(
                f"eval.every must be >= 0 and eval.batch_size > 0, received {self.every}, {self.batch_size}"
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

    model: ModelConfig = ModelConfig()
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


def build_run_config(model: str, file_values: dict | None = None, overrides: list[str] = ()) -> RunConfig:
    """Preset ``model``, then the TOML file's tables, then ``key=value`` overrides (dotted keys).

    Raises ``ValueError`` naming the key for unknown keys, wrong types and invalid values.
    """
    sections = {f.name: f for f in dataclasses.fields(RunConfig)}
    values: dict[str, dict] = {name: {} for name in sections}
    for section, table in (file_values or {}).items():
        if section not in sections or not isinstance(table, dict):
            raise ValueError(f"unknown config table [{section}]; expected one of {sorted(sections)}")
        values[section].update(table)
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise ValueError(f"--set expects SECTION.KEY=VALUE, received {item!r}")
        if section not in sections:
            raise ValueError(f"unknown config key {key.strip()!r}; sections are {sorted(sections)}")
        values[section][name] = _parse_value(text.strip())
    built = {}
    for section, field in sections.items():
        cls = field.type if isinstance(field.type, type) else globals()[field.type]
        base = model_preset(model) if section == "model" else cls()
        hints = {f.name: f.type for f in dataclasses.fields(cls)}
        for name in values[section]:
            if name not in hints:
                raise ValueError(
                    f"unknown config key '{section}.{name}'; known keys in [{section}]: {', '.join(hints)}"
                )
        checked = {name: _coerce(f"{section}.{name}", v, hints[name]) for name, v in values[section].items()}
        built[section] = dataclasses.replace(base, **checked)
    return RunConfig(**built)


def load_run_config(model: str, config_file: str | None = None, overrides: list[str] = ()) -> RunConfig:
    """``build_run_config`` with the tables of an optional TOML file; ``ValueError`` on any problem."""
    file_values = {}
    if config_file is not None:
        try:
            with open(config_file, "rb") as f:
                file_values = tomllib.load(f)
        except OSError as err:
            raise ValueError(f"cannot read config file {config_file!r}: {err.strerror}") from None
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"config file {config_file!r} is not valid TOML: {err}") from None
    return build_run_config(model, file_values, overrides)
