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

Neutral state (float32, Linear weights (out_features, in_features), as in the GPT family):

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

from dataclasses import dataclass
from typing import Literal

from harness.contract.state import State
from harness.families.transformer import TransformerConfig, block_shapes, gpt2_init

BYTE_IDS = 256  # ids 0-255 are the bytes; the special ids follow
PAD_ID, MASK_ID, CLS_ID = BYTE_IDS, BYTE_IDS + 1, BYTE_IDS + 2
SPECIAL_IDS = 3
HEADS = ("mlm", "classify")


@dataclass(frozen=True)
class BERTConfig(TransformerConfig):
    """A bidirectional Transformer encoder; both twins build exactly this architecture. The common
    fields are ``TransformerConfig``'s (``block_size`` counts [CLS]); besides:

    Attributes:
        vocab_size: token ids: the 256 bytes, then PAD_ID, MASK_ID, CLS_ID (at least 259).
        head: ``"mlm"`` (logits (B, T, vocab_size)) or ``"classify"`` (logits (B, num_labels)).
        num_labels: classes of the ``"classify"`` head.
    """

    vocab_size: int = BYTE_IDS + SPECIAL_IDS
    head: Literal["mlm", "classify"] = "mlm"
    num_labels: int = 8

    POSITIVE = (*TransformerConfig.POSITIVE, "num_labels")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.vocab_size < BYTE_IDS + SPECIAL_IDS:
            raise ValueError(
                f"BERTConfig.vocab_size must be at least {BYTE_IDS + SPECIAL_IDS} (256 bytes, PAD, MASK, CLS), "
                f"received {self.vocab_size}"
            )
        if self.block_size < 2:
            raise ValueError(
                f"BERTConfig.block_size must be at least 2 ([CLS] and a token), received {self.block_size}"
            )
        if self.head not in HEADS:
            raise ValueError(f"BERTConfig.head must be one of {HEADS}, received {self.head!r}")

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape, in the twins' registration order."""
        d, h = self.n_embd, self.mlp_hidden
        shapes: dict[str, tuple[int, ...]] = {"wte.weight": (self.vocab_size, d), "wpe.weight": (self.block_size, d)}
        shapes |= block_shapes(self.n_layer, d, h)
        shapes |= {"ln_f.weight": (d,), "ln_f.bias": (d,)}
        if self.head == "mlm":
            return shapes | {
                "mlm.dense.weight": (d, d),
                "mlm.dense.bias": (d,),
                "mlm.ln.weight": (d,),
                "mlm.ln.bias": (d,),
                "mlm.bias": (self.vocab_size,),
            }
        return shapes | {
            "pooler.weight": (d, d),
            "pooler.bias": (d,),
            "classifier.weight": (self.num_labels, d),
            "classifier.bias": (self.num_labels,),
        }


PRESETS = {
    "tiny": BERTConfig(n_layer=2, n_head=2, n_embd=32, mlp_hidden=128, block_size=32),
    "default": BERTConfig(),
    "tiny-classify": BERTConfig(n_layer=2, n_head=2, n_embd=32, mlp_hidden=128, block_size=32, head="classify"),
    "default-classify": BERTConfig(head="classify"),
}


def init_state(config: BERTConfig, seed: int) -> State:
    """GPT-2's initialisation rule (``harness.families.transformer.gpt2_init``), for both twins."""
    return gpt2_init(config.state_shapes(), config.n_layer, seed)
