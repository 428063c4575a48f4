"""Tokenizers, inputs and prepared data (harness/data/: tokenizer.py, inputs.py, prepared.py): real files
of every input kind, a real BPE, real shards on disk."""

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from harness.contract.config import DataConfig
from harness.contract.state import zero_optimizer_state
from harness.data.corpus import data_tokenizer, load_corpus, train_val_split
from harness.data.inputs import default_corpus, pieces
from harness.data.prepared import INDEX_FILE, PreparedData, prepare
from harness.data.tokenizer import ByteTokenizer, load_tokenizer, train_bpe
from harness.families.gpt import FAMILY, init_state, state_shapes
from harness.runner.config import load_run_config
from harness.storage.checkpoint import (
    check_tokenizer,
    checkpoint_tokenizer,
    latest_checkpoint,
    save_checkpoint,
    tokenizer_record,
)
from launch.cli import cli


def test_a_bpe_trained_on_the_default_corpus_round_trips_it_and_shortens_it(bpe_file):
    tokenizer = load_tokenizer(str(bpe_file))
    text = default_corpus()
    ids = tokenizer.encode(text)
    assert tokenizer.vocab_size == 512 and ids.dtype == np.uint16 and ids.max() < 512
    assert tokenizer.decode(ids) == text
    assert len(ids) < 0.5 * len(text.encode())  # subwords: fewer than half as many ids as bytes
    assert tokenizer.encode_batch(["a b", text[:100]])[1].tolist() == tokenizer.encode(text[:100]).tolist()


