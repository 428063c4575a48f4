"""Source/target pairs and the sequence-to-sequence task (harness/data/pairs.py, seq2seq.py): real
files of every pair format, a real BPE trained with --pairs, the demo corpus from num2words."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from harness.contract.backend import EvalSums
from harness.contract.config import DataConfig, Decoding, EvalConfig
from harness.data.corpus import load_corpus
from harness.data.pairs import DEMO_LIMIT, demo_pairs, read_pairs
from harness.data.prepared import PreparedData, prepare, prepare_pairs
from harness.data.seq2seq import Seq2SeqTask, beam_search, seq2seq_ids
from harness.data.tokenizer import END_OF_TEXT, SentencePieceTokenizer, load_tokenizer, train_bpe
from harness.loop.evaluator import evaluate
from launch.cli import cli

PAIRS = [("one", "un"), ("two", "deux"), ("twenty-one", "vingt et un"), ("seventy", "soixante-dix")]


@pytest.fixture(scope="module")
def pairs_bpe(tmp_path_factory):
    """A 300-id BPE trained with --pairs on the demo corpus (both sides)."""
    out = tmp_path_factory.mktemp("tokenizer") / "pairs.json"
    result = CliRunner().invoke(
        cli,
        ["tokenizer", "train", "--pairs", "--vocab-size", "300", "--out", str(out), "--set", "data.val_fraction=0.5"],
    )
    assert result.exit_code == 0, result.output
    return out


def write_pair_files(root, pairs=PAIRS):
    """The pairs in each format: one TSV (header, the pairs' columns in the other order, a third
    column), JSON lines, Parquet, a saved dataset; returns their data.paths entries."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = ["id\ttarget\tsource"] + [f"{i}\t{t}\t{s}" for i, (s, t) in enumerate(pairs[:2])]
    (root / "a.tsv").write_text("\n".join(rows) + "\n\n")
    lines = [json.dumps({"source": s, "target": t, "n": 1}) for s, t in pairs[2:3]]
    (root / "b.jsonl").write_text("\n".join(lines) + "\n")
    pq.write_table(pa.table({"source": [pairs[3][0]], "target": [pairs[3][1]]}), root / "c.parquet")
    datasets.Dataset.from_dict({"source": ["three"], "target": ["trois"]}).save_to_disk(str(root / "saved"))
    return [str(root / name) for name in ("a.tsv", "b.jsonl", "c.parquet", "saved")]


def test_every_pair_format_is_read_in_order(tmp_path):
    entries = write_pair_files(tmp_path)
    assert read_pairs(DataConfig(paths=tuple(entries))) == [*PAIRS, ("three", "trois")]


