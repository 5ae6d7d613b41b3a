"""Count-based word embeddings (基于频次 / 基于矩阵分解): co-occurrences, PPMI and SVD.

A corpus becomes integer ids (:func:`encode_corpus`); word–context co-occurrence counts
within a window (:func:`cooccurrence`) become positive pointwise mutual information
(:func:`ppmi`), and a truncated SVD of that (:func:`svd_embeddings`) gives dense vectors.
Words dropped by ``min_count`` are removed from the corpus before windows are taken, as in
word2vec.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


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


def encode_corpus(
    sentences: Sequence[Sequence[str]], min_count: int = 5, max_vocab: int | None = None
) -> EncodedCorpus:
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
        raise TypeError(
            "encode_corpus expects tokenised sentences (a list of lists of words), "
            "not strings; use cmlib.text.tokenize first"
        )
    if not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be a positive int, got {min_count!r}")
    counts = Counter(w for s in sentences for w in s)
    if not counts:
        raise ValueError("the corpus is empty: no sentences or no tokens")
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    kept = kept[:max_vocab] if max_vocab else kept
    if not kept:
        raise ValueError(
            f"no word occurs at least min_count={min_count} times "
            f"(the corpus has {sum(counts.values())} tokens)"
        )
    index = {w: i for i, w in enumerate(kept)}
    ids, sentence = [], []
    for n, s in enumerate(sentences):
        row = [index[w] for w in s if w in index]
        ids += row
        sentence += [n] * len(row)
    return EncodedCorpus(
        kept,
        np.array([counts[w] for w in kept], dtype=np.int64),
        np.array(ids, dtype=np.int64),
        np.array(sentence, dtype=np.int64),
    )


# ---------------------------------------------------------------- count-based and SVD
def cooccurrence(
    corpus: EncodedCorpus, window: int = 5, weighting: str = "uniform"
) -> sp.csr_matrix:
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
    matrix = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(v, v)
    )
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
        coo = sp.coo_matrix(
            (coo.data[coo.data > 0], (coo.row[coo.data > 0], coo.col[coo.data > 0]))
        )
        # P(w,c) / (P(w) P(c)) = C(w,c) · Σ_c C(c)^α / (C(w) · C(c)^α); the total cancels
        pmi = np.log(coo.data * col.sum() / (row[coo.row] * col[coo.col]))
        keep = pmi > 0
        return sp.csr_matrix(
            (pmi[keep].astype(np.float32), (coo.row[keep], coo.col[keep])), shape=counts.shape
        )
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
    return (u * s**eigen_power).astype(np.float32)