def test_the_tokenizer_command_writes_a_loadable_file_and_never_overwrites(tmp_path):
    out = tmp_path / "tok.json"
    first = CliRunner().invoke(cli, ["tokenizer", "train", "--vocab-size", "300", "--out", str(out)])
    assert first.exit_code == 0 and "300 ids" in first.output, first.output
    assert load_tokenizer(str(out)).vocab_size == 300
    before = out.read_bytes()
    again = CliRunner().invoke(cli, ["tokenizer", "train", "--vocab-size", "400", "--out", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output and out.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "is not a valid tokenizer.json"),
        (b'{"version": "1.0"}', "is not a valid tokenizer.json"),
        (b"\x00\x01 not a model", "is neither a tokenizer.json nor a SentencePiece model"),
    ],
)
def test_a_corrupt_tokenizer_file_is_one_error_line_and_nothing_is_written(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    result = CliRunner().invoke(cli, ["prepare", "--out", str(tmp_path / "out"), "--set", f"data.tokenizer={bad}"])
    assert result.exit_code == 1 and message in result.output and str(bad) in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_an_unknown_tokenizer_is_refused(tmp_path):
    with pytest.raises(ValueError, match="must be 'bytes', a tokenizer.json or a SentencePiece model file"):
        load_tokenizer(str(tmp_path / "none.json"))


def write_inputs(root):
    """One of each input kind under ``root``; returns (entries, the documents they hold, in order)."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "b.txt").write_text("second file")
    (root / "dir" / "sub" / "a.txt").write_text("third, in a subdirectory")
    (root / "dir" / "a.txt").write_text("first file")
    (root / "dir" / ".hidden").write_text("never read")
    (root / "docs.jsonl").write_text(json.dumps({"text": "json one", "id": 1}) + "\n\n" + json.dumps({"text": "two"}))
    pq.write_table(pa.table({"text": ["parquet row 1", "parquet row 2"], "n": [1, 2]}), root / "rows.parquet")
    datasets.Dataset.from_dict({"text": ["dataset row"], "label": [0]}).save_to_disk(str(root / "saved"))
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["dict train row"]})}).save_to_disk(
        str(root / "saved_dict")
    )
    (root / "glob").mkdir()
    for name in ("x1.txt", "x2.txt", "y.md"):
        (root / "glob" / name).write_text(name)
    entries = [
        str(root / "dir"),
        str(root / "docs.jsonl"),
        str(root / "rows.parquet"),
        str(root / "saved"),
        str(root / "saved_dict"),
        str(root / "glob" / "x*.txt"),
    ]
    expected = [
        "first file", "second file", "third, in a subdirectory", "json one", "two", "parquet row 1",
        "parquet row 2", "dataset row", "dict train row", "x1.txt", "x2.txt",
    ]  # fmt: skip
    return entries, expected


def test_every_input_kind_reads_its_documents_in_order(tmp_path):
    entries, expected = write_inputs(tmp_path)
    read = list(pieces(DataConfig(paths=tuple(entries))))  # small files: one piece a document
    assert [piece.decode() for piece, _ in read] == expected and all(starts for _, starts in read)
    tokens = load_corpus(DataConfig(paths=tuple(entries)))  # bytes: documents joined by a blank line
    assert ByteTokenizer().decode(tokens) == "\n\n".join(expected)


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "saved"])
def test_input_without_the_text_field_is_named_in_one_error(tmp_path, kind):
    entries, _ = write_inputs(tmp_path)
    entry = {"jsonl": entries[1], "parquet": entries[2], "saved": entries[3]}[kind]
    result = CliRunner().invoke(
        cli,
        [
            "prepare",
            "--out",
            str(tmp_path / "out"),
            "--set",
            f'data.paths=["{entry}"]',
            "--set",
            "data.text_field=body",
        ],
    )
    assert result.exit_code == 1 and "'body'" in result.output and "data.text_field" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))


def test_a_glob_matching_nothing_and_a_missing_file_are_refused(tmp_path):
    with pytest.raises(ValueError, match="matches no files"):
        list(pieces(DataConfig(paths=(str(tmp_path / "*.txt"),))))
    with pytest.raises(ValueError, match="does not exist"):
        list(pieces(DataConfig(paths=(str(tmp_path / "nope.txt"),))))


@pytest.mark.parametrize("tokenizer", ["bytes", "bpe"])
def test_prepared_shards_hold_exactly_the_in_memory_tokens(tmp_path, bpe_file, tokenizer):
    data = DataConfig(tokenizer="bytes" if tokenizer == "bytes" else str(bpe_file))
    index = prepare(data, tmp_path / "prepared", shard_tokens=50_000)  # several shards
    in_memory = load_corpus(data)
    prepared = PreparedData(tmp_path / "prepared", verify=True)
    view = prepared.tokens()
    assert len(index["shards"]) > 2 and index["total_tokens"] == len(in_memory) == len(view)
    assert index["dtype"] == "uint16" and index["input_bytes"] == len(default_corpus().encode())
    assert index["tokenizer"]["sha256"] == load_tokenizer(data.tokenizer).sha256
    assert (tmp_path / "prepared" / "tokenizer.json").exists() == (tokenizer == "bpe")
    # The same windows through the memory map as in memory, across shard boundaries too.
    seq_len = 64
    for ours, theirs in zip(train_val_split(view, seq_len, 0.1), train_val_split(in_memory, seq_len, 0.1), strict=True):
        assert len(ours) == len(theirs)
        indices = np.random.default_rng(0).integers(0, len(ours), 200)
        for a, b in zip(ours.windows(indices), theirs.windows(indices), strict=True):
            np.testing.assert_array_equal(a, b)
    prepared_data = DataConfig(prepared=str(tmp_path / "prepared"))
    assert data_tokenizer(prepared_data).sha256 == load_tokenizer(data.tokenizer).sha256


def test_prepare_refuses_an_existing_directory_and_leaves_nothing_when_an_input_fails(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(ValueError, match="already exists"):
        prepare(DataConfig(), tmp_path / "taken")
    bad = tmp_path / "late.jsonl"
    bad.write_text(json.dumps({"text": "fine"}) + "\n" + "{broken\n")
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        prepare(DataConfig(paths=(str(bad),)), tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.jsonl", "taken"]


def test_prepare_reads_the_data_table_without_a_model_family(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('[model]\nfamily = "nosuch"\n[data]\nval_fraction = 0.2\n')
    result = CliRunner().invoke(cli, ["prepare", "--out", str(tmp_path / "out"), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert PreparedData(tmp_path / "out").index["val_fraction"] == 0.2
    args = ["prepare", "--out", str(tmp_path / "again"), "--config", str(config), "--set", "train.nope=1"]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 1 and "unknown config key 'train.nope'" in refused.output, refused.output
    assert not (tmp_path / "again").exists()


def test_a_changed_shard_fails_its_checksum_with_one_error_line(tmp_path):
    prepare(DataConfig(), tmp_path / "prepared", shard_tokens=100_000)
    shard = tmp_path / "prepared" / "tokens-00001.bin"
    data = bytearray(shard.read_bytes())
    data[10] ^= 1
    shard.write_bytes(bytes(data))
    PreparedData(tmp_path / "prepared")  # sizes only: still opens
    with pytest.raises(ValueError, match="does not match its checksum"):
        PreparedData(tmp_path / "prepared", verify=True)
    result = CliRunner().invoke(
        cli,
        ["train", "--framework", "torch", "--model", "tiny", "--steps", "1", "--run-dir", str(tmp_path / "run"),
         "--set", f"data.prepared={tmp_path / 'prepared'}"],
    )  # fmt: skip
    assert result.exit_code == 1 and "does not match its checksum" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
    shard.write_bytes(bytes(data[:-2]))
    with pytest.raises(ValueError, match="missing or not"):
        PreparedData(tmp_path / "prepared")
    (tmp_path / "prepared" / INDEX_FILE).write_text("{")
    with pytest.raises(ValueError, match="no readable index.json"):
        PreparedData(tmp_path / "prepared")


def test_the_model_vocabulary_follows_the_tokenizer(bpe_file, tmp_path):
    _, config = load_run_config("tiny", overrides=[f"data.tokenizer={bpe_file}"])
    assert config.model.vocab_size == 512
    _, config = load_run_config("tiny")
    assert config.model.vocab_size == 256
    with pytest.raises(ValueError, match="leave model.vocab_size unset"):
        load_run_config("tiny", overrides=[f"data.tokenizer={bpe_file}", "model.vocab_size=256"])
    with pytest.raises(ValueError, match="family 'bert' reads bytes"):
        load_run_config("tiny", overrides=[f"data.tokenizer={bpe_file}"], family="bert")
    prepare(DataConfig(tokenizer=str(bpe_file)), tmp_path / "prepared")
    _, config = load_run_config("tiny", overrides=[f"data.prepared={tmp_path / 'prepared'}"])
    assert config.model.vocab_size == 512  # from the prepared data's own tokenizer
    other = tmp_path / "other.json"
    train_bpe([default_corpus()[:50_000]], 300, other)
    with pytest.raises(ValueError, match="is not the tokenizer data.prepared"):
        load_run_config("tiny", overrides=[f"data.prepared={tmp_path / 'prepared'}", f"data.tokenizer={other}"])
    with pytest.raises(ValueError, match="was split with val_fraction 0.1"):
        load_corpus(DataConfig(prepared=str(tmp_path / "prepared"), val_fraction=0.2))


@pytest.mark.parametrize("kind", ["bpe", "sentencepiece"])
def test_the_tokenizer_travels_with_checkpoints_and_a_mismatch_is_refused(bpe_file, pairs_spm, tmp_path, kind):
    tokenizer = load_tokenizer(str(bpe_file if kind == "bpe" else pairs_spm))
    config = dataclasses.replace(FAMILY.preset("tiny"), vocab_size=tokenizer.vocab_size)
    record = {
        "family": "gpt",
        "config": {"model": dataclasses.asdict(config)},
        "tokenizer": tokenizer_record(tokenizer),
    }
    state = init_state(config, 0)
    save_checkpoint(tmp_path, 5, state, zero_optimizer_state(state_shapes(config)), record, keep=1,
                    files={tokenizer.file_name: tokenizer.path})  # fmt: skip
    checkpoint = latest_checkpoint(tmp_path)
    stored = checkpoint.path / ("tokenizer.json" if kind == "bpe" else "tokenizer.model")
    assert stored.read_bytes() == tokenizer.path.read_bytes()
    assert checkpoint.trainer["sha256"][stored.name] == tokenizer.sha256
    assert type(checkpoint_tokenizer(checkpoint)) is type(tokenizer)
    assert checkpoint_tokenizer(checkpoint).encode("forty-two").tolist() == tokenizer.encode("forty-two").tolist()
    check_tokenizer(checkpoint, tokenizer)
    with pytest.raises(ValueError, match="is not the one checkpoint"):
        check_tokenizer(checkpoint, ByteTokenizer())
    stored.write_text("{}")
    with pytest.raises(ValueError, match="no valid checkpoint"):
        latest_checkpoint(tmp_path)  # the copy is checksummed with the tensors


def test_a_text_file_larger_than_a_piece_is_read_in_pieces_cut_at_line_starts(tmp_path, bpe_file):
    from harness.data.inputs import PIECE_BYTES

    text = (default_corpus() + "\n\n") * (2 * PIECE_BYTES // len(default_corpus().encode()) + 1)
    big = tmp_path / "big.txt"
    big.write_text(text)
    data = DataConfig(paths=(str(big),))
    cut = list(pieces(data))
    assert len(cut) >= 3 and [starts for _, starts in cut] == [True] + [False] * (len(cut) - 1)
    assert all(len(piece) <= 2 * PIECE_BYTES for piece, _ in cut)
    for (piece, _), (following, _) in zip(cut[:-1], cut[1:], strict=True):
        assert piece.endswith(b"\n") and not following[:1].isspace()
    assert b"".join(piece for piece, _ in cut) == big.read_bytes()
    np.testing.assert_array_equal(load_corpus(data), np.frombuffer(big.read_bytes(), np.uint8))  # bytes: exact
    bpe = DataConfig(paths=(str(big),), tokenizer=str(bpe_file))
    tokens = load_corpus(bpe)
    assert load_tokenizer(str(bpe_file)).decode(tokens) == text  # lossless across the cuts
    prepare(bpe, tmp_path / "prepared")
    np.testing.assert_array_equal(PreparedData(tmp_path / "prepared").tokens()[np.arange(len(tokens))], tokens)