def test_other_field_names_are_read_through_the_settings(tmp_path):
    (tmp_path / "p.jsonl").write_text(json.dumps({"en": "one", "fr": "un"}) + "\n")
    data = DataConfig(paths=(str(tmp_path / "p.jsonl"),), source_field="en", target_field="fr")
    assert read_pairs(data) == [("one", "un")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("p.tsv", "source\tthe_target\none\tun\n", "has no column 'target' (columns: ['source', 'the_target']); "
         "set data.target_field"),
        ("p.jsonl", '{"source": "one", "target": "un"}\n{"source": "two"}\n', "p.jsonl line 2 has no text field "
         "'target' (['source']); set data.target_field"),
        ("p.tsv", "source\ttarget\none\tun\n \tdeux\n", "p.tsv line 3: its 'source' is empty"),
        ("p.jsonl", '{"source": "", "target": "un"}\n', "p.jsonl line 1: its 'source' is empty"),
        ("p.tsv", "source\ttarget\none\tun\textra\n", "p.tsv line 2 has 3 columns, its header 2"),
        ("p.jsonl", '{"source": "one", "target": "un"}\n{broken\n', "p.jsonl line 2 is not JSON"),
        ("p.txt", "one un\n", "pairs are read from .tsv, .jsonl or .parquet files or a saved dataset, received a .txt"),
    ],
)  # fmt: skip
def test_a_bad_pair_file_is_refused_in_one_line_naming_where(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(ValueError, match="^.*$") as error:
        read_pairs(DataConfig(paths=(str(tmp_path / name),)))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_demo_corpus_is_seeded_numbers_in_english_and_french():
    pairs = demo_pairs(1500)
    assert pairs == demo_pairs(1500) and len(set(pairs)) == 1500
    assert pairs != demo_pairs(1500, seed=1)
    assert ("seventy-one", "soixante et onze") in pairs[:1000]  # every number below 1000 comes first
    assert ("ninety-nine", "quatre-vingt-dix-neuf") in pairs[:1000]
    assert len(demo_pairs()) == 20_000 and DEMO_LIMIT == 1_000_000


def test_a_pairs_tokenizer_has_pad_and_end_tokens_and_bytes_has_none(pairs_bpe, bpe_file):
    tokenizer = load_tokenizer(str(pairs_bpe))
    pad, end = seq2seq_ids(tokenizer)
    assert {pad, end} == {tokenizer.special_id(["<pad>"]), tokenizer.special_id(["</s>"])} and pad != end
    assert tokenizer.decode(tokenizer.encode("quatre-vingt-dix-neuf")) == "quatre-vingt-dix-neuf"
    with pytest.raises(ValueError, match="^tokenizer bytes lacks a pad token and an end token") as error:
        seq2seq_ids(load_tokenizer("bytes"))
    assert "`harness tokenizer train --pairs`" in str(error.value)
    # A tokenizer trained for text has an end token (<|endoftext|>) and no pad token.
    with pytest.raises(ValueError, match=r"lacks a pad token \(<pad> or \[PAD\]"):
        seq2seq_ids(load_tokenizer(str(bpe_file)))
    assert load_tokenizer(str(bpe_file)).special_id(["</s>", END_OF_TEXT]) is not None


def test_a_tokenizer_json_padding_setting_names_its_pad_token(tmp_path):
    from tokenizers import Tokenizer

    out = tmp_path / "tok.json"
    train_bpe(["un deux trois"] * 3, 300, out, pairs=True)
    tokenizer = Tokenizer.from_file(str(out))
    tokenizer.add_special_tokens(["[PAD]"])
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")
    tokenizer.save(str(out))
    loaded = load_tokenizer(str(out))
    # Its padding setting names the pad token, before the vocabulary's <pad>.
    assert loaded.special_id(["<pad>", "[PAD]"]) == tokenizer.token_to_id("[PAD]") != tokenizer.token_to_id("<pad>")
    assert loaded.special_id(["</s>"]) == tokenizer.token_to_id("</s>")


def task_splits(tmp_path, tokenizer, pairs=PAIRS, task=None, **data):
    task = task or Seq2SeqTask(16, 16)
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"source": s, "target": t}) + "\n" for s, t in pairs))
    return task.splits(DataConfig(paths=(str(tmp_path / "p.jsonl"),), tokenizer=str(tokenizer), **data))


def test_a_batch_pads_masks_and_shifts_the_decoder_inputs(tmp_path, pairs_bpe):
    tokenizer = load_tokenizer(str(pairs_bpe))
    pad, end = seq2seq_ids(tokenizer)
    train, val = task_splits(tmp_path, pairs_bpe, val_fraction=0.25)
    assert len(train) == 3 and len(val) == 1 and val.texts == [PAIRS[3]]  # the last quarter validates
    batch = Seq2SeqTask(16, 16).batch(train, np.array([2, 0]), np.random.default_rng(0))
    source_ids = [np.append(tokenizer.encode(PAIRS[i][0]), end) for i in (2, 0)]
    target_ids = [np.append(tokenizer.encode(PAIRS[i][1]), end) for i in (2, 0)]
    longest = max(len(tokenizer.encode(t)) for _, t in PAIRS) + 1  # over both splits: one shape for all
    assert batch.targets.shape == batch.weights.shape == batch.inputs["decoder_input_ids"].shape == (2, longest)
    for row, (source, target) in enumerate(zip(source_ids, target_ids, strict=True)):
        ids, mask = batch.inputs["input_ids"][row], batch.inputs["attention_mask"][row]
        assert ids[: len(source)].tolist() == source.tolist() and set(ids[len(source) :]) <= {pad}
        assert mask.tolist() == [1] * len(source) + [0] * (len(ids) - len(source))
        assert batch.targets[row, : len(target)].tolist() == target.tolist()
        assert batch.weights[row].tolist() == [1.0] * len(target) + [0.0] * (longest - len(target))
        decoder = batch.inputs["decoder_input_ids"][row]
        assert decoder[0] == pad and decoder[1:].tolist() == batch.targets[row, :-1].tolist()
    assert batch.tokens == batch.inputs["input_ids"].size
    # A BART-like start: the end token, the rest alike.
    train, _ = task_splits(tmp_path, pairs_bpe, task=Seq2SeqTask(16, 16, start="end"), val_fraction=0.25)
    ended = Seq2SeqTask(16, 16, start="end").batch(train, np.array([2, 0]), np.random.default_rng(0))
    assert (ended.inputs["decoder_input_ids"][:, 0] == end).all()
    assert np.array_equal(ended.inputs["decoder_input_ids"][:, 1:], batch.inputs["decoder_input_ids"][:, 1:])


