"""Nearest-neighbour search: an exact index, an approximate one, and what each costs.

* :class:`ExactIndex` — exact search by inner product: one matrix product, then ``topk``;
* :func:`exact_search_cost` — its seconds per query as the gallery grows (linear);
* :func:`faiss_tradeoff` — faiss's exact flat index against its HNSW graph: recall for speed;
* :func:`recall_against_exact` and :func:`random_unit_vectors` — the yardstick and the test data.

Chapter 07, section 7, and ``benchmarks/bench_indexing.py`` use them.

Bad input: ``k < 1`` raises ``ValueError``. A ``k`` larger than the gallery is **clamped to
the gallery size with a** ``UserWarning`` (a search box over a small gallery should still
answer).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .validate import check_int, check_tensor


def check_k(k: int, gallery_size: int) -> int:
    """``k`` clamped to ``gallery_size`` with a warning; ``ValueError`` if ``k < 1``."""
    check_int("k", k)
    if gallery_size < 1:
        raise ValueError("the gallery is empty: nothing to search")
    if k > gallery_size:
        warnings.warn(
            f"k={k} is larger than the gallery ({gallery_size} items); "
            f"returning all {gallery_size}",
            UserWarning,
            stacklevel=3,
        )
        return gallery_size
    return k


class ExactIndex:
    """Exact nearest-neighbour search by inner product: one matrix product, then ``topk``.

    Args:
        vectors: ``(N, D)`` gallery embeddings.
        normalize: L2-normalise gallery and queries, so scores are cosines.
        device: where the matrix product runs (default: the vectors' device).
        chunk_size: queries per matrix product (bounds memory for big galleries).
    """

    def __init__(
        self,
        vectors: torch.Tensor,
        normalize: bool = True,
        device: torch.device | str | None = None,
        chunk_size: int = 1024,
    ):
        check_tensor("vectors", vectors, ("N", "D"), floating=True)
        if len(vectors) == 0:
            raise ValueError("cannot index an empty gallery")
        self.normalize, self.chunk_size = normalize, chunk_size
        vectors = vectors.to(device) if device is not None else vectors
        self.vectors = F.normalize(vectors, dim=1) if normalize else vectors

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @torch.no_grad()
    def search(self, queries: torch.Tensor, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` best gallery items for each query.

        Args:
            queries: ``(Q, D)`` or one ``(D,)`` vector.
            k: how many results; more than the gallery is clamped with a ``UserWarning``.

        Returns:
            ``(scores, indices)``, each ``(Q, k)``, best first.
        """
        if isinstance(queries, torch.Tensor) and queries.ndim == 1:
            queries = queries[None]
        check_tensor("queries", queries, ("N", self.dim), floating=True)
        if len(queries) == 0:
            raise ValueError("no queries to search (0 rows)")
        k = check_k(k, len(self))
        queries = queries.to(self.vectors.device, self.vectors.dtype)
        if self.normalize:
            queries = F.normalize(queries, dim=1)
        scores, indices = [], []
        for start in range(0, len(queries), self.chunk_size):
            s, i = torch.topk(queries[start : start + self.chunk_size] @ self.vectors.T, k, dim=1)
            scores.append(s)
            indices.append(i)
        return torch.cat(scores), torch.cat(indices)


def random_unit_vectors(
    n: int, dim: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``(n, dim)`` float32 vectors drawn uniformly on the unit sphere (with a CPU ``generator``,
    then moved to ``device``)."""
    if n < 1 or dim < 1:
        raise ValueError(f"n and dim must be positive, got {n} and {dim}")
    x = torch.randn(n, dim, generator=generator).to(device)  # drawn where the generator lives
    return F.normalize(x, dim=1)


def exact_search_cost(
    sizes: Sequence[int],
    dim: int = 128,
    num_queries: int = 64,
    k: int = 10,
    device: torch.device | str = "cpu",
    repeats: int = 3,
    seed: int = 0,
) -> dict[int, float]:
    """Seconds per query of :class:`ExactIndex` on random unit vectors, for each gallery size.

    The best of ``repeats`` timings is kept (the least disturbed by other work).
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    queries = random_unit_vectors(num_queries, dim, generator).to(device)
    out = {}
    for n in sizes:
        index = ExactIndex(random_unit_vectors(n, dim, generator).to(device), normalize=False)
        best = float("inf")
        for _ in range(repeats):
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            index.search(queries, k)
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        out[int(n)] = best / num_queries
        del index
    return out


def recall_against_exact(approx_indices: torch.Tensor, exact_indices: torch.Tensor) -> float:
    """Recall@k of an approximate search: the share of the exact top-k it also returns."""
    approx, exact = torch.as_tensor(approx_indices), torch.as_tensor(exact_indices)
    if approx.shape != exact.shape or approx.ndim != 2:
        raise ValueError(
            f"expected two (Q, k) index tensors, got {tuple(approx.shape)} and {tuple(exact.shape)}"
        )
    hits = (approx[:, :, None] == exact[:, None, :]).any(dim=2).sum()
    return hits.item() / exact.numel()


def faiss_tradeoff(
    vectors: torch.Tensor,
    queries: torch.Tensor,
    k: int = 10,
    ef_search: Sequence[int] = (16, 32, 64, 128),
    hnsw_m: int = 32,
    ef_construction: int = 40,
) -> list[dict]:
    """Exact (faiss ``IndexFlatIP``) against approximate (``IndexHNSWFlat``) search.

    Args:
        vectors: ``(N, D)`` unit gallery vectors.
        queries: ``(Q, D)`` unit queries.
        k: results per query.
        ef_search: HNSW's search breadth values to try (bigger: slower, more accurate).
        hnsw_m: HNSW's links per node.
        ef_construction: HNSW's build breadth.

    Returns:
        One row per index: ``{"index", "recall@k", "queries_per_s", "build_s"}``; the flat
        index's recall is 1 by definition (it is the reference).
    """
    import faiss

    check_tensor("vectors", vectors, ("N", "D"), floating=True)
    check_tensor("queries", queries, ("N", vectors.shape[1]), floating=True)
    k = check_k(k, len(vectors))
    x = np.ascontiguousarray(vectors.detach().cpu().numpy(), dtype=np.float32)
    q = np.ascontiguousarray(queries.detach().cpu().numpy(), dtype=np.float32)
    rows = []
    start = time.perf_counter()
    flat = faiss.IndexFlatIP(x.shape[1])
    flat.add(x)
    build = time.perf_counter() - start
    start = time.perf_counter()
    _, exact = flat.search(q, k)
    seconds = time.perf_counter() - start
    rows.append(
        {
            "index": "flat (exact)",
            "recall@k": 1.0,
            "queries_per_s": len(q) / seconds,
            "build_s": build,
        }
    )
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(x.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = ef_construction
    hnsw.add(x)
    build = time.perf_counter() - start
    for ef in ef_search:
        hnsw.hnsw.efSearch = int(ef)
        start = time.perf_counter()
        _, approx = hnsw.search(q, k)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "index": f"HNSW M={hnsw_m} efSearch={ef}",
                "recall@k": recall_against_exact(torch.from_numpy(approx), torch.from_numpy(exact)),
                "queries_per_s": len(q) / seconds,
                "build_s": build,
            }
        )
    return rows
