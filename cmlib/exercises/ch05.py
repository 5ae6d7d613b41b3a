"""Chapter 05 exercises, parts 1–3: the pieces of a captioner and of its evaluation, by hand.

5.1 the masked cross-entropy, 5.2 one step of additive attention, 5.3 a length-normalised beam
score, 5.4 clipped n-gram precision (BLEU's core; ``corpus_bleu_by_hand`` builds BLEU on it, and
a test checks that against sacrebleu), 5.6 scheduled sampling's step, which part 2 then trains
with, 5.11 the nearest-neighbour search part 3's retrieval captioner then runs with; 5.7 and 5.10
are predict-then-run questions (parts 2 and 3). Parts 4 and 5's exercises (5.5, 5.8, 5.9, 5.12)
are in :mod:`cmlib.exercises.ch05_images`, imported at the end of this module.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from ..captioning.evaluation import nearest_neighbours
from ..captioning.models import scheduled_sampling_inputs
from . import Exercise, register, register_prediction


# ---------------------------------------------------------------- 5.1 masked cross-entropy
def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Mean cross-entropy over the positions of ``targets`` that are not ``pad_id``."""
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    mask = (targets != pad_id).flatten().float()
    return (loss * mask).sum() / mask.sum()


def _padded_batch(rng: np.random.Generator):
    b, t, v = int(rng.integers(2, 5)), int(rng.integers(3, 7)), int(rng.integers(5, 9))
    logits = torch.from_numpy(rng.normal(size=(b, t, v))).float()
    targets = torch.from_numpy(rng.integers(1, v, size=(b, t)))
    for row in range(b):  # each caption ends somewhere, then padding
        targets[row, int(rng.integers(1, t + 1)) :] = 0
    return logits, targets, 0


register(
    Exercise(
        id="5.1",
        title="the masked cross-entropy",
        hint="cross_entropy with reduction='none', multiply by (targets != pad_id), and divide "
        "by the number of real tokens — not by B·T",
        reference=masked_cross_entropy,
        make_inputs=_padded_batch,
        wrong_answers=(
            lambda logits, targets, pad_id: F.cross_entropy(
                logits.flatten(0, 1), targets.flatten()
            ),  # counts the padding
            lambda logits, targets, pad_id: (
                F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
                .mul((targets != pad_id).flatten())
                .mean()
            ),  # divides by B·T
        ),
        trials=10,
    )
)


