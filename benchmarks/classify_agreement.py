"""How far two `classify` fine-tunes agree on their held-out paragraphs: each run's newest checkpoint
evaluated by the twin of the framework it trained in, its accuracy beside the majority baseline,
and how many of the predictions the two runs share (docs/measurements.md's BERT pipeline figures).

usage: python benchmarks/classify_agreement.py RUN_DIR_A RUN_DIR_B
"""

import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from harness.contract.config import DataConfig
from harness.contract.frameworks import framework_module
from harness.families.bert import LabelledSplit, majority_baseline, task
from harness.storage.checkpoint import latest_checkpoint

BATCH = 64


class Predictions(NamedTuple):
    run_dir: Path
    framework: str
    labels: np.ndarray  # the predicted label of each held-out paragraph
    held_out: LabelledSplit


def predictions(run_dir: Path) -> Predictions:
    """The predictions of the run's newest checkpoint on its held-out split, in its own framework; no Horovod."""
    checkpoint = latest_checkpoint(run_dir)
    framework, config = checkpoint.trainer["framework"], checkpoint.model_config
    if config.head != "classify":
        raise ValueError(f"{run_dir}: a classify run's checkpoint is expected, received head {config.head!r}")
    _, held_out = task(config).splits(DataConfig(**checkpoint.trainer["config"]["data"]))
    predict = framework_module(framework, "backend").make_predictor(checkpoint.family, config, checkpoint.model)
    logits = np.concatenate([predict(held_out.inputs[i : i + BATCH]) for i in range(0, len(held_out), BATCH)])
    return Predictions(run_dir, framework, logits.argmax(axis=-1), held_out)


def main(first_dir: Path, second_dir: Path) -> None:
    first, second = predictions(first_dir), predictions(second_dir)
    truth = first.held_out.labels
    if not np.array_equal(truth, second.held_out.labels):
        raise ValueError(f"{first_dir} and {second_dir} hold out different paragraphs (data.val_fraction differs)")
    for run in (first, second):
        correct = int((run.labels == truth).sum())
        print(f"{run.run_dir} ({run.framework}): {correct} / {len(truth)} = {correct / len(truth):.1%} correct")
    same = first.labels == second.labels
    both_right = int((same & (first.labels == truth)).sum())
    print(f"majority baseline: {majority_baseline(first.held_out):.1%}")
    print(f"identical predictions: {int(same.sum())} / {len(truth)}; both right: {both_right}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    try:
        main(Path(sys.argv[1]), Path(sys.argv[2]))
    except (OSError, ValueError) as err:
        sys.exit(f"error: {err}")
