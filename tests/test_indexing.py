"""Tests for cmlib.indexing: exact search, the clamp on k, faiss's HNSW against flat."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cmlib.indexing import (
    ExactIndex,
    exact_search_cost,
    faiss_tradeoff,
    recall_against_exact,
)


def unit(n, d, seed=0):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


# ---------------------------------------------------------------- search
def test_exact_index_matches_brute_force():
    gallery, queries = unit(50, 16, 0), unit(7, 16, 1)
    scores, indices = ExactIndex(gallery).search(queries, k=5)
    expected = (queries @ gallery.T).argsort(dim=1, descending=True)[:, :5]
    assert torch.equal(indices, expected)
    assert torch.all(scores[:, :-1] >= scores[:, 1:])
    one_scores, one = ExactIndex(gallery, chunk_size=2).search(queries[0], k=3)
    assert one.shape == (1, 3) and torch.equal(one[0], expected[0, :3])


def test_k_larger_than_gallery_is_clamped_with_a_warning():
    index = ExactIndex(unit(4, 8))
    with pytest.warns(UserWarning, match="larger than the gallery"):
        scores, indices = index.search(unit(2, 8), k=10)
    assert indices.shape == (2, 4)
    with pytest.raises(ValueError, match="k must be an int >= 1, got 0"):
        index.search(unit(2, 8), k=0)
    with pytest.raises(ValueError, match="0 rows"):
        index.search(torch.zeros(0, 8), k=1)
    with pytest.raises(ValueError, match="expected queries \\(N, 8\\)"):
        index.search(unit(2, 5), k=1)
    with pytest.raises(ValueError, match="empty"):
        ExactIndex(torch.zeros(0, 8))


def test_recall_against_exact_and_search_cost():
    exact = torch.tensor([[0, 1, 2], [3, 4, 5]])
    assert recall_against_exact(torch.tensor([[2, 1, 9], [3, 4, 5]]), exact) == 5 / 6
    cost = exact_search_cost([100, 1000], dim=8, num_queries=4, repeats=1)
    assert set(cost) == {100, 1000} and all(v > 0 for v in cost.values())


def test_faiss_tradeoff_rows():
    pytest.importorskip("faiss")
    gallery, queries = unit(2000, 16, 0), unit(50, 16, 1)
    rows = faiss_tradeoff(gallery, queries, k=10, ef_search=(8, 256))
    assert rows[0]["index"].startswith("flat") and rows[0]["recall@k"] == 1.0
    assert 0.0 <= rows[1]["recall@k"] <= rows[2]["recall@k"] <= 1.0
    assert rows[2]["recall@k"] > 0.9  # a wide search on a small gallery is nearly exact
