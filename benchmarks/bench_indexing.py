"""Retrieval speed: exact torch search against faiss, on the same random unit vectors.

For each gallery size: queries per second of ``cmlib.indexing.ExactIndex`` (one matrix
product + ``topk``) and of faiss ``IndexFlatIP`` (exact), their ratio, and faiss HNSW's
recall@10 (against the exact top-10) and speed-up over the flat index at several
``efSearch`` values. Writes benchmarks/results/indexing.json.

    python benchmarks/bench_indexing.py            # 10k and 100k vectors, 128-d
    python benchmarks/bench_indexing.py --quick     # 10k only (about 20 s on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from timing import best_seconds

from cmlib import indexing

RESULTS = Path(__file__).resolve().parent / "results"


def run(size: int, dim: int, num_queries: int, k: int, ef_search: tuple[int, ...]) -> dict:
    import faiss

    gen = torch.Generator().manual_seed(0)
    gallery = indexing.random_unit_vectors(size, dim, gen)
    queries = indexing.random_unit_vectors(num_queries, dim, gen)
    index = indexing.ExactIndex(gallery, normalize=False)
    torch_s = best_seconds(lambda: index.search(queries, k))
    x, q = gallery.numpy(), np.ascontiguousarray(queries.numpy())
    flat = faiss.IndexFlatIP(dim)
    flat.add(x)
    flat_s = best_seconds(lambda: flat.search(q, k))
    _, exact = flat.search(q, k)
    _, torch_ids = index.search(queries, k)
    agree = indexing.recall_against_exact(torch_ids, torch.from_numpy(exact))
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 40
    hnsw.add(x)
    build_s = time.perf_counter() - start
    hnsw_rows = []
    for ef in ef_search:
        hnsw.hnsw.efSearch = ef
        seconds = best_seconds(lambda: hnsw.search(q, k))
        _, approx = hnsw.search(q, k)
        hnsw_rows.append(
            {
                "ef_search": ef,
                "recall_at_10": round(
                    indexing.recall_against_exact(
                        torch.from_numpy(approx), torch.from_numpy(exact)
                    ),
                    4,
                ),
                "queries_per_s": round(num_queries / seconds, 1),
                "speedup_over_flat": round(flat_s / seconds, 2),
            }
        )
    row = {
        "gallery_size": size,
        "dim": dim,
        "num_queries": num_queries,
        "k": k,
        "torch_exact_queries_per_s": round(num_queries / torch_s, 1),
        "faiss_flat_queries_per_s": round(num_queries / flat_s, 1),
        "torch_over_faiss_flat_qps_ratio": round(flat_s / torch_s, 3),
        "torch_faiss_top10_agreement": round(agree, 4),
        "hnsw_M": 32,
        "hnsw_ef_construction": 40,
        "hnsw_build_s": round(build_s, 2),
        "hnsw": hnsw_rows,
    }
    print(
        f"{size:>9,} vectors: torch {row['torch_exact_queries_per_s']:>10,.0f} q/s, "
        f"faiss flat {row['faiss_flat_queries_per_s']:>10,.0f} q/s "
        f"(ratio {row['torch_over_faiss_flat_qps_ratio']:.2f}); HNSW "
        + ", ".join(
            f"ef{r['ef_search']}: R@10 {r['recall_at_10']:.3f} x{r['speedup_over_flat']:.1f}"
            for r in hnsw_rows
        )
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k vectors only")
    args = parser.parse_args()
    sizes = (10_000,) if args.quick else (10_000, 100_000)
    rows = [run(n, dim=128, num_queries=1_000, k=10, ef_search=(16, 32, 64, 128)) for n in sizes]
    import faiss

    result = {
        "benchmark": "indexing",
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "faiss": faiss.__version__,
        "torch_threads": torch.get_num_threads(),
        "data": "random unit vectors (a hard, structureless case for HNSW)",
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "indexing.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {RESULTS / 'indexing.json'}")


if __name__ == "__main__":
    main()
