"""Sampling from a trained model, framework-free: the framework only supplies a logits function."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def sample(
    predict: Callable[[np.ndarray], np.ndarray],
    prompt: np.ndarray,
    max_new_tokens: int,
    block_size: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Extend ``prompt`` ((T,) int64) by ``max_new_tokens`` sampled tokens; temperature 0 is greedy.

    ``predict`` maps (1, T) token ids to (1, T, V) logits; the context is cropped to ``block_size``.
    """
    if temperature < 0 or max_new_tokens < 0 or (top_k is not None and top_k < 1):
        raise ValueError(
            f"expected temperature >= 0, max_new_tokens >= 0, top_k >= 1; received "
            f"{temperature}, {max_new_tokens}, {top_k}"
        )
    rng = np.random.default_rng(seed)
    tokens = np.asarray(prompt, dtype=np.int64)
    for _ in range(max_new_tokens):
        logits = predict(tokens[None, -block_size:])[0, -1].astype(np.float64)  # (V,)
        if temperature == 0:
            next_token = int(np.argmax(logits))
        else:
            logits = logits / temperature
            if top_k is not None and top_k < len(logits):
                logits[logits < np.sort(logits)[-top_k]] = -np.inf
            probs = np.exp(logits - logits.max())
            next_token = int(rng.choice(len(probs), p=probs / probs.sum()))
        tokens = np.append(tokens, next_token)
    return tokens
