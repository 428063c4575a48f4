"""The held-out pairs of a translation run's data, as files, and the BLEU and chrF of two baselines on them.

usage: seq2seq_heldout.py OUT_DIR [KEY=VALUE ...]    (data settings as for --set, e.g. data.val_fraction=0.1)

Writes OUT_DIR/sources.txt and OUT_DIR/references.txt (the validation split's pairs, one a line, in
order: what `harness translate --input` reads and sacrebleu scores), and prints the scores of the
copy baseline (each source as its own translation) and the majority baseline (the training split's
most frequent target for every source), by sacrebleu's defaults.
"""

import sys
from collections import Counter
from pathlib import Path

import sacrebleu

from harness.data.pairs import read_pairs
from harness.runner.config import build_data_config


def main(out: Path, overrides: list[str]) -> None:
    data = build_data_config(None, overrides)
    pairs = read_pairs(data)
    cut = int(len(pairs) * (1 - data.val_fraction))  # as harness.data.seq2seq splits them
    train, held_out = pairs[:cut], pairs[cut:]
    out.mkdir(parents=True, exist_ok=True)
    sources, references = [s for s, _ in held_out], [t for _, t in held_out]
    (out / "sources.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (out / "references.txt").write_text("\n".join(references) + "\n", encoding="utf-8")
    majority = Counter(t for _, t in train).most_common(1)[0][0]
    for name, hypotheses in (("copy", sources), (f"majority ({majority!r})", [majority] * len(sources))):
        bleu = sacrebleu.corpus_bleu(hypotheses, [references]).score
        chrf = sacrebleu.corpus_chrf(hypotheses, [references]).score
        print(f"{name} baseline on {len(held_out)} held-out pairs: BLEU {bleu:.2f}, chrF {chrf:.2f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
