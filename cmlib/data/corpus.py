"""A real English corpus and word-similarity benchmarks, all shipped inside gensim.

* The corpus: the shortened English Wikipedia dump in gensim's test data
  (``enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2``,
  1.7 MB compressed; 107 articles, about 480k word tokens; text CC BY-SA 3.0,
  the Wikipedia licence). :func:`wiki_sentences` strips the wiki markup with
  gensim's own ``filter_wiki``, splits sentences and tokenises them with
  :func:`cmlib.text.tokenize`. The result is cached under ``data/cache``.
* WordSim-353 (Finkelstein et al., 2002) and SimLex-999 (Hill et al., 2015):
  word pairs with human similarity scores.
* The Google analogy questions of Mikolov et al. (2013), ``questions-words.txt``.

Nothing is downloaded: every file comes with the installed ``gensim`` package.
"""

from __future__ import annotations

import bz2
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..text import tokenize
from ..validate import check_int, require
from .cache import cached_array

WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def gensim_test_data() -> Path:
    """The folder of gensim's bundled test data.

    Raises:
        MissingPackageError: if gensim is not installed.
        FileNotFoundError: if gensim is installed without its test data.
    """
    gensim = require("gensim", "gensim", "the Wikipedia corpus and the word benchmarks")

    folder = Path(gensim.__file__).parent / "test" / "test_data"
    if not folder.is_dir():
        raise FileNotFoundError(f"gensim's test data is missing (looked in {folder})")
    return folder


def _wiki_text() -> str:
    """The corpus as text: one sentence per line, tokens separated by single spaces."""
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    lines: list[str] = []
    with bz2.open(gensim_test_data() / WIKI_FILE, "rb") as f:
        for _title, text, _page_id in extract_pages(f, filter_namespaces=("0",)):
            if text.lstrip().lower().startswith("#redirect"):
                continue
            for sentence in _SENTENCE_END.split(filter_wiki(text)):
                tokens = tokenize(sentence)
                if len(tokens) >= 2:
                    lines.append(" ".join(tokens))
    return "\n".join(lines)


@lru_cache(maxsize=1)
def _cached_wiki_text() -> str:
    def build() -> np.ndarray:
        return np.frombuffer(_wiki_text().encode("utf-8"), dtype=np.uint8).copy()

    return cached_array("enwiki-shortened-sentences-v1", build).tobytes().decode("utf-8")


def wiki_sentences(max_tokens: int | None = None) -> list[list[str]]:
    """The Wikipedia corpus as tokenised sentences (lists of lower-case words).

    Args:
        max_tokens: stop after about this many tokens (whole sentences); ``None`` for all.

    Raises:
        ValueError: if ``max_tokens`` is not positive.
    """
    if max_tokens is not None:
        check_int("max_tokens", max_tokens)
    sentences, total = [], 0
    for line in _cached_wiki_text().split("\n"):
        words = line.split(" ")
        sentences.append(words)
        total += len(words)
        if max_tokens is not None and total >= max_tokens:
            break
    return sentences


def _read_pairs(name: str) -> list[tuple[str, str, float]]:
    pairs = []
    for line in (gensim_test_data() / name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        first, second, score = line.split("\t")[:3]
        pairs.append((first.lower(), second.lower(), float(score)))
    return pairs


def wordsim353() -> list[tuple[str, str, float]]:
    """WordSim-353: 353 ``(word1, word2, human score 0..10)`` triples (relatedness)."""
    return _read_pairs("wordsim353.tsv")


def simlex999() -> list[tuple[str, str, float]]:
    """SimLex-999: 999 ``(word1, word2, human score 0..10)`` triples (strict similarity)."""
    return _read_pairs("simlex999.txt")


def analogy_questions() -> dict[str, list[tuple[str, str, str, str]]]:
    """The Google analogy questions by section: ``a : b :: c : d`` as lower-case 4-tuples.

    Example: ``("athens", "greece", "baghdad", "iraq")`` in ``capital-common-countries``.
    """
    sections: dict[str, list[tuple[str, str, str, str]]] = {}
    current = None
    for line in (
        (gensim_test_data() / "questions-words.txt").read_text(encoding="utf-8").splitlines()
    ):
        if line.startswith(":"):
            current = line[1:].strip()
            sections[current] = []
        elif line.strip() and current is not None:
            a, b, c, d = line.lower().split()
            sections[current].append((a, b, c, d))
    return sections
