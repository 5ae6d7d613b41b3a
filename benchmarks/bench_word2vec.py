"""Benchmark: cmlib's batched skip-gram against gensim's Word2Vec.

Same corpus (the shortened Wikipedia dump in gensim's test data), same
hyper-parameters (dimension, window, negatives, epochs, min_count, sub-sampling).
Prints a table of wall time and WordSim-353 Spearman ρ for each, plus the time
ratio, and writes them to ``benchmarks/results/word2vec.json``.

Run: ``flock /tmp/cmlib-cpu.lock .venv/bin/python benchmarks/bench_word2vec.py [--seeds 0 1 2]``
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from cmlib import embeddings as emb
from cmlib import runtime
from cmlib.data.cache import atomic_write_bytes
from cmlib.data.corpus import wiki_sentences, wordsim353

RESULTS = Path(__file__).resolve().parent / "results" / "word2vec.json"
CONFIG = dict(dim=50, window=5, negatives=5, num_epochs=10, sample=1e-3, min_count=5)


def run(seed: int, sentences, corpus, pairs) -> dict:
    device = runtime.device()
    start = time.perf_counter()
    ours, _ = emb.train_skipgram(
        corpus,
        dim=CONFIG["dim"],
        window=CONFIG["window"],
        negatives=CONFIG["negatives"],
        num_epochs=CONFIG["num_epochs"],
        sample=CONFIG["sample"],
        seed=seed,
        device=device,
        progress=False,
    )
    ours_seconds = time.perf_counter() - start

    from gensim.models import Word2Vec

    start = time.perf_counter()
    model = Word2Vec(
        sentences,
        vector_size=CONFIG["dim"],
        window=CONFIG["window"],
        negative=CONFIG["negatives"],
        epochs=CONFIG["num_epochs"],
        sample=CONFIG["sample"],
        min_count=CONFIG["min_count"],
        sg=1,
        seed=seed,
        workers=2,
    )
    gensim_seconds = time.perf_counter() - start
    theirs = emb.WordVectors(model.wv.index_to_key, model.wv.vectors, name="gensim")
    return {
        "seed": seed,
        "cmlib_seconds": round(ours_seconds, 2),
        "gensim_seconds": round(gensim_seconds, 2),
        "time_ratio_cmlib_over_gensim": round(ours_seconds / gensim_seconds, 2),
        "cmlib_wordsim353_spearman": round(emb.evaluate_similarity(ours, pairs).value, 4),
        "gensim_wordsim353_spearman": round(emb.evaluate_similarity(theirs, pairs).value, 4),
        "covered_pairs": emb.evaluate_similarity(ours, pairs).covered,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    sentences = wiki_sentences()
    corpus = emb.encode_corpus(sentences, min_count=CONFIG["min_count"])
    pairs = wordsim353()
    rows = [run(seed, sentences, corpus, pairs) for seed in args.seeds]
    print(
        f"corpus: {len(corpus):,} tokens after min_count, {corpus.vocab_size:,} words; "
        f"config {CONFIG}; device {runtime.device()}, {torch.get_num_threads()} threads"
    )
    print(
        f"{'seed':>4s} {'cmlib s':>8s} {'gensim s':>9s} {'ratio':>6s} "
        f"{'cmlib ρ':>8s} {'gensim ρ':>9s}"
    )
    for r in rows:
        print(
            f"{r['seed']:4d} {r['cmlib_seconds']:8.1f} {r['gensim_seconds']:9.1f} "
            f"{r['time_ratio_cmlib_over_gensim']:6.2f} {r['cmlib_wordsim353_spearman']:8.3f} "
            f"{r['gensim_wordsim353_spearman']:9.3f}"
        )
    result = {
        "benchmark": "word2vec",
        "config": CONFIG,
        "tokens": len(corpus),
        "vocab_size": corpus.vocab_size,
        "device": str(runtime.device()),
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "runs": rows,
    }
    atomic_write_bytes(RESULTS, (json.dumps(result, indent=2) + "\n").encode())
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
