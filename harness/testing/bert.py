"""The BERT-style twins as tests/unit/test_bert_twins.py and benchmarks/twin_agreement.py compare them:
the configs and the masked-LM and labelled batches (twins.family_twins builds the pair)."""

import numpy as np

from harness.data.corpus import encode, train_val_split
from harness.families.bert import CLS_ID, FAMILY, PAD_ID, BERTConfig, MaskedLMTask

CONFIGS = {
    "tiny": FAMILY.preset("tiny"),
    # Odd sizes everywhere and a vocabulary with room beyond the special ids.
    "odd": BERTConfig(vocab_size=263, n_layer=3, n_head=3, n_embd=21, mlp_hidden=37, block_size=13),
    # Dropout is part of the config but inactive in inference mode.
    "dropout": BERTConfig(n_layer=2, n_head=4, n_embd=32, mlp_hidden=64, block_size=16, dropout=0.3),
}
TEXT = encode("The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. " * 40)


def masked_batch(config: BERTConfig, count: int = 4, padded: int = 3, seed: int = 1):
    """A masked-LM batch whose last example ends in ``padded`` PAD positions (weight 0)."""
    split, _ = train_val_split(TEXT, config.block_size - 1, 0.1)
    batch = MaskedLMTask(config.block_size).batch(split, np.arange(count), np.random.default_rng(seed))
    inputs, weights = batch.inputs.copy(), batch.weights.copy()
    if padded:
        inputs[-1, -padded:], weights[-1, -padded:] = PAD_ID, 0.0
    return inputs, batch.targets, weights


CLASSIFY = {
    "tiny-classify": FAMILY.preset("tiny-classify"),
    "odd-classify": BERTConfig(
        n_layer=2, n_head=3, n_embd=21, mlp_hidden=37, block_size=13, head="classify", num_labels=5
    ),
}


def labelled_batch(config: BERTConfig, count: int = 5, seed: int = 2):
    """[CLS] + bytes of varying lengths, padded: what TopicTask feeds the classify head."""
    rng = np.random.default_rng(seed)
    inputs = np.full((count, config.block_size), PAD_ID, np.int64)
    for row, length in enumerate(rng.integers(2, config.block_size + 1, count)):
        inputs[row, :length] = [CLS_ID, *rng.integers(0, 256, length - 1)]
    return inputs, rng.integers(0, config.num_labels, count)
