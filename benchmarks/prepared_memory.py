"""Memory of training on a large prepared corpus vs the default corpus, and `harness prepare`'s speed.

usage: prepared_memory.py [SIZE_MB] [FRAMEWORK] [STEPS]      (defaults: 1024 torch 30)

1. writes a SIZE_MB text corpus: copies of CPython's documentation topics, each copy's topics in
   another seeded order (real text, generated, no download);
2. trains a 2048-id byte-level BPE on the default corpus (`harness tokenizer train`);
3. prepares the large corpus and the default corpus with it (`harness prepare`: MB/s printed);
4. trains the default model, 2 ranks, STEPS steps, on each prepared corpus, evaluation capped at
   512 examples, and prints each run's peak RSS per rank and the ratio large / default.
Everything lives in a temporary directory, removed at the end.
"""

import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = [sys.executable, "-m", "launch.cli"]


def harness(*args: str) -> str:
    proc = subprocess.run([*HARNESS, *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"harness {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def write_corpus(path: Path, megabytes: int) -> int:
    from pydoc_data.topics import topics

    names, rng, written = sorted(topics), random.Random(0), 0
    with path.open("w") as out:
        while written < megabytes * 1_000_000:
            rng.shuffle(names)
            text = "\n\n".join(topics[name] for name in names) + "\n\n"
            out.write(text)
            written += len(text.encode())
    return written


def peak_rss(prepared: Path, framework: str, steps: int, run_dir: Path) -> list[float]:
    harness(
        "train", "--framework", framework, "--np", "2", "--model", "default", "--steps", str(steps),
        "--run-dir", str(run_dir), "--no-progress", "--no-tensorboard", "--set", f"data.prepared={prepared}",
        "--set", "eval.every=0", "--set", "eval.max_examples=512", "--set", "checkpoint.every=0",
    )  # fmt: skip
    return json.loads((run_dir / "summary.json").read_text())["peak_rss_mib_per_rank"]


def main(megabytes: int, framework: str, steps: int) -> None:
    with tempfile.TemporaryDirectory(prefix="prepared-memory-") as scratch:
        work = Path(scratch)
        corpus = work / "corpus.txt"
        size = write_corpus(corpus, megabytes)
        tokenizer = work / "tokenizer.json"
        harness("tokenizer", "train", "--vocab-size", "2048", "--out", str(tokenizer))
        began = time.perf_counter()
        line = harness(
            "prepare", "--out", str(work / "large"), "--set", f'data.paths=["{corpus}"]', "--set",
            f"data.tokenizer={tokenizer}",
        )  # fmt: skip
        print(f"prepare, {size / 1e6:.0f} MB: {line.strip()} (wall {time.perf_counter() - began:.1f} s)", flush=True)
        harness("prepare", "--out", str(work / "small"), "--set", f"data.tokenizer={tokenizer}")
        corpus.unlink()  # only the shards are read from here on
        small = peak_rss(work / "small", framework, steps, work / "run-small")
        large = peak_rss(work / "large", framework, steps, work / "run-large")
        ratios = [round(big / little, 3) for big, little in zip(large, small, strict=True)]
        print(
            f"{framework}, default model (2048-id BPE), 2 ranks, {steps} steps: peak RSS per rank "
            f"default corpus {small} MiB, {size / 1e6:.0f} MB corpus {large} MiB, ratio {ratios}"
        )


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 1024, args[1] if len(args) > 1 else "torch", int(args[2]) if len(args) > 2 else 30)
