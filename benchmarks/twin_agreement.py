"""How closely the torch and TF twins agree, on the twin tests' own configs and batches (fp32, CPU,
same weights), and how far padding moves a BERT output: docs/twins.md's tables. The tests assert
bounds; this prints the measured figures.

usage: python benchmarks/twin_agreement.py
"""

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
import torch

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "unit")]

import test_bert_twins as bert_tests  # noqa: E402
import test_model_twins as gpt_tests  # noqa: E402
from twin_gradients import twin_results  # noqa: E402


def agreement(pt, tfm, inputs, targets, weights=None) -> tuple[float, float, float]:
    """(logits max abs diff, loss relative diff, worst parameter's max grad diff ÷ its grad norm)."""
    (pt_logits, pt_loss, pt_grads), (tf_logits, tf_loss, tf_grads) = twin_results(pt, tfm, inputs, targets, weights)
    worst = max(np.max(np.abs(g - tf_grads[n])) / np.linalg.norm(g) for n, g in pt_grads.items())
    return float(np.max(np.abs(pt_logits - tf_logits))), abs(pt_loss - tf_loss) / abs(pt_loss), float(worst)


def rows():
    for name, config in gpt_tests.CONFIGS.items():
        yield f"gpt {name}", agreement(*gpt_tests.twins(config), *gpt_tests.batch(config))
    for name, config in bert_tests.CONFIGS.items():
        yield f"bert {name}", agreement(*bert_tests.twins(config), *bert_tests.masked_batch(config))
    for name, config in bert_tests.CLASSIFY.items():
        yield f"bert {name}", agreement(*bert_tests.twins(config), *bert_tests.labelled_batch(config))


def padding_effect(name: str) -> tuple[float, float]:
    """How far padding moves a real position's output, (torch, TF): the outputs at the real positions
    of a sequence padded with 4 PAD ids against the unpadded sequence's, max abs."""
    config = bert_tests.CONFIGS[name]
    pt, tfm = bert_tests.twins(config)
    tokens, _, _ = bert_tests.masked_batch(config, count=1, padded=0)
    real = config.block_size - 4
    padded = tokens.copy()
    padded[:, real:] = bert_tests.PAD_ID
    with torch.no_grad():
        pt_moved = pt(torch.from_numpy(padded))[:, :real] - pt(torch.from_numpy(tokens[:, :real]))
    tf_moved = tfm(tf.constant(padded))[:, :real] - tfm(tf.constant(tokens[:, :real]))
    return float(pt_moved.abs().max()), float(tf.reduce_max(tf.abs(tf_moved)))


if __name__ == "__main__":
    print("| config | logits max abs diff | loss rel diff | worst grad diff ÷ grad norm |")
    print("| --- | --- | --- | --- |")
    for label, figures in rows():
        print(f"| {label} | " + " | ".join(f"{x:.1e}" for x in figures) + " |")
    for name in ("tiny", "odd"):
        print(
            "bert {}: padding moves a real position's output by {:.1e} (torch), {:.1e} (TF)".format(
                name, *padding_effect(name)
            )
        )
