"""Hugging Face transformers 4.57's Marian pair (MarianMTModel / TFMarianMTModel on tf-keras,
examples/hf_marian/) trained from scratch for translation under the loop: `harness check-family`
passes, 2 ranks per framework stay within parity, a checkpoint of either framework resumes in the
other and is decoded by beam search into the same translations in both, and bad translation data is
refused in one line before anything is written.

The data: 600 pairs of the demo corpus (numbers in English and French) in a JSON-lines file, read as
they are with a BPE trained on them (`harness tokenizer train --pairs`; check-family, bad data), and
prepared once (`harness prepare --pairs`) with a SentencePiece model trained on them (`--sentencepiece`;
the training runs, so checkpoints carry the SentencePiece model into translate)."""

import json
from pathlib import Path

import pytest
from horovod_job import copy_up_to, harness_cli, harness_train, transformers_example_env

from harness.data.pairs import demo_pairs
from harness.runner.parity import relative_differences, step_losses

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hf_marian"
FAMILY = "hf_marian_family:FAMILY"
STEPS = 20
PAIRS = 600  # 540 train, 60 validate
# The parity run's settings, and its continuations': short warm-up, rank 0 decodes 16 held-out pairs.
SETS = ["train.warmup_steps=5", "checkpoint.every=10", "eval.every=0", "eval.decode_examples=16"]


@pytest.fixture(scope="module")
def user_env(tmp_path_factory):
    return transformers_example_env(EXAMPLE, tmp_path_factory.mktemp("user_code"))


@pytest.fixture(scope="module")
def data(tmp_path_factory, user_env):
    """The pairs file and its tokenizer, as --set arguments."""
    root = tmp_path_factory.mktemp("numbers")
    pairs = root / "numbers.jsonl"
    pairs.write_text("".join(json.dumps({"source": s, "target": t}) + "\n" for s, t in demo_pairs(PAIRS)))
    tokenizer = root / "tokenizer.json"
    paths = f'data.paths=["{pairs}"]'
    harness_cli("tokenizer", "train", "--pairs", "--vocab-size", "300", "--out", str(tokenizer), "--set", paths)
    return ["--set", paths, "--set", f"data.tokenizer={tokenizer}"]


@pytest.fixture(scope="module")
def prepared(data, tmp_path_factory):
    """The same pairs prepared with a SentencePiece model, as --set arguments."""
    root, paths = tmp_path_factory.mktemp("prepared"), data[:2]  # --set data.paths=[...]
    tokenizer = root / "numbers.model"
    harness_cli(
        "tokenizer", "train", "--pairs", "--sentencepiece", "--vocab-size", "300", "--out", str(tokenizer), *paths
    )
    out = root / "numbers"
    harness_cli("prepare", "--pairs", "--out", str(out), *paths, "--set", f"data.tokenizer={tokenizer}")
    return ["--set", f"data.prepared={out}"]


@pytest.fixture(scope="module")
def parity_run(user_env, prepared, tmp_path_factory):
    out = tmp_path_factory.mktemp("hf-marian-parity")
    sets = [a for s in SETS for a in ("--set", s)]
    args = ["--family", FAMILY, "--np", "2", "--steps", str(STEPS), "--out", str(out), *prepared, *sets]
    harness_cli("parity", *args, env=user_env)
    return out


def test_check_family_passes_on_the_marian_pair(user_env, data):
    proc = harness_cli("check-family", FAMILY, *data, env=user_env)
    rows = proc.stdout.strip().splitlines()[2:]  # after the title and the header
    assert len(rows) == 8 and all("  ok  " in row for row in rows), proc.stdout
    print(proc.stdout)


