"""Word embeddings: PPMI, SVD, skip-gram, GloVe, evaluation, pretrained GloVe, errata."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from cmlib import embeddings as emb

SENTENCES = [
    ["the", "cat", "sat", "on", "the", "mat"],
    ["the", "dog", "sat", "on", "the", "rug"],
    ["a", "cat", "and", "a", "dog"],
] * 30


@pytest.fixture(scope="module")
def small():
    return emb.encode_corpus(SENTENCES, min_count=1)


def test_encode_corpus_counts_and_keeps_sentences(small):
    assert small.words[0] == "the" and small.counts[0] == 120
    assert len(small) == sum(len(s) for s in SENTENCES)
    assert small.sentence.max() == len(SENTENCES) - 1


def test_empty_corpus_and_strings_are_rejected():
    for bad in ([], [[]], [[], []]):
        with pytest.raises(ValueError, match="empty"):
            emb.encode_corpus(bad)
    with pytest.raises(TypeError, match="tokenised"):
        emb.encode_corpus(["the cat sat"])
    with pytest.raises(ValueError, match="min_count"):
        emb.encode_corpus([["rare"]], min_count=2)


def test_cooccurrence_is_symmetric_and_stays_inside_sentences():
    corpus = emb.encode_corpus([["a", "b"], ["c", "d"]], min_count=1)
    counts = emb.cooccurrence(corpus, window=5).toarray()
    assert np.allclose(counts, counts.T)
    i = {w: k for k, w in enumerate(corpus.words)}
    assert counts[i["a"], i["b"]] == 1 and counts[i["b"], i["c"]] == 0
    harmonic = emb.cooccurrence(emb.encode_corpus([["a", "x", "b"]], min_count=1), 2, "harmonic")
    assert harmonic.max() == 1.0 and harmonic.min() == 0.0 and 0.5 in harmonic.toarray()


def test_ppmi_dense_matches_the_formula_and_sparse_agrees():
    counts = np.array([[0, 4, 1], [4, 0, 1], [1, 1, 8.0]])
    total = counts.sum()
    expected = np.log(4 / total / (counts[0].sum() / total * counts[:, 1].sum() / total))
    dense = emb.ppmi(counts)
    assert dense[0, 1] == pytest.approx(expected) and dense[0, 0] == 0 and (dense >= 0).all()
    assert np.allclose(emb.ppmi(sp.csr_matrix(counts)).toarray(), dense, atol=1e-6)
    smoothed = emb.ppmi(sp.csr_matrix(counts), context_smoothing=0.75).toarray()
    assert np.allclose(smoothed, emb.ppmi(counts, context_smoothing=0.75), atol=1e-6)
    with pytest.raises(ValueError, match="non-negative"):
        emb.ppmi(-counts)
    with pytest.raises(ValueError, match="2-D"):
        emb.ppmi(np.ones(3))


def test_svd_embeddings_shape_and_bad_dim(small):
    matrix = emb.ppmi(emb.cooccurrence(small, 2))
    assert emb.svd_embeddings(matrix, dim=3).shape == (small.vocab_size, 3)
    with pytest.raises(ValueError, match="dim"):
        emb.svd_embeddings(matrix, dim=small.vocab_size)


def test_word_vectors_neighbours_analogy_and_unknown_words():
    words = ["king", "queen", "man", "woman", "apple"]
    vecs = np.array([[1, 1, 0], [1, -1, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1.0]])
    table = emb.WordVectors(words, vecs)
    assert table.neighbours("king", 1)[0][0] in {"man", "queen"}
    assert "king" not in [w for w, _ in table.neighbours("king", 4)]
    assert table.analogy("man", "king", "woman", k=1)[0][0] == "queen"
    assert table.similarity("king", "king") == pytest.approx(1.0)
    with pytest.raises(KeyError, match="'prince'"):
        table["prince"]
    sparse = emb.WordVectors(words, sp.csr_matrix(vecs))
    assert sparse.similarity("king", "man") == pytest.approx(table.similarity("king", "man"))
    with pytest.raises(ValueError, match="shape"):
        emb.WordVectors(words, vecs[:3])


def test_top_k_cosine_ignores_vector_length():
    matrix = np.array([[10.0, 0], [0.1, 0.1], [-1, 0]])
    assert emb.top_k_cosine(np.array([1.0, 1.0]), matrix, 2)[0].tolist() == [1, 0]
    with pytest.raises(ValueError, match="k must"):
        emb.top_k_cosine(np.ones(2), matrix, 4)


def test_negative_sampling_loss_value_and_shapes():
    center, context = torch.tensor([[1.0, 0]]), torch.tensor([[2.0, 0]])
    negatives = torch.tensor([[[-1.0, 0], [0, 3.0]]])
    expected = -(np.log(1 / (1 + np.exp(-2))) + np.log(1 / (1 + np.exp(-1))) + np.log(0.5))
    assert emb.negative_sampling_loss(center, context, negatives).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="negatives"):
        emb.negative_sampling_loss(center, context, negatives[0])


def test_sgd_step_equals_autograd_gradient():
    torch.manual_seed(0)
    model = emb.SkipGram(20, 6)
    torch.nn.init.normal_(model.context.weight, std=0.3)
    center, context = torch.tensor([1, 2, 1]), torch.tensor([3, 4, 5])
    negatives = torch.tensor([[6, 7], [3, 8], [9, 1]])
    reference = emb.SkipGram(20, 6)
    reference.load_state_dict(model.state_dict())
    (reference(center, context, negatives) * len(center)).backward()
    before = [p.detach().clone() for p in model.parameters()]
    model.sgd_step(center, context, negatives, lr=0.1)
    for p0, p1, ref in zip(before, model.parameters(), reference.parameters()):
        assert torch.allclose(p1, p0 - 0.1 * ref.grad, atol=1e-6)
    with pytest.raises(ValueError, match="expected center"):
        model(center[:, None], context, negatives)


def test_skipgram_pairs_respect_window_and_sentences(small):
    rng = np.random.default_rng(0)
    centers, contexts = emb.skipgram_pairs(small, window=2, rng=rng, sample=0)
    assert len(centers) == len(contexts) > 0
    lone = emb.encode_corpus([["x"], ["y"]], min_count=1)
    c, _ = emb.skipgram_pairs(lone, window=3, rng=rng, sample=0)
    assert len(c) == 0  # one-word sentences have no context


def test_skipgram_pairs_in_text_order_are_the_same_pairs_by_their_centres_place(small):
    shuffled = emb.skipgram_pairs(small, window=3, rng=np.random.default_rng(4), sample=0)
    ordered = emb.skipgram_pairs(
        small, window=3, rng=np.random.default_rng(4), sample=0, shuffle=False
    )
    as_set = lambda pairs: sorted(zip(*(a.tolist() for a in pairs)))  # noqa: E731
    assert as_set(shuffled) == as_set(ordered)  # the same draws, another order
    # with sample=0 every word is kept: the first pairs have the corpus's first word as centre
    assert ordered[0][0] == small.ids[0]
    assert not np.array_equal(shuffled[0], ordered[0])


def test_train_skipgram_wants_a_bool_shuffle(small):
    with pytest.raises(TypeError, match="shuffle"):
        emb.train_skipgram(emb.SkipGram(small.vocab_size, 8), small, shuffle="no", progress=False)


def test_train_skipgram_lowers_the_loss(small):
    for optimizer, lr in (("sgd", 0.025), ("adam", 0.01)):
        model = emb.SkipGram(small.vocab_size, 8)
        history = emb.train_skipgram(
            model,
            small,
            window=2,
            num_epochs=4,
            batch_size=64,
            lr=lr,
            optimizer=optimizer,
            sample=0,
            progress=False,
        )
        assert history.train_loss[-1] < history.train_loss[0] and len(history.seconds) == 4
        assert len(history.steps["loss"]) > 4
        assert model.vectors().shape == (small.vocab_size, 8)
    with pytest.raises(ValueError, match="optimizer"):
        emb.train_skipgram(model, small, optimizer="rmsprop", progress=False)
    with pytest.raises(ValueError, match="num_epochs"):
        emb.train_skipgram(model, small, num_epochs=0, progress=False)
    with pytest.raises(ValueError, match="words"):
        emb.train_skipgram(emb.SkipGram(small.vocab_size + 1, 8), small, progress=False)
    with pytest.raises(TypeError, match="SkipGram"):
        emb.train_skipgram(emb.GloVe(small.vocab_size, 8), small, progress=False)


def test_glove_loss_and_training(small):
    model = emb.GloVe(5, 3)
    loss = model(torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([2.0, 150.0]))
    assert loss.ndim == 0 and loss.item() > 0
    assert emb.glove_weight(torch.tensor([50.0, 100.0, 400.0])).tolist() == pytest.approx(
        [0.5**0.75, 1.0, 1.0]
    )
    with pytest.raises(ValueError, match="non-zero"):
        model(torch.tensor([0]), torch.tensor([1]), torch.tensor([0.0]))
    counts = emb.cooccurrence(small, 2, "harmonic")
    glove = emb.GloVe(small.vocab_size, 4)
    history = emb.train_glove(glove, counts, num_epochs=15, batch_size=16, lr=0.1, progress=False)
    assert history.train_loss[-1] < history.train_loss[0]
    assert glove.vectors().shape == (small.vocab_size, 4)
    with pytest.raises(TypeError, match="sparse"):
        emb.train_glove(glove, counts.toarray())
    with pytest.raises(ValueError, match="co-occurrence matrix"):
        emb.train_glove(emb.GloVe(small.vocab_size + 2, 4), counts)


def test_evaluations_count_coverage():
    table = emb.WordVectors(
        ["a", "b", "c", "d"], np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 1.0]])
    )
    pairs = [("a", "b", 9.0), ("a", "c", 1.0), ("b", "d", 2.0), ("a", "zzz", 5.0)]
    score = emb.evaluate_similarity(table, pairs)
    assert score.covered == 3 and score.total == 4 and score.value == pytest.approx(1.0)
    analogies = emb.evaluate_analogies(table, [("a", "b", "c", "d"), ("a", "b", "c", "zzz")])
    assert analogies.covered == 1 and analogies.value == 1.0
    with pytest.raises(ValueError):
        emb.evaluate_similarity(table, [])


def test_glove_6b_loads_and_solves_king_queen():
    glove = emb.load_glove_6b_50d(max_words=50_000)
    assert len(glove) == 50_000 and glove.dim == 50 and glove.words[0] == "the"
    assert glove["the"][0] == pytest.approx(0.418, abs=1e-4)
    assert "queen" in [w for w, _ in glove.analogy("man", "king", "woman", k=3)]
    with pytest.raises(ValueError, match="max_words"):
        emb.load_glove_6b_50d(max_words=0)
