"""The built-in BERT-style family: a bidirectional Transformer encoder, the twin of models_torch/bert.py
and models_tf/bert.py, pretrained with BERT's masked-LM objective (``head = "mlm"``), then fine-tuned to classify text
(``head = "classify"``, ``train.init_from`` naming the pretraining run).

Byte-level like the GPT family, with three special ids after the 256 bytes: PAD_ID (padding: keys
at PAD positions are masked out of attention, so padding never changes another position's output),
MASK_ID (the masked-LM's [MASK]) and CLS_ID (first position of every sequence). Blocks are
pre-LayerNorm, as in the GPT twin (stabler without warm-up tuning than BERT's original post-LN);
positions are learned. The masked-LM head is BERT's: a dense layer, GELU, LayerNorm, then the token
embedding (tied) plus a per-token bias. The classification head pools the mean of the real
(non-PAD) positions' outputs (without BERT's next-sentence task nothing trains [CLS] to summarise),
then BERT's tanh "pooler" layer and a linear classifier.

Neutral state (float32, Linear weights (out_features, in_features), as in harness/gpt.py):

    wte.weight                    (vocab_size, n_embd)      token embedding; also the masked-LM decoder
    wpe.weight                    (block_size, n_embd)
    blocks.{i}.ln_1.weight|bias   (n_embd,)
    blocks.{i}.attn.qkv.weight    (3 * n_embd, n_embd)      rows: queries, keys, values; heads contiguous
    blocks.{i}.attn.qkv.bias      (3 * n_embd,)
    blocks.{i}.attn.proj.weight   (n_embd, n_embd)
    blocks.{i}.attn.proj.bias     (n_embd,)
    blocks.{i}.ln_2.weight|bias   (n_embd,)
    blocks.{i}.mlp.fc.weight      (mlp_hidden, n_embd)
    blocks.{i}.mlp.fc.bias        (mlp_hidden,)
    blocks.{i}.mlp.proj.weight    (n_embd, mlp_hidden)
    blocks.{i}.mlp.proj.bias      (n_embd,)
    ln_f.weight|bias              (n_embd,)
    mlm.dense.weight              (n_embd, n_embd)          head = "mlm" only, like the next three
    mlm.dense.bias                (n_embd,)
    mlm.ln.weight|bias            (n_embd,)
    mlm.bias                      (vocab_size,)
    pooler.weight                 (n_embd, n_embd)          head = "classify" only, like the next three
    pooler.bias                   (n_embd,)
    classifier.weight             (num_labels, n_embd)
    classifier.bias               (num_labels,)
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.config import DataConfig
from harness.data import Split, load_corpus, train_val_split
from harness.family import Family
from harness.gpt import block_shapes, gpt2_init
from harness.state import State
from harness.tasks import Batch

BYTES = 256
PAD_ID, MASK_ID, CLS_ID = BYTES, BYTES + 1, BYTES + 2
SPECIAL_IDS = 3
HEADS = ("mlm", "classify")


@dataclass(frozen=True)
class BERTConfig:
    """A bidirectional Transformer encoder; both twins build exactly this architecture.

    Attributes:
        vocab_size: token ids: the 256 bytes, then PAD_ID, MASK_ID, CLS_ID (at least 259).
        n_layer: number of Transformer blocks (L).
        n_head: attention heads per block (H); ``n_embd`` must be divisible by it.
        n_embd: model width (d_model).
        mlp_hidden: width of each block's GELU MLP (usually 4 * n_embd).
        block_size: maximum sequence length, [CLS] included (T_max).
        dropout: dropout rate on embeddings, attention output and MLP output (0 disables).
        layer_norm_eps: epsilon of every LayerNorm.
        head: ``"mlm"`` (logits (B, T, vocab_size)) or ``"classify"`` (logits (B, num_labels)).
        num_labels: classes of the ``"classify"`` head.
    """

    vocab_size: int = BYTES + SPECIAL_IDS
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 192
    mlp_hidden: int = 768
    block_size: int = 128
    dropout: float = 0.0
    layer_norm_eps: float = 1e-5
    head: Literal["mlm", "classify"] = "mlm"
    num_labels: int = 8

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_layer", "n_head", "n_embd", "mlp_hidden", "block_size", "num_labels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"BERTConfig.{name} must be a positive integer, received {value!r}")
        if self.vocab_size < BYTES + SPECIAL_IDS:
            raise ValueError(
                f"BERTConfig.vocab_size must be at least {BYTES + SPECIAL_IDS} (256 bytes, PAD, MASK, CLS), "
                f"received {self.vocab_size}"
            )
        if self.n_embd % self.n_head:
            raise ValueError(
                f"BERTConfig.n_embd must be divisible by n_head, received n_embd={self.n_embd}, n_head={self.n_head}"
            )
        if self.block_size < 2:
            raise ValueError(
                f"BERTConfig.block_size must be at least 2 ([CLS] and a token), received {self.block_size}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"BERTConfig.dropout must be in [0, 1), received {self.dropout!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"BERTConfig.layer_norm_eps must be positive, received {self.layer_norm_eps!r}")
        if self.head not in HEADS:
            raise ValueError(f"BERTConfig.head must be one of {HEADS}, received {self.head!r}")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def replace(self, **changes) -> BERTConfig:
        return dataclasses.replace(self, **changes)

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token, 6N + 12·L·H·Q·T, as for the GPT family (attention is bidirectional
        here, but the dense kernels compute the full T x T scores in both)."""
        T = seq_len or self.block_size
        parameters = sum(int(np.prod(shape)) for shape in state_shapes(self).values())
        return 6 * parameters + 12 * self.n_layer * self.n_head * self.head_size * T


