"""How closely the torch and TF twins agree, on the twin tests' own configs and batches (harness/testing/;
fp32, CPU, same weights), and how far padding moves a BERT output: docs/twins.md's tables. The tests assert
bounds; this prints the measured figures.

usage: python benchmarks/twin_agreement.py
"""

import numpy as np
import tensorflow as tf
import torch

from harness.families.bert import FAMILY as BERT
from harness.families.bert import PAD_ID
from harness.families.gpt import FAMILY as GPT
from harness.testing import bert, gpt
from harness.testing.twins import family_twins, twin_results


def agreement(pt, tfm, inputs, targets, weights=None) -> tuple[float, float, float]:
    """(logits max abs diff, loss relative diff, worst parameter's max grad diff ÷ its grad norm)."""
    (pt_logits, pt_loss, pt_grads), (tf_logits, tf_loss, tf_grads) = twin_results(pt, tfm, inputs, targets, weights)
    worst = max(np.max(np.abs(g - tf_grads[n])) / np.linalg.norm(g) for n, g in pt_grads.items())
    return float(np.max(np.abs(pt_logits - tf_logits))), abs(pt_loss - tf_loss) / abs(pt_loss), float(worst)


def rows():
    for name, config in gpt.CONFIGS.items():
        yield f"gpt {name}", agreement(*family_twins(GPT, config), *gpt.batch(config))
    for name, config in bert.CONFIGS.items():
        yield f"bert {name}", agreement(*family_twins(BERT, config), *bert.masked_batch(config))
    for name, config in bert.CLASSIFY.items():
        yield f"bert {name}", agreement(*family_twins(BERT, config), *bert.labelled_batch(config))


def padding_effect(name: str) -> tuple[float, float]:
    """How far padding moves a real position's output, (torch, TF): the outputs at the real positions
    of a sequence padded with 4 PAD ids against the unpadded sequence's, max abs."""
    config = bert.CONFIGS[name]
    pt, tfm = family_twins(BERT, config)
    tokens, _, _ = bert.masked_batch(config, count=1, padded=0)
    real = config.block_size - 4
    padded = tokens.copy()
    padded[:, real:] = PAD_ID
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