def test_a_side_longer_than_the_positions_is_refused_or_cut_by_setting(tmp_path, pairs_bpe):
    tokenizer = load_tokenizer(str(pairs_bpe))
    _, end = seq2seq_ids(tokenizer)
    long = ("one two three four five six seven eight nine ten", "un")
    pairs = [long, *PAIRS]
    limit = len(tokenizer.encode(long[0]))  # one short: its end token does not fit
    with pytest.raises(ValueError) as error:
        task_splits(tmp_path, pairs_bpe, pairs, Seq2SeqTask(limit, 16))
    assert f"a source of {limit + 1} tokens (its end token included) is longer than the model's {limit} positions" in (
        str(error.value)
    ) and "set data.truncate=true" in str(error.value)
    train, _ = task_splits(tmp_path, pairs_bpe, pairs, Seq2SeqTask(limit, 16), truncate=True)
    (cut,) = Seq2SeqTask(limit, 16).source_inputs(train, np.array([0]))["input_ids"]
    assert cut.tolist() == [*tokenizer.encode(long[0])[: limit - 1].tolist(), end]
    assert train.source_len == limit


def test_a_tokenizer_without_pad_and_end_tokens_is_refused_for_pairs(tmp_path):
    with pytest.raises(ValueError, match="lacks a pad token and an end token"):
        task_splits(tmp_path, "bytes")


class ScriptedBackend:
    """A model that knows the answers: for each source (its ids) it puts nearly all probability on
    the next token of that source's output, given the decoder's prefix; fixed loss sums."""

    def __init__(self, answers, vocab):
        self.answers, self.vocab, self.calls = answers, vocab, 0

    def eval_sums(self, batch):
        return EvalSums(loss=2.0 * batch.weights.sum(), correct=batch.weights.sum() / 2, count=batch.weights.sum())

    def predict(self, inputs):
        self.calls += 1
        prefixes = inputs["decoder_input_ids"]
        logits = np.full((*prefixes.shape, self.vocab), -10.0, np.float32)  # (N, t, V)
        for row, (ids, mask) in enumerate(zip(inputs["input_ids"], inputs["attention_mask"], strict=True)):
            answer = self.answers[tuple(ids[mask == 1])]
            logits[row, -1, answer[min(prefixes.shape[1] - 1, len(answer) - 1)]] = 10.0
        return logits


def test_evaluation_decodes_the_first_examples_and_scores_them_with_bleu_and_chrf(tmp_path, pairs_bpe):
    tokenizer = load_tokenizer(str(pairs_bpe))
    task = Seq2SeqTask(16, 16, start="end")
    pairs = [(f"{s} {i}", f"{t} {i}") for i in range(3) for s, t in PAIRS]  # 12: 6 train, 6 validate
    _, val = task_splits(tmp_path, pairs_bpe, pairs, task, val_fraction=0.5)
    right = {tuple(np.append(val.sources.ids(i), val.end)): np.append(val.targets.ids(i), val.end) for i in range(6)}
    config = EvalConfig(batch_size=2, decode_examples=5, num_beams=3, length_penalty=0.8)
    metrics = evaluate(ScriptedBackend(right, tokenizer.vocab_size), task, val, config, seed=0)
    assert metrics["val_loss"] == 2.0 and metrics["val_token_accuracy"] == 0.5
    assert metrics["val_bleu"] == pytest.approx(100) and metrics["val_chrf"] == pytest.approx(100)
    wrong = {source: np.append(tokenizer.encode("zéro"), val.end) for source in right}
    scored = evaluate(ScriptedBackend(wrong, tokenizer.vocab_size), task, val, config, seed=0)
    assert scored["val_bleu"] == pytest.approx(0) and scored["val_chrf"] < 20
    assert "val_bleu" not in evaluate(ScriptedBackend(right, 300), task, val, EvalConfig(decode_examples=0), seed=0)


# A bigram model over 4 tokens (0 is the end, 3 the start): log-probabilities of the next token given
# the last one. Greedy takes 1 (0.5), 2 (0.4), the end (0.9): 0.18; two beams find 2 (0.4), the end (0.9): 0.36.
BIGRAM = np.log(np.array([
    [0.25, 0.25, 0.25, 0.25],  # after the end token (never extended)
    [0.3, 0.3, 0.4, 1e-9],  # after 1
    [0.9, 0.05, 0.05, 1e-9],  # after 2
    [1e-9, 0.5, 0.4, 0.1],  # after the start token
]))  # fmt: skip