# ---------------------------------------------------------------- 5.2 additive attention
def additive_attention_step(
    query: torch.Tensor,
    regions: torch.Tensor,
    w_query: torch.Tensor,
    w_keys: torch.Tensor,
    v: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of Bahdanau attention, no biases.

    Args:
        query: ``(H,)`` the decoder state; regions: ``(N, C)``;
        w_query: ``(A, H)``; w_keys: ``(A, C)``; v: ``(A,)``.

    Returns:
        ``(context (C,), alpha (N,))`` with ``e_i = v · tanh(W_q q + W_k r_i)``,
        ``alpha = softmax(e)``, ``context = Σ alpha_i r_i``.
    """
    scores = torch.tanh(w_query @ query + regions @ w_keys.T) @ v
    alpha = torch.softmax(scores, dim=0)
    return alpha @ regions, alpha


def _attention_inputs(rng: np.random.Generator):
    h, n, c, a = (int(rng.integers(2, 6)) for _ in range(4))

    def t(*shape):
        return torch.from_numpy(rng.normal(size=shape)).float()

    return t(h), t(n, c), t(a, h), t(a, c), t(a)


def _attention_no_tanh(query, regions, w_query, w_keys, v):
    scores = (w_query @ query + regions @ w_keys.T) @ v
    alpha = torch.softmax(scores, dim=0)
    return alpha @ regions, alpha


def _attention_softmax_over_features(query, regions, w_query, w_keys, v):
    alpha = torch.softmax(torch.tanh(w_query @ query + regions @ w_keys.T) @ v, dim=0)
    return (regions * alpha[:, None]).mean(0), alpha  # averages instead of summing


register(
    Exercise(
        id="5.2",
        title="one step of additive attention",
        hint="scores = tanh(W_q q + W_k r_i) · v for every region i (broadcast W_q q over the "
        "rows of regions @ W_k.T); alpha = softmax over the regions; context = alpha @ regions",
        reference=additive_attention_step,
        make_inputs=_attention_inputs,
        wrong_answers=(_attention_no_tanh, _attention_softmax_over_features),
        trials=10,
    )
)


# ---------------------------------------------------------------- 5.3 beam score
def beam_score(token_log_probs: Sequence[float], length_penalty: float) -> float:
    """A finished caption's beam score: its total log-probability / length ** length_penalty."""
    return float(sum(token_log_probs)) / len(token_log_probs) ** length_penalty


def _beam_inputs(rng: np.random.Generator):
    n = int(rng.integers(1, 9))
    return list(np.log(rng.uniform(0.05, 1.0, size=n))), float(rng.choice([0.0, 0.5, 0.7, 1.0]))


register(
    Exercise(
        id="5.3",
        title="a length-normalised beam score",
        hint="add the tokens' log-probabilities (<eos> included), then divide by "
        "len(tokens) ** length_penalty; with length_penalty = 0 it is the plain sum",
        reference=beam_score,
        make_inputs=_beam_inputs,
        wrong_answers=(
            lambda lp, alpha: float(np.prod(np.exp(lp))) / len(lp) ** alpha,  # probabilities
            lambda lp, alpha: float(sum(lp)) / len(lp),  # ignores the penalty
        ),
        cases=(([-0.5, -0.25, -1.0], 0.0), ([-2.0], 1.0), ([-0.1, -0.2], 0.5)),
        trials=15,
    )
)


# ---------------------------------------------------------------- 5.4 clipped n-gram precision
def ngrams(words: Sequence[str], n: int) -> Counter:
    """The n-grams of ``words`` with their counts."""
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def clipped_ngram_counts(
    candidate: Sequence[str], references: Sequence[Sequence[str]], n: int
) -> tuple[int, int]:
    """BLEU's modified precision of one sentence, as ``(clipped matches, candidate n-grams)``.

    Each candidate n-gram counts at most as often as it appears in the reference that has it
    most often.
    """
    counts = ngrams(candidate, n)
    most = Counter()
    for reference in references:
        most |= ngrams(reference, n)
    return sum(min(c, most[g]) for g, c in counts.items()), sum(counts.values())


def _ngram_inputs(rng: np.random.Generator):
    words = ["the", "a", "red", "circle", "on", "left", "of"]

    def sentence():
        return [str(w) for w in rng.choice(words, size=int(rng.integers(2, 8)))]

    return sentence(), [sentence() for _ in range(int(rng.integers(1, 4)))], int(rng.integers(1, 4))


def _unclipped(candidate, references, n):
    counts = ngrams(candidate, n)
    seen = set().union(*(ngrams(r, n) for r in references))
    return sum(c for g, c in counts.items() if g in seen), sum(counts.values())


def _clipped_by_sum(candidate, references, n):
    counts, total = ngrams(candidate, n), Counter()
    for r in references:
        total += ngrams(r, n)  # adds the references instead of taking the max
    return sum(min(c, total[g]) for g, c in counts.items()), sum(counts.values())


register(
    Exercise(
        id="5.4",
        title="clipped n-gram precision",
        hint="count the candidate's n-grams; clip each count by its largest count in any one "
        "reference (Counter's | takes the max); return (clipped matches, candidate n-grams)",
        reference=clipped_ngram_counts,
        make_inputs=_ngram_inputs,
        wrong_answers=(_unclipped, _clipped_by_sum),
        cases=(
            (["the"] * 7, [["the", "cat", "is", "on", "the", "mat"]], 1),  # Papineni's example
            (["the", "the"], [["the", "a"], ["a", "the"]], 1),
        ),
        trials=20,
    )
)


# ---------------------------------------------------------------- 5.6 scheduled sampling's step
def _same_coins(rule):
    """``rule``, leaving its generator as it found it. :func:`~cmlib.exercises.check` calls the
    reference and then the answer with the same arguments: both must draw the same coins."""

    def replay(gold, predicted, sample_prob, generator):
        state = generator.get_state()
        try:
            return rule(gold, predicted, sample_prob, generator)
        finally:
            generator.set_state(state)

    return replay


def _sampling_inputs(rng: np.random.Generator):
    b, t, v = int(rng.integers(3, 7)), int(rng.integers(4, 9)), int(rng.integers(6, 20))
    gold = torch.from_numpy(rng.integers(3, v, size=(b, t)))
    gold[:, 0] = 1  # <bos>
    # every prediction differs from every gold token and from every other prediction, so that
    # a wrong choice of token shows whenever a coin says "feed the prediction"
    predicted = torch.from_numpy(v + rng.permutation(b * t).reshape(b, t))
    # not 0.5: there "p" and "1 - p" give the same coins; 1.0 feeds every prediction
    sample_prob = float(rng.choice([0.25, 0.3, 0.4, 0.6, 0.75, 1.0]))
    return gold, predicted, sample_prob, torch.Generator().manual_seed(int(rng.integers(2**31)))


def _one_minus_p(gold, predicted, sample_prob, generator):
    coin = torch.rand(gold.shape[0], gold.shape[1] - 1, generator=generator) < 1 - sample_prob
    return torch.cat([gold[:, :1], torch.where(coin, predicted[:, :-1], gold[:, 1:])], 1)


def _heads_feed_gold(gold, predicted, sample_prob, generator):
    coin = torch.rand(gold.shape[0], gold.shape[1] - 1, generator=generator) < sample_prob
    return torch.cat([gold[:, :1], torch.where(coin, gold[:, 1:], predicted[:, :-1])], 1)


def _current_prediction(gold, predicted, sample_prob, generator):
    coin = torch.rand(gold.shape[0], gold.shape[1] - 1, generator=generator) < sample_prob
    return torch.cat([gold[:, :1], torch.where(coin, predicted[:, 1:], gold[:, 1:])], 1)


def _global_generator(gold, predicted, sample_prob, generator):
    coin = torch.rand(gold.shape[0], gold.shape[1] - 1) < sample_prob  # not reproducible
    return torch.cat([gold[:, :1], torch.where(coin, predicted[:, :-1], gold[:, 1:])], 1)


def _coin_for_bos_too(gold, predicted, sample_prob, generator):
    coin = torch.rand(gold.shape, generator=generator)[:, 1:] < sample_prob
    return torch.cat([gold[:, :1], torch.where(coin, predicted[:, :-1], gold[:, 1:])], 1)


#: The mistakes exercise 5.6's check must reject, by name (the tests use the names).
SAMPLING_MISTAKES = {
    "coin with chance 1 - p": _one_minus_p,
    "heads feeds the gold token": _heads_feed_gold,
    "the current prediction, not the previous one": _current_prediction,
    "ignores the generator": _global_generator,
    "a coin for <bos> too": _coin_for_bos_too,
    "returns the gold tokens": lambda gold, predicted, sample_prob, generator: gold,
}

register(
    Exercise(
        id="5.6",
        title="scheduled sampling's step",
        hint="keep column 0 (<bos>); coin = torch.rand(B, T - 1, generator=generator) < "
        "sample_prob; where the coin is true feed predicted[:, :-1] (the step before's guess), "
        "else gold[:, 1:]; then put column 0 back in front",
        reference=_same_coins(scheduled_sampling_inputs),
        make_inputs=_sampling_inputs,
        wrong_answers=tuple(SAMPLING_MISTAKES.values()),
        trials=12,
    )
)


# ---------------------------------------------------------------- 5.11 nearest neighbours
def _retrieval_inputs(rng: np.random.Generator):
    b, n, d = int(rng.integers(3, 7)), int(rng.integers(8, 16)), int(rng.integers(4, 9))
    queries = torch.from_numpy(rng.normal(size=(b, d))).float()
    # keys of very different lengths: a dot product, or a distance, without normalising picks
    # other neighbours than the cosine does
    lengths = torch.from_numpy(rng.uniform(0.2, 5.0, size=(n, 1))).float()
    keys = torch.from_numpy(rng.normal(size=(n, d))).float() * lengths
    return queries, keys


def _dot_product(queries, keys):
    return (queries @ keys.T).argmax(1)


def _euclidean(queries, keys):
    return torch.cdist(queries, keys).argmin(1)


def _least_similar(queries, keys):
    return (F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).T).argmin(1)