def test_the_marian_pair_trains_alike_on_two_ranks(parity_run):
    report = json.loads((parity_run / "parity.json").read_text())
    # Measured 1.6e-7 over 50 steps (2026-12-02): as the built-in twins.
    assert report["max_rel_loss_diff"] <= 2e-6, report["rel_loss_diff"]
    assert report["loss_torch"][-1] < report["loss_torch"][0] - 0.3  # it learned: 5.69 -> 5.20 measured
    for framework in ("torch", "tf"):
        summary = json.loads((parity_run / framework / "summary.json").read_text())
        assert len(set(summary["weights_sha256_per_rank"])) == 1  # the replicas agree
        assert {"val_bleu", "val_chrf", "val_loss"} <= set(summary["final_val_metrics"])  # rank 0 decoded
    print(f"Marian pair, 2 ranks, {STEPS} steps: max relative loss difference {report['max_rel_loss_diff']:.2e}")


@pytest.mark.parametrize(("source", "target"), [("torch", "tf"), ("tf", "torch")])
def test_a_checkpoint_resumes_in_the_other_framework_and_translates_alike(
    parity_run, user_env, prepared, tmp_path, source, target
):
    run_dir = tmp_path / f"{source}-then-{target}"
    copy_up_to(parity_run / source, run_dir, STEPS // 2)
    args = ["--framework", target, "--family", FAMILY, "--steps", str(STEPS), "--run-dir", str(run_dir), "--resume"]
    sets = [*SETS, "train.deterministic=true"]
    proc = harness_train(*args, *prepared, *[a for s in sets for a in ("--set", s)], env=user_env)
    assert (run_dir / "checkpoints" / f"step_{STEPS}" / "tokenizer.model").is_file()  # what translate reads
    assert f"resuming from {run_dir / 'checkpoints' / 'step_10'} (step 10)" in proc.stderr
    rel = relative_differences(step_losses(parity_run / source), step_losses(run_dir))
    continued = max(rel[s] for s in range(STEPS // 2 + 1, STEPS + 1))
    assert continued <= 2e-6, rel
    sources = tmp_path / "sources.txt"
    sources.write_text("\n".join(s for s, _ in demo_pairs(PAIRS)[-30:]) + "\n")  # held-out pairs
    # After 20 steps the end token leads everywhere: a length penalty of 2 makes the beams' longer
    # outputs win, so that the two frameworks are compared on many tokens (0.6 gives empty lines).
    decode = ["--input", str(sources), "--num-beams", "3", "--length-penalty", "2", "--max-new-tokens", "24"]
    outputs = {
        framework: harness_cli(
            "translate", "--run-dir", str(run_dir), "--framework", framework, *decode, env=user_env
        ).stdout.splitlines()
        for framework in ("torch", "tf")
    }
    assert len(outputs["torch"]) == 30 and outputs["torch"] == outputs["tf"]
    assert sum(len(line.split()) for line in outputs["torch"]) >= 30  # words, not empty lines
    print(f"{source} checkpoint resumed in {target}: steps 11-{STEPS} within {continued:.2e}; {outputs['tf'][:3]}")


@pytest.mark.parametrize(
    ("records", "sets", "message"),
    [
        ([{"source": "one", "target": "un"}, {"source": "two"}], [], "line 2 has no text field 'target'"),
        ([{"source": "one", "target": "un"}, {"source": " ", "target": "deux"}], [], "line 2: its 'source' is empty"),
        ([{"source": "one " * 80, "target": "un"}], [], "is longer than the model's 64 positions"),
        ([{"source": "one", "target": "un"}], ["data.tokenizer=bytes"], "tokenizer bytes lacks a pad token"),
    ],
)
def test_bad_translation_data_is_one_line_and_nothing_is_written(user_env, data, tmp_path, records, sets, message):
    pairs = tmp_path / "bad.jsonl"
    pairs.write_text("".join(json.dumps(record) + "\n" for record in records * 20))
    given = [*data, "--set", f'data.paths=["{pairs}"]', *[a for s in sets for a in ("--set", s)]]
    run_dir = tmp_path / "run"
    args = ["--family", FAMILY, "--framework", "torch", "--steps", "2", "--run-dir", str(run_dir), *given]
    proc = harness_train(*args, check=False, env=user_env)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and message in lines[0], lines
    assert not run_dir.exists()
