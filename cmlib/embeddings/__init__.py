"""Word embeddings (词嵌入): count-based, matrix factorisation and neural, plus evaluation.

The three families of the article's §2.2.1.1, each trained on a real corpus:

* count-based (基于频次) and matrix factorisation (基于矩阵分解) —
  :mod:`~cmlib.embeddings.counting`: co-occurrences, PPMI and SVD;
* neural (基于神经网络) — :mod:`~cmlib.embeddings.word2vec` (skip-gram with negative sampling)
  and :mod:`~cmlib.embeddings.glove` (GloVe's weighted least squares);
* all of them end as :class:`WordVectors` — :mod:`~cmlib.embeddings.vectors`, with the
  benchmarks and the pretrained GloVe 6B.

Every public name is importable from here (``from cmlib import embeddings as emb``).
"""

from .counting import EncodedCorpus, cooccurrence, encode_corpus, ppmi, svd_embeddings
from .glove import GloVe, glove_weight, train_glove
from .vectors import (
    Score,
    WordVectors,
    evaluate_analogies,
    evaluate_similarity,
    load_glove_6b_50d,
    top_k_cosine,
)
from .word2vec import (
    NOISE_TABLE_SIZE,
    SkipGram,
    keep_probability,
    negative_sampling_loss,
    noise_distribution,
    skipgram_pairs,
    train_skipgram,
)

__all__ = [
    "NOISE_TABLE_SIZE",
    "EncodedCorpus",
    "GloVe",
    "Score",
    "SkipGram",
    "WordVectors",
    "cooccurrence",
    "encode_corpus",
    "evaluate_analogies",
    "evaluate_similarity",
    "glove_weight",
    "keep_probability",
    "load_glove_6b_50d",
    "negative_sampling_loss",
    "noise_distribution",
    "ppmi",
    "skipgram_pairs",
    "svd_embeddings",
    "top_k_cosine",
    "train_glove",
    "train_skipgram",
]
