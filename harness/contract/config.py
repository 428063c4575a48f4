"""The run configuration: one frozen dataclass per TOML table, each checking its values.

``harness.runner.config`` builds one from a family's preset, a TOML file and ``--set`` overrides."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any


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
    # "fp32"; "bf16": matmul inputs in bfloat16, weights, norms and the loss in fp32 (models_*/layers.py);
    # "fp16": matmuls in float16 with dynamic loss scaling (meant for CUDA; runs on CPUs too).
    precision: str = "fp32"
    initial_loss_scale: float = 2.0**16  # fp16 only; torch.amp.GradScaler's default
    # Horovod's wire format for gradients: "none" (float32) or "fp16" (half the bytes).
    compression: str = "none"
    # The gradients travel in buckets of at least this many MB, filled in the order the backward pass
    # produces them, each reduced by one grouped allreduce as soon as it is full: communication
    # overlaps the rest of the backward pass (DDP's approach and default size). A model whose
    # gradients total less than one bucket sends them in one allreduce after the backward pass;
    # 0 sends each tensor alone (Horovod's default). docs/training.md#gradient-buckets has the figures.
    gradient_bucket_mb: float = 25.0
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
        if not self.gradient_bucket_mb >= 0:
            raise ValueError(f"train.gradient_bucket_mb must be >= 0, received {self.gradient_bucket_mb!r}")
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
    harness/data/inputs.py; empty: CPython's own documentation) read through ``tokenizer`` ("bytes" or a
    tokenizer.json), or a directory ``harness prepare`` made from them (``prepared``)."""

    paths: tuple[str, ...] = ()
    val_fraction: float = 0.1
    tokenizer: str = "bytes"
    text_field: str = "text"  # the text of a JSON-lines record, a Parquet or a datasets row
    prepared: str = ""
    # Sequence-to-sequence pairs (harness/data/pairs.py): the two fields of a TSV column, JSON-lines
    # record, Parquet or datasets row, and what happens to a side longer than the model's positions
    # (False: refused, naming it; True: cut to fit).
    source_field: str = "source"
    target_field: str = "target"
    truncate: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in (0, 1), received {self.val_fraction!r}")
        if not all((self.text_field, self.tokenizer, self.source_field, self.target_field)):
            raise ValueError(
                "data.text_field, data.tokenizer, data.source_field and data.target_field must not be empty, "
                f"received {self.text_field!r}, {self.tokenizer!r}, {self.source_field!r}, {self.target_field!r}"
            )
        if self.source_field == self.target_field:
            raise ValueError(f"data.source_field and data.target_field must differ, both are {self.source_field!r}")
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
    # A task scored on decoded text (translation: BLEU and chrF) decodes the first this many
    # validation examples at each evaluation (0: none), by beam search (num_beams 1: greedy).
    decode_examples: int = 0
    num_beams: int = 4
    length_penalty: float = 0.6

    def __post_init__(self) -> None:
        if self.every < 0 or self.batch_size <= 0 or self.max_examples < 0:
            raise ValueError(
                "eval.every and eval.max_examples must be >= 0 and eval.batch_size > 0, received "
                f"{self.every}, {self.max_examples}, {self.batch_size}"
            )
        if self.decode_examples < 0 or self.num_beams < 1 or not math.isfinite(self.length_penalty):
            raise ValueError(
                "eval.decode_examples must be >= 0, eval.num_beams >= 1 and eval.length_penalty finite, received "
                f"{self.decode_examples}, {self.num_beams}, {self.length_penalty}"
            )


@dataclass(frozen=True)
class Decoding:
    """How a sequence-to-sequence task decodes (harness.data.seq2seq.beam_search): ``num_beams`` beams
    (1: greedy), scores divided by length ** ``length_penalty``, at most ``max_new_tokens`` tokens."""

    num_beams: int = 4
    length_penalty: float = 0.6
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        if self.num_beams < 1 or self.max_new_tokens < 1 or not math.isfinite(self.length_penalty):
            raise ValueError(
                "the number of beams and of new tokens must be >= 1 and the length penalty finite, received "
                f"{self.num_beams}, {self.max_new_tokens}, {self.length_penalty}"
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
