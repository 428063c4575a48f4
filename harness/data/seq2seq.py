"""The sequence-to-sequence task: a target sequence from a source sequence (translation).

Pairs (harness/data/pairs.py) are tokenized with the one shared tokenizer of ``data.tokenizer``,
which must have a pad and an end token (harness/data/tokenizer.py): each side ends with the end token;
the decoder reads the target shifted right behind a start token (the pad token, as Marian and T5
start, or the end token, as BART does); padding is masked out of the encoder's attention and
weighted out of the loss. All batches are padded to the longest source and the longest target of
the data, so every step has one shape (one trace in TensorFlow). The last ``data.val_fraction`` of
the pairs validates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.contract.config import DataConfig, Decoding, EvalConfig
from harness.contract.task import Batch
from harness.data.corpus import data_tokenizer
from harness.data.pairs import read_pairs
from harness.data.tokenizer import END_TOKENS, PAD_TOKENS, Tokenizer


def seq2seq_ids(tokenizer: Tokenizer) -> tuple[int, int]:
    """(pad id, end id) of ``tokenizer``; ``ValueError`` naming what it lacks."""
    pad, end = tokenizer.special_id(PAD_TOKENS), tokenizer.special_id(END_TOKENS)
    if pad is None or end is None:
        lacks = " and ".join(what for what, found in (("a pad token", pad), ("an end token", end)) if found is None)
        raise ValueError(
            f"tokenizer {tokenizer.name} lacks {lacks} ({' or '.join(PAD_TOKENS)}; {' or '.join(END_TOKENS)}): "
            "a sequence-to-sequence task pads its batches and ends each side; train one with "
            "`harness tokenizer train --pairs`"
        )
    return pad, end


def padded(rows: list[np.ndarray], length: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` padded on the right to ``length``, and their mask (1 on a row's tokens, 0 on its
    padding): two (len(rows), length) int64."""
    ids = np.full((len(rows), length), pad, np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    mask = (np.arange(length) < np.array([len(row) for row in rows])[:, None]).astype(np.int64)
    return ids, mask


def beam_search(
    predict: Callable[[dict[str, np.ndarray]], np.ndarray],
    inputs: dict[str, np.ndarray],
    start: int,
    end: int,
    decoding: Decoding,
) -> list[np.ndarray]:
    """Each source's best output, by beam search over ``decoding.num_beams`` beams, written once in
    numpy for both frameworks: ``predict`` maps the encoder's ``inputs`` (each source once per beam)
    and ``decoder_input_ids`` (N, t) to logits (N, t, V), of which the last position extends each
    beam. A beam that picks ``end`` among the best ``num_beams`` candidates finishes, scored by its
    summed log-probability over (its new tokens, the end token included) ** ``length_penalty``; a
    source is done once it holds ``num_beams`` finished outputs that no running beam, scored at the
    current length, passes (transformers' rule without early stopping); one beam is greedy decoding.
    At ``max_new_tokens`` the running beams compete unfinished. Ties go to the lower beam, then the
    lower token id. Returns each source's ids: the start token first, the end token last if it ended."""
    count, beams, penalty = len(inputs["input_ids"]), decoding.num_beams, decoding.length_penalty
    encoder = {name: np.repeat(array, beams, axis=0) for name, array in inputs.items()}  # (count * beams, S)
    prefixes = np.full((count * beams, 1), start, np.int64)  # (count * beams, t)
    running = np.full((count, beams), -np.inf)
    running[:, 0] = 0.0  # summed log-probabilities; one live beam to start from
    finished: list[list[tuple[float, np.ndarray]]] = [[] for _ in range(count)]  # (score, ids), best first
    done = np.zeros(count, bool)
    for length in range(1, decoding.max_new_tokens + 1):
        logits = predict(encoder | {"decoder_input_ids": prefixes})[:, -1].astype(np.float64)  # (count * beams, V)
        top = logits.max(axis=-1, keepdims=True)
        log_probs = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
        vocab = log_probs.shape[-1]
        candidates = (running.reshape(-1, 1) + log_probs).reshape(count, beams * vocab)
        best = np.argsort(-candidates, axis=1, kind="stable")[:, : 2 * beams]  # (count, 2 * beams)
        rows = np.repeat(np.arange(count) * beams, beams).reshape(count, beams)  # a done source keeps its rows
        tokens = np.full((count, beams), end, np.int64)
        running = np.full((count, beams), -np.inf)
        for i in np.flatnonzero(~done):
            kept = 0
            for rank, index in enumerate(best[i]):
                beam, token = divmod(int(index), vocab)
                score = candidates[i, index]
                if token == end:
                    if rank < beams and score > -np.inf:
                        finished[i].append((score / length**penalty, np.append(prefixes[i * beams + beam], end)))
                    continue
                rows[i, kept], tokens[i, kept], running[i, kept] = i * beams + beam, token, score
                kept += 1
                if kept == beams:
                    break
            finished[i] = sorted(finished[i], key=lambda scored: -scored[0])[:beams]
            if len(finished[i]) == beams:
                done[i] = beams == 1 or running[i].max() / length**penalty <= finished[i][-1][0]
        if done.all():
            break
        prefixes = np.concatenate([prefixes[rows.reshape(-1)], tokens.reshape(-1, 1)], axis=1)
    outputs = []
    for i in range(count):
        if not done[i]:  # cut by max_new_tokens: the running beams compete as they are
            steps = prefixes.shape[1] - 1
            finished[i] += [(running[i, b] / steps**penalty, prefixes[i * beams + b]) for b in range(beams)]
        outputs.append(max(finished[i], key=lambda scored: scored[0])[1])
    return outputs


def output_text(tokenizer: Tokenizer, ids: np.ndarray, end: int) -> str:
    """A decoder's output as text: the tokens after its start token, up to its end token."""
    tokens = [int(i) for i in ids[1:]]
    return tokenizer.decode(tokens[: tokens.index(end)] if end in tokens else tokens)


@dataclass(frozen=True)
class PairSplit:
    """Tokenized pairs, each side ending with the end token, and their texts (BLEU's references)."""

    sources: list[np.ndarray]
    targets: list[np.ndarray]
    texts: list[tuple[str, str]]
    source_len: int  # every batch's padded lengths: the longest of the data, both splits
    target_len: int
    pad: int
    end: int
    start: int  # the decoder's first input
    tokenizer: Tokenizer

    def __len__(self) -> int:
        return len(self.sources)


@dataclass(frozen=True)
class Seq2SeqTask:
    """Sources of at most ``max_source_len`` tokens to targets of at most ``max_target_len`` (the end
    token included): what the model's positions hold. A longer side is refused, or with
    ``data.truncate`` cut to fit (its end token kept). ``start``: the decoder's start token, "pad"
    or "end" (a torch embedding with ``padding_idx`` never trains the pad row, where a Keras one
    does: a pair of such models agrees in training only when the decoder does not start on pad)."""

    max_source_len: int
    max_target_len: int
    start: str = "pad"

    def __post_init__(self) -> None:
        if self.start not in ("pad", "end"):
            raise ValueError(f"Seq2SeqTask.start must be 'pad' or 'end', received {self.start!r}")

    def splits(self, data: DataConfig) -> tuple[PairSplit, PairSplit]:
        if data.prepared:
            raise ValueError(
                f"data.prepared {data.prepared!r}: prepared directories hold token streams for language models; "
                "a sequence-to-sequence task reads its pairs from data.paths"
            )
        tokenizer = data_tokenizer(data)
        pad, end = seq2seq_ids(tokenizer)
        pairs = read_pairs(data)
        sides = []
        for side, limit, name in ((0, self.max_source_len, "source"), (1, self.max_target_len, "target")):
            texts = [pair[side] for pair in pairs]
            encoded = [np.append(ids.astype(np.int64), end) for ids in tokenizer.encode_batch(texts)]
            sides.append([self._fit(ids, limit, name, t, data.truncate) for ids, t in zip(encoded, texts, strict=True)])
        sources, targets = sides
        cut = int(len(pairs) * (1 - data.val_fraction))
        if cut == 0 or cut == len(pairs):
            raise ValueError(
                f"{len(pairs)} pairs are too few for data.val_fraction {data.val_fraction}: each split needs a pair"
            )
        lengths = max(map(len, sources)), max(map(len, targets))
        fixed = (*lengths, pad, end, pad if self.start == "pad" else end, tokenizer)
        return (
            PairSplit(sources[:cut], targets[:cut], pairs[:cut], *fixed),
            PairSplit(sources[cut:], targets[cut:], pairs[cut:], *fixed),
        )

    @staticmethod
    def _fit(ids: np.ndarray, limit: int, name: str, text: str, truncate: bool) -> np.ndarray:
        if len(ids) <= limit:
            return ids
        if truncate:
            return np.append(ids[: limit - 1], ids[-1])  # the end token stays last
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ValueError(
            f"a {name} of {len(ids)} tokens (its end token included) is longer than the model's {limit} positions: "
            f"{shown!r}; set data.truncate=true to cut such sides, or choose a model with more positions"
        )

    def source_inputs(self, split: PairSplit, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The encoder's inputs for pairs ``indices``: what decoding starts from."""
        input_ids, mask = padded([split.sources[int(i)] for i in indices], split.source_len, split.pad)  # (N, S)
        return {"input_ids": input_ids, "attention_mask": mask}

    def encode_sources(self, tokenizer: Tokenizer, texts: list[str], truncate: bool = False) -> dict[str, np.ndarray]:
        """The encoder's inputs for new source texts (`harness translate`), padded to the longest."""
        pad, end = seq2seq_ids(tokenizer)
        rows = [np.append(ids.astype(np.int64), end) for ids in tokenizer.encode_batch(texts)]
        rows = [
            self._fit(row, self.max_source_len, "source", text, truncate) for row, text in zip(rows, texts, strict=True)
        ]
        input_ids, mask = padded(rows, max(map(len, rows)), pad)
        return {"input_ids": input_ids, "attention_mask": mask}

    def batch(self, split: PairSplit, indices: np.ndarray, rng: np.random.Generator) -> Batch:
        targets, mask = padded([split.targets[int(i)] for i in indices], split.target_len, split.pad)  # (N, T)
        # The decoder reads the target shifted right: the start token, then all but its last token.
        decoder_input_ids = np.concatenate([np.full((len(indices), 1), split.start), targets[:, :-1]], axis=1)
        inputs = self.source_inputs(split, indices) | {"decoder_input_ids": decoder_input_ids}
        return Batch(inputs, targets, mask.astype(np.float32))  # padding weighs 0 in the loss

    def eval_metrics(self, mean_loss: float, accuracy: float) -> dict[str, float]:
        return {"val_loss": mean_loss, "val_token_accuracy": accuracy}

    def decode(
        self, predict: Callable[[dict[str, np.ndarray]], np.ndarray], inputs: dict[str, np.ndarray],
        decoding: Decoding, tokenizer: Tokenizer,
    ) -> list[np.ndarray]:  # fmt: skip
        """``beam_search`` from this task's start token to ``tokenizer``'s end token."""
        pad, end = seq2seq_ids(tokenizer)
        return beam_search(predict, inputs, pad if self.start == "pad" else end, end, decoding)

    def decoded_metrics(
        self, predict: Callable[[dict[str, np.ndarray]], np.ndarray], split: PairSplit, count: int, config: EvalConfig
    ) -> dict[str, float]:
        """BLEU and chrF (sacrebleu's defaults) of the first ``count`` pairs' sources decoded by beam
        search, against their target texts."""
        import sacrebleu

        decoding = Decoding(config.num_beams, config.length_penalty, self.max_target_len)
        hypotheses = []
        for first in range(0, count, config.batch_size):
            inputs = self.source_inputs(split, np.arange(first, min(first + config.batch_size, count)))
            for ids in self.decode(predict, inputs, decoding, split.tokenizer):
                hypotheses.append(output_text(split.tokenizer, ids, split.end))
        references = [target for _, target in split.texts[:count]]
        return {
            "val_bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score,
            "val_chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score,
        }
