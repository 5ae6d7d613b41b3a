"""The benchmarks' one timing rule: the best of a few runs, the least disturbed by the machine."""

from __future__ import annotations

import time


def best_seconds(fn, repeats: int = 3) -> float:
    """The shortest wall time of ``repeats`` calls of ``fn()``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
