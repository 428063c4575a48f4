"""Subword training end to end, 2 ranks: a BPE trained here, the corpus prepared into memory-mapped
shards, both frameworks training on the same token ids, the tokenizer travelling with the
checkpoints into `generate`, and a tokenizer that does not match a checkpoint refused."""

import json
import re

from horovod_job import harness_cli, harness_train

from harness.data.inputs import default_corpus
from harness.data.tokenizer import load_tokenizer

STEPS = 30


def test_a_bpe_prepared_corpus_trains_the_same_in_both_frameworks_and_generates_subwords(tmp_path):
    tokenizer_file, prepared, parity = tmp_path / "tokenizer.json", tmp_path / "prepared", tmp_path / "parity"
    harness_cli("tokenizer", "train", "--vocab-size", "512", "--out", str(tokenizer_file))
    made = harness_cli("prepare", "--out", str(prepared), "--set", f"data.tokenizer={tokenizer_file}")
    index = json.loads((prepared / "index.json").read_text())
    assert index["dtype"] == "uint16" and index["tokenizer"]["vocab_size"] == 512
    # Its summary line states what is on disk: the tokens in the shards, the bytes of the corpus read.
    summary = re.fullmatch(
        r"prepared (\d+) tokens \(uint16, (\d+) shard\(s\)\) from ([\d.]+) MB of input in [\d.]+ s "
        r"\([\d.]+ MB/s\); train (\d+) / validation (\d+) tokens -> (.+)",
        made.stdout.strip(),
    )
    assert summary, made.stdout
    tokens, shards, megabytes, train, val, out = summary.groups()
    on_disk = sum((prepared / shard["file"]).stat().st_size for shard in index["shards"]) // 2  # uint16
    assert int(tokens) == index["total_tokens"] == on_disk == int(train) + int(val)
    assert int(shards) == len(index["shards"]) and out == str(prepared)
    assert megabytes == f"{len(default_corpus().encode()) / 1e6:.1f}"

    data = f"data.prepared={prepared}"
    harness_cli("parity", "--steps", str(STEPS), "--np", "2", "--out", str(parity), "--set", data)
    report = json.loads((parity / "parity.json").read_text())
    # Seeds 1234 (this test's), 1, 2 (2026-12-02): worst 1.7e-7 in the loss, 4.5e-5 in the weights.
    assert report["max_rel_loss_diff"] <= 2e-6, report["rel_loss_diff"]
    assert report["max_weight_rel_norm_diff"] <= 5e-4
    assert report["loss_torch"][-1] < report["loss_torch"][0] - 0.5  # it did train
    print(f"bpe (512 ids), prepared, tiny, 2 ranks, {STEPS} steps: max rel loss diff {report['max_rel_loss_diff']:.2e}")

    run = parity / "torch"
    checkpoint = sorted((run / "checkpoints").glob("step_*"))[-1]
    assert (checkpoint / "tokenizer.json").read_bytes() == tokenizer_file.read_bytes()
    trainer = json.loads((checkpoint / "trainer.json").read_text())
    assert trainer["config"]["model"]["vocab_size"] == 512
    assert trainer["tokenizer"]["sha256"] == load_tokenizer(str(tokenizer_file)).sha256
    sample = harness_cli(
        "generate", "--run-dir", str(run), "--framework", "tf", "--prompt", "The ", "--max-new-tokens", "30"
    ).stdout.rstrip("\n")
    tokenizer = load_tokenizer(str(tokenizer_file))
    assert sample.startswith("The ") and len(tokenizer.encode(sample)) >= 20, sample
    assert len(sample.encode()) > 30  # 30 new ids: subwords, more than a byte each on average

    other, half = tmp_path / "other.json", tmp_path / "half.txt"
    half.write_text(default_corpus()[: len(default_corpus()) // 2])  # other text: other merges, same size
    harness_cli("tokenizer", "train", "--vocab-size", "512", "--out", str(other), "--set", f'data.paths=["{half}"]')
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    refused = harness_train(
        "--framework", "torch", "--run-dir", str(run), "--resume", "--steps", str(STEPS + 10),
        "--set", f"data.tokenizer={other}", check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "is not the one checkpoint" in refused.stderr, refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before
