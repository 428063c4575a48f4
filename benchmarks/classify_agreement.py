"""How far two `classify` fine-tunes agree on their held-out paragraphs: each run's newest checkpoint
evaluated by the twin of the framework it trained in, its accuracy beside the majority baseline,
and how many of the predictions the two runs share (the README's BERT-style pipeline figures).

usage: python benchmarks/classify_agreement.py RUN_DIR_A RUN_DIR_B
"""

import sys
from pathlib import Path

import numpy as np

from harness.bert import LabelledSplit, TopicTask, majority_baseline
from harness.checkpoint import latest_checkpoint
from harness.config import DataConfig
from harness.frameworks import framework_module

BATCH = 64


def predictions(run_dir: Path) -> tuple[str, np.ndarray, LabelledSplit]:
    """(framework, predicted labels, the held-out split) of the run's newest checkpoint; no Horovod."""
    checkpoint = latest_checkpoint(run_dir)
    framework, config = checkpoint.trainer["framework"], checkpoint.model_config
    if config.head != "classify":
        raise ValueError(f"{run_dir}: a classify run's checkpoint is expected, received head {config.head!r}")
    _, held_out = TopicTask(config.block_size, config.num_labels).splits(
        DataConfig(**checkpoint.trainer["config"]["data"])
    )
    predict = framework_module(framework, "backend").make_predictor(checkpoint.family, config, checkpoint.model)
    logits = np.concatenate([predict(held_out.inputs[i : i + BATCH]) for i in range(0, len(held_out), BATCH)])
    return framework, logits.argmax(axis=-1), held_out


def main(first: Path, second: Path) -> None:
    results = [predictions(run_dir) for run_dir in (first, second)]
    held_out = results[0][2]
    labels = held_out.labels
    if not np.array_equal(labels, results[1][2].labels):
        raise ValueError(f"{first} and {second} hold out different paragraphs (data.val_fraction differs)")
    for run_dir, (framework, predicted, _) in zip((first, second), results, strict=True):
        correct = int((predicted == labels).sum())
        print(f"{run_dir} ({framework}): {correct} / {len(labels)} = {correct / len(labels):.1%} correct")
    same = results[0][1] == results[1][1]
    both_right = int((same & (results[0][1] == labels)).sum())
    print(f"majority baseline: {majority_baseline(held_out):.1%}")
    print(f"identical predictions: {int(same.sum())} / {len(labels)}; both right: {both_right}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    main(Path(sys.argv[1]), Path(sys.argv[2]))
