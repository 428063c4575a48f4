"""The sequence-to-sequence task: a target sequence from a source sequence (translation).

Pairs (harness/data/pairs.py) are tokenized with the one shared tokenizer of ``data.tokenizer``,
which must have a pad and an end token (harness/data/tokenizer.py), when the run starts, or once by
``harness prepare --pairs`` (harness/data/prepared.py; read through memory maps, the same pairs in
the same order): each side ends with the end token;
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
from harness.data.prepared import SIDES, PreparedData, TokenView, pair_split_point
from harness.data.tokenizer import Tokenizer, seq2seq_ids


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
class Side:
    """One side of the pairs: every pair's token ids (its end token not stored) one after another, in
    memory or memory-mapped prepared shards, and where each pair starts."""

    tokens: np.ndarray | TokenView  # (total,)
    offsets: np.ndarray  # (pairs + 1,) int64: pair i is tokens[offsets[i]:offsets[i + 1]]

    @staticmethod
    def of(rows: list[np.ndarray]) -> Side:
        """``rows`` (at least one) in memory."""
        return Side(np.concatenate(rows), np.concatenate([[0], np.cumsum([len(row) for row in rows])]).astype(np.int64))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def part(self, start: int, stop: int) -> Side:
        """Pairs ``start:stop``."""
        return Side(self.tokens, self.offsets[start : stop + 1])

    def lengths(self) -> np.ndarray:
        """(pairs,) each pair's token count."""
        return np.diff(self.offsets)

    def ids(self, i: int) -> np.ndarray:
        return self.tokens[np.arange(self.offsets[i], self.offsets[i + 1])]

    def rows(self, indices: np.ndarray, length: int, limit: int, end: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
        """Pairs ``indices`` as (N, length) int64 rows: each pair's ids (its first ``limit - 1`` when
        longer), the end token, then ``pad``; and their mask (1 on a row's tokens, 0 on its padding)."""
        indices = np.asarray(indices, np.int64)
        starts = self.offsets[indices]  # (N,)
        kept = np.minimum(self.offsets[indices + 1] - starts, limit - 1)  # (N,) ids before the end token
        positions = np.arange(length)
        inside = positions < kept[:, None]  # (N, length)
        ids = np.full((len(indices), length), pad, np.int64)
        ids[inside] = self.tokens[(starts[:, None] + positions)[inside]]
        ids[np.arange(len(indices)), kept] = end
        return ids, (positions <= kept[:, None]).astype(np.int64)


@dataclass(frozen=True)
class PairSplit:
    """Tokenized pairs, a side each, and what every batch of them shares."""

    sources: Side
    targets: Side
    texts: list[tuple[str, str]]  # a validation split's texts (BLEU's references); none for a training split
    source_len: int  # every batch's padded lengths: the longest of the data (end tokens included), both splits
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
            sources, targets, val_texts = self._prepared(data)
        tokenizer = data_tokenizer(data)
        pad, end = seq2seq_ids(tokenizer)
        if not data.prepared:
            texts = read_pairs(data)
            sources, targets = (Side.of(tokenizer.encode_batch([pair[i] for pair in texts])) for i in (0, 1))
            val_texts = texts[pair_split_point(len(texts), data.val_fraction) :]
        cut = pair_split_point(len(sources), data.val_fraction)
        limits = {"source": (sources, self.max_source_len), "target": (targets, self.max_target_len)}
        lengths = [
            self._fitted_length(side, limit, name, tokenizer, data.truncate) for name, (side, limit) in limits.items()
        ]
        fixed = (*lengths, pad, end, pad if self.start == "pad" else end, tokenizer)
        return (
            PairSplit(sources.part(0, cut), targets.part(0, cut), [], *fixed),
            PairSplit(sources.part(cut, len(sources)), targets.part(cut, len(sources)), val_texts, *fixed),
        )

    @staticmethod
    def _prepared(data: DataConfig) -> tuple[Side, Side, list[tuple[str, str]]]:
        """Both sides of ``data.prepared``, memory-mapped, and the validation pairs' texts."""
        prepared = PreparedData(data.prepared)
        if not prepared.pairs:
            raise ValueError(
                f"data.prepared {data.prepared!r} holds a token stream for a language model; a sequence-to-sequence "
                "task reads pairs prepared with `harness prepare --pairs`"
            )
        prepared.check_split(data.val_fraction)
        sources, targets = (Side(prepared.tokens(side), prepared.offsets(side)) for side in SIDES)
        return sources, targets, prepared.validation_texts()

    @staticmethod
    def _fitted_length(side: Side, limit: int, name: str, tokenizer: Tokenizer, truncate: bool) -> int:
        """The longest pair of ``side`` with its end token, at most ``limit``; ``ValueError`` naming the
        first longer one unless ``truncate``."""
        lengths = side.lengths() + 1
        longer = np.flatnonzero(lengths > limit)
        if len(longer) and not truncate:
            text = tokenizer.decode(side.ids(longer[0]))
            shown = text if len(text) <= 40 else text[:40] + "..."
            raise ValueError(
                f"a {name} of {lengths[longer[0]]} tokens (its end token included) is longer than the model's {limit} "
                f"positions: {shown!r}; set data.truncate=true to cut such sides, or choose a model with more positions"
            )
        return int(min(lengths.max(), limit))

    def source_inputs(self, split: PairSplit, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The encoder's inputs for pairs ``indices``: what decoding starts from."""
        input_ids, mask = split.sources.rows(indices, split.source_len, self.max_source_len, split.end, split.pad)
        return {"input_ids": input_ids, "attention_mask": mask}  # (N, S)

    def encode_sources(self, tokenizer: Tokenizer, texts: list[str], truncate: bool = False) -> dict[str, np.ndarray]:
        """The encoder's inputs for new source texts (`harness translate`), padded to the longest."""
        pad, end = seq2seq_ids(tokenizer)
        sources = Side.of(tokenizer.encode_batch(texts))
        length = self._fitted_length(sources, self.max_source_len, "source", tokenizer, truncate)
        input_ids, mask = sources.rows(np.arange(len(texts)), length, self.max_source_len, end, pad)
        return {"input_ids": input_ids, "attention_mask": mask}

    def batch(self, split: PairSplit, indices: np.ndarray, rng: np.random.Generator) -> Batch:
        targets, mask = split.targets.rows(indices, split.target_len, self.max_target_len, split.end, split.pad)
        # The decoder reads the target (N, T) shifted right: the start token, then all but its last token.
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
