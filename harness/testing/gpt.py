"""The GPT twins as tests/unit/test_model_twins.py and benchmarks/twin_agreement.py compare them: the
configs and the batches (twins.family_twins builds the pair)."""

import numpy as np

from harness.families.gpt import FAMILY, GPTConfig

CONFIGS = {
    "tiny": FAMILY.preset("tiny"),
    # Odd sizes everywhere, an untied LM head and an odd vocabulary.
    "odd": GPTConfig(vocab_size=53, n_layer=3, n_head=3, n_embd=21, mlp_hidden=37, block_size=13, tie_embeddings=False),
    "sinusoidal": GPTConfig(n_layer=2, n_head=3, n_embd=15, mlp_hidden=40, block_size=24, pos_encoding="sinusoidal"),
    # Dropout is part of the config but inactive in inference mode.
    "dropout": GPTConfig(n_layer=2, n_head=4, n_embd=32, mlp_hidden=64, block_size=16, dropout=0.3),
}


def batch(config: GPTConfig, seed: int = 1, batch_size: int = 3, seq_len: int | None = None):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, config.vocab_size, (batch_size, (seq_len or config.block_size) + 1))
    return tokens[:, :-1], tokens[:, 1:]  # inputs, next-token targets