def _normalised_over_the_batch(queries, keys):
    return (F.normalize(queries, dim=0) @ F.normalize(keys, dim=0).T).argmax(1)


#: The mistakes exercise 5.11's check must reject, by name (the tests use the names).
RETRIEVAL_MISTAKES = {
    "dot product, not cosine": _dot_product,
    "Euclidean distance without normalising": _euclidean,
    "argmin of the cosine": _least_similar,
    "normalised over the batch": _normalised_over_the_batch,
}

register(
    Exercise(
        id="5.11",
        title="the retrieval captioner's nearest neighbours",
        hint="normalise the rows of both (F.normalize(x, dim=1)), multiply queries by keys.T "
        "to get (B, N) cosine similarities, and take the argmax over the keys",
        reference=nearest_neighbours,
        make_inputs=_retrieval_inputs,
        wrong_answers=tuple(RETRIEVAL_MISTAKES.values()),
        trials=10,
    )
)


def corpus_bleu_by_hand(
    candidates: Sequence[str], references: Sequence[Sequence[str]], max_n: int = 4
) -> float:
    """Corpus BLEU (0–100) from :func:`clipped_ngram_counts`, as Papineni et al. define it.

    Clipped matches and n-gram counts are summed over the corpus for n = 1…4, their log
    precisions averaged, and a brevity penalty applied with each candidate's closest reference
    length. Words are split on spaces (sacrebleu's 13a tokeniser does the same on these
    lower-case, punctuation-free captions).
    """
    matches, totals = [0] * max_n, [0] * max_n
    cand_len = ref_len = 0
    for candidate, refs in zip(candidates, references):
        words, ref_words = candidate.split(), [r.split() for r in refs]
        cand_len += len(words)
        ref_len += min((abs(len(r) - len(words)), len(r)) for r in ref_words)[1]
        for n in range(1, max_n + 1):
            m, t = clipped_ngram_counts(words, ref_words, n)
            matches[n - 1] += m
            totals[n - 1] += t
    if min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    brevity = 1.0 if cand_len > ref_len else math.exp(1 - ref_len / cand_len)
    return 100 * brevity * math.exp(log_precision)


# ---------------------------------------------------------------- predict, then run
register_prediction(
    "5.7",
    "the teacher-forced captioner's token accuracy, fed its own words instead of the true ones",
    {
        "a": "higher than with the true words",
        "b": "the same",
        "c": "lower than with the true words",
    },
    "c",
)

register_prediction(
    "5.10",
    "the slot decoder's colour+shape accuracy on held-out pairs, on the recoloured backbone",
    {
        "a": "below chance (1 in 18), like the first slot decoder's",
        "b": "between chance and 3 × chance",
        "c": "at least 3 × chance",
    },
    "c",
)

# parts 4 and 5 (a prompt becomes an image): 5.5, 5.8, 5.9 and 5.12
from . import ch05_images  # noqa: E402, F401
