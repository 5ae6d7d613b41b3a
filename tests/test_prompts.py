"""Tests for cmlib.generation.prompts: prompt encoders and grounding colour words."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cmlib.data.shapes import SEEN_PAIRS
from cmlib.data.shapes.prompt_text import (
    make_prompt,
)
from cmlib.data.shapes.text import shapes_vocab
from cmlib.generation import prompts

COND = 8


class FakeSentenceEncoder:
    """Stands in for MiniLM: a fixed random projection of word counts (deterministic, offline)."""

    dim = 12

    def __init__(self):
        self.vocab = shapes_vocab()
        self.proj = torch.randn(
            len(self.vocab), self.dim, generator=torch.Generator().manual_seed(0)
        )

    def encode(self, texts):
        bag = prompts.BagOfWordsEncoder(self.vocab, 1).bag(texts)
        return bag @ self.proj


# ------------------------------------------------------------ encoders
def test_bag_of_words_encoder():
    enc = prompts.BagOfWordsEncoder(shapes_vocab(), COND)
    c = enc(["a red circle", "circle red a", "a big blue box on the left"])
    assert c.shape == (3, COND)
    assert torch.allclose(c[0], c[1])
    with pytest.raises(ValueError, match="empty"):
        enc([""])
    with pytest.raises(ValueError, match="vocabulary"):
        enc(["a crimson disc"][0].replace("a ", ""))
    with pytest.raises(ValueError, match="at least one"):
        enc([])
    with pytest.raises(TypeError):
        prompts.BagOfWordsEncoder(["red"], COND)


def test_sentence_encoder_head_fits_targets():
    teacher = prompts.BagOfWordsEncoder(shapes_vocab(), COND)
    student = prompts.SentencePromptEncoder(FakeSentenceEncoder(), COND)
    texts = [make_prompt(c, s, size) for c, s in SEEN_PAIRS for size in (None, "small", "large")]
    with torch.no_grad():
        r2 = student.fit(texts, teacher(texts), ridge=1e-3)
        assert r2 > 0.95
        assert torch.allclose(student(texts[:3]), teacher(texts[:3]), atol=0.2)
    with pytest.raises(ValueError, match="targets"):
        student.fit(texts, torch.zeros(len(texts), COND + 1))


def test_colour_words_are_grounded_by_hue():
    expected = {
        "crimson": "red",
        "scarlet": "red",
        "emerald": "green",
        "navy": "blue",
        "azure": "blue",
        "lemon": "yellow",
        "violet": "purple",
        "lavender": "purple",
        "tangerine": "orange",
    }
    assert {w: prompts.ground_color_word(w) for w in expected} == expected
    for word in ("grey", "white", "black", "disc", "circle"):  # greyish, or not a colour at all
        assert prompts.ground_color_word(word) is None, word
    with pytest.raises(TypeError):
        prompts.ground_color_word(3)


def test_grounded_encoder_rewrites_only_unknown_colour_words():
    vocab = shapes_vocab()
    assert prompts.ground_prompt("A crimson disc on the left", vocab) == "a red disc on the left"
    assert prompts.ground_prompt("a red circle", vocab) == "a red circle"
    with pytest.raises(ValueError, match="empty"):
        prompts.ground_prompt("  ", vocab)
    bow = prompts.BagOfWordsEncoder(vocab, COND)
    with pytest.raises(ValueError, match="vocabulary"):
        bow(["crimson"])
    grounded = prompts.GroundedPromptEncoder(bow, vocab)
    assert grounded.cond_dim == COND
    assert grounded.rewrite(["navy box", "a lemon tile"]) == ["blue box", "a yellow tile"]
    assert torch.equal(grounded(["a crimson ball"]), bow(["a red ball"]))
    with pytest.raises(TypeError):
        prompts.GroundedPromptEncoder(nn.Identity(), vocab)


def test_nearest_prompt_encoder_returns_known_conditions():
    bow = prompts.BagOfWordsEncoder(shapes_vocab(), COND)
    known = ["a red circle", "a blue square", "a green triangle"]
    nearest = prompts.NearestPromptEncoder(FakeSentenceEncoder(), known, bow, min_similarity=0.2)
    assert nearest.cond_dim == COND
    assert nearest.nearest(["a red circle", "a big blue square on the left", "circle red"]) == [
        "a red circle",
        "a blue square",
        "a red circle",
    ]
    assert torch.equal(nearest(["a blue square at the top"]), bow(["a blue square"]))
    with pytest.raises(ValueError, match="empty"):
        nearest([""])

    class TableEncoder:  # fixed 2-d embeddings
        table = {
            "a red circle": [1.0, 0.0],
            "a blue square": [0.0, 1.0],
            "a crimson disc": [0.9, 0.2],
            "xyzzy": [-1.0, -1.0],
        }

        def encode(self, texts):
            return torch.tensor([self.table[t] for t in texts])

    strict = prompts.NearestPromptEncoder(TableEncoder(), ["a red circle", "a blue square"], bow)
    assert strict.nearest(["a crimson disc"]) == ["a red circle"]
    with pytest.raises(ValueError, match="not close"):
        strict(["xyzzy"])
    with pytest.raises(TypeError):
        prompts.NearestPromptEncoder(object(), known, bow)
    with pytest.raises(TypeError):
        prompts.NearestPromptEncoder(FakeSentenceEncoder(), known, nn.Identity())


def test_sentence_embeddings_encode_each_prompt_once():
    calls = []

    class CountingEncoder(FakeSentenceEncoder):
        def encode(self, texts):
            calls.append(list(texts))
            return super().encode(texts)

    embeddings = prompts.SentenceEmbeddings(CountingEncoder(), dim=FakeSentenceEncoder.dim)
    first = embeddings(["a red circle", "a blue square", "a red circle"])
    again = embeddings(["a blue square", "a red circle"])
    assert calls == [["a blue square", "a red circle"]]  # distinct prompts, once
    assert torch.equal(first[[1, 0]], again)
    with pytest.raises(ValueError, match="returned"):
        prompts.SentenceEmbeddings(FakeSentenceEncoder(), dim=5)(["a red circle"])
    with pytest.raises(TypeError):
        prompts.SentenceEmbeddings(object())
