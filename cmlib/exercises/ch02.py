"""Chapter 02 exercises: PPMI, the negative-sampling loss, cosine nearest neighbours, and one
LSTM step (2.6, a build exercise: the chapter trains an LSTM built on it, and its gradients are
checked); 2.4, 2.5, 2.7 and 2.8 are predict-then-run questions (cmlib's skip-gram against
gensim's; MiniLM's nearest sentence; queen in king − man + woman; the bag of embeddings on word
order), each backed by a learning checkpoint of the chapter."""

from __future__ import annotations

import numpy as np
import torch

from ..embeddings import negative_sampling_loss, ppmi, top_k_cosine
from ..sequence import lstm_step
from . import Exercise, register, register_prediction


def _counts(rng: np.random.Generator) -> tuple[np.ndarray]:
    counts = rng.integers(0, 6, size=(int(rng.integers(4, 8)), int(rng.integers(4, 9))))
    counts[0, 0] += 1  # never all zeros
    return (counts.astype(np.float64),)


def _pmi_unclipped(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(counts * total / (counts.sum(1, keepdims=True) * counts.sum(0, keepdims=True)))
    return np.where(np.isfinite(pmi), pmi, 0.0)


def _ppmi_conditional(counts: np.ndarray) -> np.ndarray:
    """A mistake: log P(c | w) instead of log P(w, c) / (P(w) P(c))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(counts / counts.sum(1, keepdims=True))
    return np.where(np.isfinite(out) & (out > 0), out, 0.0)


register(
    Exercise(
        id="2.1",
        title="PPMI from a count matrix",
        hint="P(w,c) = C/C.sum(), P(w) = row sums / total, P(c) = column sums / total; "
        "PMI = log(P(w,c) / (P(w) P(c))); keep max(PMI, 0) and put 0 where the count is 0",
        reference=lambda counts: ppmi(counts),
        make_inputs=_counts,
        wrong_answers=(_pmi_unclipped, _ppmi_conditional),
        trials=10,
    )
)


def _sgns_inputs(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    b, k, d = int(rng.integers(2, 6)), int(rng.integers(2, 6)), int(rng.integers(3, 8))
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    return (
        torch.randn(b, d, generator=gen),
        torch.randn(b, d, generator=gen),
        torch.randn(b, k, d, generator=gen),
    )


def _sgns_wrong_sign(center, context, negatives):
    positive = torch.nn.functional.logsigmoid((center * context).sum(-1))
    negative = torch.nn.functional.logsigmoid((negatives * center[:, None]).sum(-1)).sum(-1)
    return -(positive + negative).mean()


def _sgns_sum(center, context, negatives):
    return negative_sampling_loss(center, context, negatives) * center.shape[0]


register(
    Exercise(
        id="2.2",
        title="the negative-sampling loss",
        hint="−log σ(u_o·v_c) − Σ_k log σ(−u_k·v_c), averaged over the batch; "
        "use torch.nn.functional.logsigmoid and (negatives * center[:, None]).sum(-1)",
        reference=negative_sampling_loss,
        make_inputs=_sgns_inputs,
        wrong_answers=(_sgns_wrong_sign, _sgns_sum),
        trials=5,
    )
)


def _nn_inputs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    v, d = int(rng.integers(10, 30)), int(rng.integers(3, 8))
    matrix = rng.normal(size=(v, d)) * rng.uniform(0.1, 3.0, size=(v, 1))  # varied lengths
    return rng.normal(size=d), matrix, int(rng.integers(1, 5))


def _nearest_dot(query, matrix, k):
    return np.argsort(-(matrix @ query))[:k]


def _nearest_ascending(query, matrix, k):
    return top_k_cosine(query[None], matrix, k)[0][::-1].copy()


register(
    Exercise(
        id="2.3",
        title="cosine nearest neighbours",
        hint="divide the query and every row by their norms, take the dot products, "
        "and return the indices of the k largest, best first (np.argsort(-scores)[:k])",
        reference=lambda query, matrix, k: top_k_cosine(query[None], matrix, k)[0],
        make_inputs=_nn_inputs,
        wrong_answers=(_nearest_dot, _nearest_ascending),
        trials=10,
    )
)


# ---------------------------------------------------------------- 2.4, 2.5 predict, then run
register_prediction(
    "2.4",
    "cmlib's skip-gram against gensim's word2vec on WordSim-353 (Spearman)",
    {
        "a": "within 0.05 of gensim's",
        "b": "lower than gensim's by more than 0.05",
        "c": "higher than gensim's by more than 0.05",
    },
    "a",  # backed by the checkpoint skipgram-vs-gensim-gap (<= 0.05)
)
register_prediction(
    "2.5",
    "which sentence MiniLM puts closest to 'a photo of a cat'",
    {
        "a": "'a picture of a kitten', which shares no content word with it",
        "b": "'a red circle left of a blue square', which shares its 'a ... of a' pattern",
        "c": "'a recipe for tomato soup', another everyday phrase",
    },
    "a",  # backed by the checkpoint minilm-paraphrase-closest
)
register_prediction(
    "2.7",
    "where 'queen' ranks among the words nearest king − man + woman in GloVe 6B",
    {"a": "among the first three", "b": "4th to 20th", "c": "not in the first 20"},
    "a",  # backed by the checkpoint glove-queen-rank (<= 3)
)


# ---------------------------------------------------------------- 2.6 one LSTM step
def _step_inputs(rng: np.random.Generator, batch: int | None = None) -> tuple[torch.Tensor, ...]:
    """A batch (of 1 now and then) of inputs and states, and an LSTM cell's weights."""
    b = batch if batch is not None else int(rng.choice([1, 3]))
    f, h = int(rng.integers(2, 6)), int(rng.integers(2, 5))
    t = lambda *s: torch.from_numpy(rng.normal(size=s)).float()  # noqa: E731
    return t(b, f), t(b, h), t(b, h), t(4 * h, f), t(4 * h, h), t(4 * h)


def _sigmoid_gates(x, h, c, w_ih, w_hh, bias):
    gates = x @ w_ih.T + h @ w_hh.T + bias
    return gates.chunk(4, dim=1)


def _gates_i_f_o_g(x, h, c, w_ih, w_hh, bias):  # another library's gate order
    i, f, o, g = _sigmoid_gates(x, h, c, w_ih, w_hh, bias)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _no_forget_gate(x, h, c, w_ih, w_hh, bias):  # the old cell state is dropped, not gated
    i, f, g, o = _sigmoid_gates(x, h, c, w_ih, w_hh, bias)
    c = torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _old_cell_in_output(x, h, c, w_ih, w_hh, bias):  # h' from c, not from the new c'
    i, f, g, o = _sigmoid_gates(x, h, c, w_ih, w_hh, bias)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c_next


def _detached_state(x, h, c, w_ih, w_hh, bias):  # right values; no gradient through time
    return lstm_step(x, h.detach(), c.detach(), w_ih, w_hh, bias)


#: The mistakes exercise 2.6's check must reject, by name (the tests use the names).
LSTM_STEP_MISTAKES = {
    "gates in the order i, f, o, g": _gates_i_f_o_g,
    "no forget gate": _no_forget_gate,
    "h from the old cell state": _old_cell_in_output,
    "the previous states detached": _detached_state,
}

register(
    Exercise(
        id="2.6",
        title="one LSTM step",
        hint="one product gives all four gates: x @ weight_ih.T + h @ weight_hh.T + bias, split "
        "with .chunk(4, dim=1) in the order input, forget, candidate, output; then "
        "c = σ(f)·c + σ(i)·tanh(g) and h = σ(o)·tanh(c), with the new c",
        reference=lstm_step,
        make_inputs=_step_inputs,
        wrong_answers=tuple(LSTM_STEP_MISTAKES.values()),
        cases=(_step_inputs(np.random.default_rng(1), batch=1),),  # always a batch of one
        gradients=True,
    )
)
register_prediction(
    "2.8",
    "the bag of embeddings' validation accuracy on the left-object task",
    {"a": "at most 0.65", "b": "between 0.65 and 0.95", "c": "0.95 or more"},
    "a",  # backed by the checkpoint bag-of-embeddings-order (<= 0.65)
)