PRESETS = {
    "tiny": BERTConfig(n_layer=2, n_head=2, n_embd=32, mlp_hidden=128, block_size=32),
    "default": BERTConfig(),
    "tiny-classify": BERTConfig(n_layer=2, n_head=2, n_embd=32, mlp_hidden=128, block_size=32, head="classify"),
    "default-classify": BERTConfig(head="classify"),
}


def state_shapes(config: BERTConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, in the twins' registration order."""
    d, h = config.n_embd, config.mlp_hidden
    shapes: dict[str, tuple[int, ...]] = {"wte.weight": (config.vocab_size, d), "wpe.weight": (config.block_size, d)}
    shapes |= block_shapes(config.n_layer, d, h)
    shapes |= {"ln_f.weight": (d,), "ln_f.bias": (d,)}
    if config.head == "mlm":
        return shapes | {
            "mlm.dense.weight": (d, d),
            "mlm.dense.bias": (d,),
            "mlm.ln.weight": (d,),
            "mlm.ln.bias": (d,),
            "mlm.bias": (config.vocab_size,),
        }
    return shapes | {
        "pooler.weight": (d, d),
        "pooler.bias": (d,),
        "classifier.weight": (config.num_labels, d),
        "classifier.bias": (config.num_labels,),
    }


def init_state(config: BERTConfig, seed: int) -> State:
    """GPT-2's initialisation rule (harness/gpt.py ``gpt2_init``), for both twins."""
    return gpt2_init(state_shapes(config), config.n_layer, seed)


@dataclass(frozen=True)
class MaskedLMTask:
    """BERT's masked-LM objective over windows of the corpus, each [CLS] + ``seq_len - 1`` bytes.

    In every sequence ``round(mask_rate * (seq_len - 1))`` byte positions (at least one) are chosen;
    of those, 80 % become MASK_ID, 10 % a random byte and 10 % stay, and the loss is taken on the
    chosen positions only (weight 1; all others 0). The draws come from the step's numpy generator,
    so both frameworks train on identical masked batches.
    """

    seq_len: int
    mask_rate: float = 0.15

    def splits(self, data: DataConfig) -> tuple[Split, Split]:
        return train_val_split(load_corpus(data), self.seq_len - 1, data.val_fraction)

    def batch(self, split: Split, indices: np.ndarray, rng: np.random.Generator) -> Batch:
        windows, _ = split.windows(indices)  # (N, T - 1) bytes
        count, length = windows.shape
        tokens = np.concatenate([np.full((count, 1), CLS_ID, np.int64), windows.astype(np.int64)], axis=1)  # (N, T)
        chosen_per_row = max(1, round(self.mask_rate * length))
        order = np.argsort(rng.random((count, length)), axis=1)[:, :chosen_per_row] + 1  # (N, k), never [CLS]
        chosen = np.zeros(tokens.shape, bool)
        np.put_along_axis(chosen, order, True, axis=1)
        action = rng.random(tokens.shape)
        random_bytes = rng.integers(0, BYTES, tokens.shape)
        inputs = np.where(chosen & (action < 0.8), MASK_ID, tokens)
        inputs = np.where(chosen & (action >= 0.8) & (action < 0.9), random_bytes, inputs)
        return Batch(inputs, tokens, chosen.astype(np.float32))

    def eval_metrics(self, mean_loss: float, accuracy: float) -> dict[str, float]:
        return {"val_loss": mean_loss, "val_accuracy": accuracy}


@dataclass(frozen=True)
class LabelledSplit:
    """Padded examples and their labels: ``inputs`` (N, block_size) int64, ``labels`` (N,) int64."""

    inputs: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class TopicTask:
    """Which CPython documentation topic (``pydoc_data.topics``, shipped with every interpreter) a
    paragraph comes from: real labelled text with no download.

    The ``num_labels`` topics with the most paragraphs of at least MIN_BYTES bytes are the classes;
    each contributes its first PER_TOPIC such paragraphs, cut to ``block_size - 1`` bytes after
    [CLS] and padded with PAD_ID (so inputs vary in length), and a seeded shuffle holds out
    ``data.val_fraction`` of them. The masked-LM pretraining read the same text, without labels.
    """

    block_size: int
    num_labels: int

    MIN_BYTES = 48
    PER_TOPIC = 64

    def examples(self) -> tuple[np.ndarray, np.ndarray]:
        from pydoc_data.topics import topics

        paragraphs = {
            name: [p.strip().encode() for p in re.split(r"\n\s*\n", text) if len(p.strip().encode()) >= self.MIN_BYTES]
            for name, text in sorted(topics.items())
        }
        chosen = sorted(paragraphs, key=lambda name: (-len(paragraphs[name]), name))[: self.num_labels]
        if len(chosen) < self.num_labels:
            raise ValueError(f"model.num_labels must be at most {len(chosen)} topics, received {self.num_labels}")
        inputs, labels = [], []
        for label, name in enumerate(chosen):
            for paragraph in paragraphs[name][: self.PER_TOPIC]:
                ids = [CLS_ID, *paragraph[: self.block_size - 1]]
                inputs.append(ids + [PAD_ID] * (self.block_size - len(ids)))
                labels.append(label)
        return np.array(inputs, np.int64), np.array(labels, np.int64)

    def splits(self, data: DataConfig) -> tuple[LabelledSplit, LabelledSplit]:
        if data.paths:
            raise ValueError("the classify head trains on CPython's documentation topics; data.paths must be empty")
        inputs, labels = self.examples()
        order = np.random.default_rng(0).permutation(len(labels))  # fixed: the same held-out set for every run
        held_out = max(1, round(data.val_fraction * len(labels)))
        val, train = order[:held_out], order[held_out:]
        return LabelledSplit(inputs[train], labels[train]), LabelledSplit(inputs[val], labels[val])

    def batch(self, split: LabelledSplit, indices: np.ndarray, rng: np.random.Generator) -> Batch:
        return Batch(split.inputs[indices], split.labels[indices])

    def eval_metrics(self, mean_loss: float, accuracy: float) -> dict[str, float]:
        return {"val_loss": mean_loss, "val_accuracy": accuracy}


def majority_baseline(split: LabelledSplit) -> float:
    """The accuracy of always answering the split's most frequent label."""
    return float(np.bincount(split.labels).max() / len(split))


def run_defaults(config: BERTConfig) -> dict[str, dict]:
    """What each head trains best with, measured on the default presets (README, "The BERT-style
    twin"). Masked LM: lr 1e-3 with 100 warm-up steps; at the loop's 2e-3 with 30 the loss spikes,
    and at each spike the torch and TF runs part (fp32 rounding amplified), so that their fine-tunes
    no longer agree. Classify: lr 3e-4, as stable; a fifth of the paragraphs (102) held out."""
    if config.head == "mlm":
        return {"train": {"lr": 1e-3, "warmup_steps": 100}}
    return {"train": {"lr": 3e-4}, "data": {"val_fraction": 0.2}}


def task(config: BERTConfig) -> MaskedLMTask | TopicTask:
    if config.head == "mlm":
        return MaskedLMTask(seq_len=config.block_size)
    return TopicTask(block_size=config.block_size, num_labels=config.num_labels)


FAMILY = Family(
    name="bert",
    config_class=BERTConfig,
    presets=PRESETS,
    state_shapes=state_shapes,
    init_state=init_state,
    task=task,
    torch_model="models_torch.bert:Encoder",
    tf_model="models_tf.bert:Encoder",
    flops_per_token=BERTConfig.flops_per_token,
    run_defaults=run_defaults,
)