def bigram(inputs):
    return BIGRAM[inputs["decoder_input_ids"]]  # (N, t, 4): each position's next-token log-probabilities


@pytest.mark.parametrize(
    ("beams", "penalty", "expected"),
    [(1, 1.0, [3, 1, 2, 0]), (2, 0.0, [3, 2, 0]), (2, 1.0, [3, 2, 0])],
)
def test_beam_search_finds_what_greedy_misses(beams, penalty, expected):
    inputs = {"input_ids": np.zeros((2, 1), np.int64), "attention_mask": np.ones((2, 1), np.int64)}
    outputs = beam_search(bigram, inputs, start=3, end=0, decoding=Decoding(beams, penalty, 8))
    assert [ids.tolist() for ids in outputs] == [expected, expected]  # two sources, decoded alike


def test_beam_search_stops_at_max_new_tokens_with_the_best_running_beam():
    loop = np.log(np.array([[0.25] * 4, [1e-9, 0.9, 0.1, 1e-9], [1e-9, 0.1, 0.9, 1e-9], [1e-9, 0.6, 0.4, 1e-9]]))
    inputs = {"input_ids": np.zeros((1, 1), np.int64), "attention_mask": np.ones((1, 1), np.int64)}
    (greedy,) = beam_search(lambda x: loop[x["decoder_input_ids"]], inputs, 3, 0, Decoding(1, 1.0, 4))
    (beamed,) = beam_search(lambda x: loop[x["decoder_input_ids"]], inputs, 3, 0, Decoding(3, 1.0, 4))
    assert greedy.tolist() == [3, 1, 1, 1, 1] and beamed.tolist() == [3, 1, 1, 1, 1]  # never ends: cut at 4


