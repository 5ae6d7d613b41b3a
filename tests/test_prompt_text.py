"""Tests for cmlib.data.shapes.prompt_text: prompts, synonyms, paraphrases, prompt sets."""

from __future__ import annotations

import numpy as np
import pytest

from cmlib.data.shapes import COLORS, HELDOUT_PAIRS, SEEN_PAIRS
from cmlib.data.shapes.prompt_text import (
    all_prompts,
    make_prompt,
    paraphrase_prompts,
    training_prompts,
)
from cmlib.data.shapes.text import shapes_vocab
from cmlib.generation import prompts

COND = 8


# ------------------------------------------------------------ prompts
def test_make_prompt_and_synonyms():
    assert make_prompt("red", "circle") == "a red circle"
    assert make_prompt("orange", "square", "large", "left") == "a large orange square on the left"
    assert make_prompt("orange", "square") == "an orange square"
    rng = np.random.default_rng(0)
    words = {make_prompt("red", "circle", rng=rng).split()[-1] for _ in range(40)}
    assert words == {"circle", "ball"}
    with pytest.raises(ValueError, match="colour|color"):
        make_prompt("crimson", "circle")
    with pytest.raises(ValueError, match="position"):
        make_prompt("red", "circle", position="behind")


def test_training_prompts_name_colour_and_shape(shapes):
    _, attrs = shapes
    texts = training_prompts(attrs, np.random.default_rng(0))
    assert len(texts) == len(attrs["color"])
    assert all(COLORS[int(c)] in p for p, c in zip(texts, attrs["color"]))
    with pytest.raises(ValueError, match="lacks"):
        training_prompts({"color": attrs["color"]}, np.random.default_rng(0))


def test_paraphrases_use_unseen_words():
    vocab = shapes_vocab()
    para = paraphrase_prompts(SEEN_PAIRS + HELDOUT_PAIRS)
    assert len(para) == 2 * 18
    for text, _, _ in para:
        colour_word, shape_word = text.split()[1:3]  # e.g. "crimson", "disc" / "round" (dot)
        assert colour_word not in vocab.stoi and shape_word not in vocab.stoi, text


def test_all_prompts_cover_every_pair_in_known_words():
    texts = all_prompts()
    assert len(texts) == 18 * 3 * 6 == len(set(texts))
    assert (
        "a red triangle" in texts and "a small blue square on the left" in texts
    )  # held-out pairs too
    prompts.BagOfWordsEncoder(shapes_vocab(), COND).bag(texts)  # every word is known
