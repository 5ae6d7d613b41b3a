"""The corpus and benchmark loaders (gensim's bundled test data)."""

import pytest

from cmlib.data import corpus


def test_wiki_sentences_are_real_tokenised_english():
    sentences = corpus.wiki_sentences()
    tokens = sum(len(s) for s in sentences)
    assert 400_000 < tokens < 600_000
    assert all(isinstance(w, str) and w == w.lower() and w for w in sentences[0])
    words = {w for s in sentences[:2000] for w in s}
    assert {"the", "of", "anarchism"} <= words


def test_max_tokens_limits_and_rejects_bad_values():
    short = corpus.wiki_sentences(max_tokens=1000)
    assert 1000 <= sum(len(s) for s in short) < 1000 + max(len(s) for s in short) + 1
    with pytest.raises(ValueError, match="max_tokens"):
        corpus.wiki_sentences(max_tokens=0)


def test_benchmarks_have_their_published_sizes():
    ws, sl = corpus.wordsim353(), corpus.simlex999()
    assert len(ws) == 353 and len(sl) == 999
    assert ("tiger", "cat", 7.35) in ws
    assert all(0 <= s <= 10 for *_, s in ws + sl)
    sections = corpus.analogy_questions()
    assert sum(len(q) for q in sections.values()) == 19544
    assert ("athens", "greece", "baghdad", "iraq") in sections["capital-common-countries"]