def test_a_sentencepiece_model_tokenizes_pairs_and_round_trips_them(tmp_path):
    spm = tmp_path / "pairs.spm"
    args = ["tokenizer", "train", "--pairs", "--sentencepiece", "--vocab-size", "400", "--out", str(spm)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and result.output.startswith("tokenizer: ") and result.output.count(" ids") == 1
    tokenizer = load_tokenizer(str(spm))  # told from a tokenizer.json by its contents, not its name
    assert isinstance(tokenizer, SentencePieceTokenizer) and tokenizer.vocab_size <= 400
    assert seq2seq_ids(tokenizer) == (1, 2)  # <pad> and </s>, trained in
    texts = [side for pair in demo_pairs(200) for side in pair]
    encoded = tokenizer.encode_batch(texts)
    assert [tokenizer.decode(ids) for ids in encoded] == texts
    assert sum(map(len, encoded)) < 0.5 * sum(map(len, texts))  # subwords, not characters
    plain = tmp_path / "plain.model"  # trained without --pairs, on the default text: no pad, no end token
    train = ["tokenizer", "train", "--sentencepiece", "--out", str(plain), "--vocab-size"]
    small = CliRunner().invoke(cli, [*train, "50"])
    assert small.exit_code == 1 and small.output.startswith("Error: SentencePiece training failed: Vocabulary size")
    assert len(small.output.strip().splitlines()) == 1 and not plain.exists(), small.output
    result = CliRunner().invoke(cli, [*train, "300"])
    assert result.exit_code == 0, result.output
    with pytest.raises(ValueError, match="lacks a pad token and an end token"):
        seq2seq_ids(load_tokenizer(str(plain)))


def write_demo_pairs(path, count):
    path.write_text("".join(json.dumps({"source": s, "target": t}) + "\n" for s, t in demo_pairs(count)))
    return path


@pytest.mark.parametrize("kind", ["bpe", "sentencepiece"])
def test_prepared_pairs_give_the_batches_of_the_raw_pairs(tmp_path, pairs_bpe, pairs_spm, kind):
    tokenizer = str(pairs_bpe if kind == "bpe" else pairs_spm)
    raw = DataConfig(paths=(str(write_demo_pairs(tmp_path / "p.jsonl", 300)),), tokenizer=tokenizer, truncate=True)
    index = prepare_pairs(raw, tmp_path / "prepared", shard_tokens=500)  # several shards a side
    assert index["pairs"] == 300 and index["train_pairs"] == 270 and len(index["source"]["shards"]) > 3
    assert (tmp_path / "prepared" / load_tokenizer(tokenizer).file_name).read_bytes() == Path(tokenizer).read_bytes()
    PreparedData(tmp_path / "prepared", verify=True)
    prepared = DataConfig(prepared=str(tmp_path / "prepared"), truncate=True)
    task = Seq2SeqTask(12, 12)  # short: some sides are cut, across shard boundaries too
    for ours, theirs in zip(task.splits(prepared), task.splits(raw), strict=True):
        assert (len(ours), ours.source_len, ours.target_len) == (len(theirs), theirs.source_len, theirs.target_len)
        assert ours.texts == theirs.texts
        indices = np.random.default_rng(0).permutation(len(ours))
        a, b = task.batch(ours, indices, None), task.batch(theirs, indices, None)
        assert a.inputs.keys() == b.inputs.keys()
        for name in a.inputs:
            np.testing.assert_array_equal(a.inputs[name], b.inputs[name])
        np.testing.assert_array_equal(a.targets, b.targets)
        np.testing.assert_array_equal(a.weights, b.weights)
    assert len(task.splits(prepared)[1].texts) == 30 and not task.splits(prepared)[0].texts  # references only


def test_prepare_pairs_writes_whole_or_nothing_and_each_task_refuses_the_other_kind(tmp_path, pairs_bpe):
    pairs = write_demo_pairs(tmp_path / "p.jsonl", 100)
    sets = ["--set", f'data.paths=["{pairs}"]', "--set", f"data.tokenizer={pairs_bpe}"]
    out = tmp_path / "prepared"
    result = CliRunner().invoke(cli, ["prepare", "--pairs", "--out", str(out), *sets])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("prepared 100 pairs (") and "train 90 / validation 10 pairs" in result.output
    again = CliRunner().invoke(cli, ["prepare", "--pairs", "--out", str(out), *sets])
    assert again.exit_code == 1 and "already exists" in again.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text(pairs.read_text() + json.dumps({"source": "one"}) + "\n")
    refused = CliRunner().invoke(cli, ["prepare", "--pairs", "--out", str(tmp_path / "bad"), "--set",
                                       f'data.paths=["{bad}"]', "--set", f"data.tokenizer={pairs_bpe}"])  # fmt: skip
    assert refused.exit_code == 1 and len(refused.output.strip().splitlines()) == 1, refused.output
    assert "line 101 has no text field 'target'" in refused.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "p.jsonl", "prepared"]
    with pytest.raises(ValueError, match="holds source/target pairs"):
        load_corpus(DataConfig(prepared=str(out)))
    with pytest.raises(ValueError, match="was split with val_fraction 0.1"):
        Seq2SeqTask(16, 16).splits(DataConfig(prepared=str(out), val_fraction=0.2))
    prepare(DataConfig(), tmp_path / "stream")
    with pytest.raises(ValueError, match="holds a token stream for a language model"):
        Seq2SeqTask(16, 16).splits(DataConfig(prepared=str(tmp_path / "stream")))
    # A too-long side is refused from the prepared lengths, its text decoded from the shards.
    with pytest.raises(ValueError, match=r"a source of \d+ tokens .* longer than the model's 4 positions: '"):
        Seq2SeqTask(4, 16).splits(DataConfig(prepared=str(out)))
    validation = out / "validation.jsonl"
    validation.write_text("".join(validation.read_text().splitlines(keepends=True)[:-1]))  # a pair lost
    with pytest.raises(ValueError, match="validation.jsonl is missing or changed"):
        PreparedData(out, verify=True)
    with pytest.raises(ValueError, match="validation.jsonl holds 9 pairs, not 10"):
        Seq2SeqTask(16, 16).splits(DataConfig(prepared=str(out)))
    offsets = out / "target-offsets.npy"
    offsets.write_bytes(offsets.read_bytes()[:-8] + (10**6).to_bytes(8, "little"))
    with pytest.raises(ValueError, match="target-offsets.npy is missing or changed"):
        PreparedData(out, verify=True)
    with pytest.raises(ValueError, match="offsets of the targets .* do not match"):
        Seq2SeqTask(16, 16).splits(DataConfig(prepared=str(out)))


def test_a_tokenizer_a_task_would_refuse_is_refused_before_anything_is_prepared(tmp_path, pairs_spm):
    pairs = write_demo_pairs(tmp_path / "p.jsonl", 20)
    with pytest.raises(ValueError, match="tokenizer bytes lacks a pad token and an end token"):
        prepare_pairs(DataConfig(paths=(str(pairs),)), tmp_path / "out")
    # SentencePiece drops blank lines: a language model's documents would run together.
    with pytest.raises(ValueError, match="encodes the blank line between documents to nothing"):
        prepare(DataConfig(tokenizer=str(pairs_spm)), tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl"]
