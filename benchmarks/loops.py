"""What the reference loops (minimal_torch.py, minimal_tf.py, ddp_torch.py, mwms_tf.py) share: one
rank's fixed random batch, the timed steps, and the one JSON line rank 0 prints."""

import json
import time
from collections.abc import Callable

import numpy as np


def random_batch(vocab_size: int, batch_size: int, block_size: int, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-token targets, each (batch_size, block_size) int64, from the rank's own seed."""
    tokens = np.random.default_rng(rank).integers(0, vocab_size, (batch_size, block_size + 1))
    return tokens[:, :-1], tokens[:, 1:]


def family_batch(family, config, batch_size: int, rank: int) -> tuple:
    """``random_batch`` as the family's models take it: its task's ``model_inputs`` (one array, or
    named arrays), and the targets."""
    inputs, targets = random_batch(config.vocab_size, batch_size, config.block_size, rank)
    return family.task(config).model_inputs(inputs), targets


def time_steps(step: Callable[[], None], steps: int) -> list[float]:
    """Seconds each of ``steps`` calls of ``step`` took (``step`` must return once the step is done)."""
    times = []
    for _ in range(steps):
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    return times


def report(times: list[float], is_main: bool) -> None:
    if is_main:
        print(json.dumps({"step_times": times}), flush=True)
