"""The caption parser reads back every caption ShapesWorld writes, with every synonym."""

import itertools

import numpy as np
import pytest

from cmlib.data.shapes import ShapesWorld
from cmlib.data.shapes.parse import (
    BRIEF_ONE,
    BRIEF_TWO,
    Parsed,
    agreement,
    caption_form,
    parse_caption,
    scene_facts,
)
from cmlib.data.shapes.text import (
    INVERSE_RELATION,
    ONE_OBJECT_TEMPLATES,
    POSITION_WORDS,
    RELATION_WORDS,
    SHAPE_WORDS,
    SIZE_WORDS,
    STYLE_WORDS,
    TWO_OBJECT_TEMPLATES,
    a_an,
    canonical_caption,
)
from cmlib.data.shapes.world import COLORS, make_scene


def test_every_one_object_template_and_synonym_round_trips():
    count = 0
    for template in ONE_OBJECT_TEMPLATES:
        for color, shape, size, position in itertools.product(
            COLORS, SHAPE_WORDS, SIZE_WORDS, POSITION_WORDS
        ):
            for size_word, shape_word, where, style in itertools.product(
                SIZE_WORDS[size], SHAPE_WORDS[shape], POSITION_WORDS[position], ("photo", "drawing")
            ):
                caption = a_an(
                    template.format(
                        size=size_word, color=color, shape=shape_word, where=where, style=style
                    )
                )
                parsed = parse_caption(caption)
                said_size = size if "{size}" in template else None
                assert parsed is not None, caption
                assert (
                    parsed.objects == ((said_size, color, shape),) and parsed.position == position
                ), caption
                count += 1
    assert count > 10_000


def test_every_two_object_template_and_synonym_round_trips():
    rng = np.random.default_rng(0)
    for template in TWO_OBJECT_TEMPLATES:
        for relation, rel_word in ((r, w) for r, ws in RELATION_WORDS.items() for w in ws):
            for _ in range(30):
                (c1, c2), (s1, s2) = rng.choice(COLORS, 2), rng.choice(list(SHAPE_WORDS), 2)
                z1, z2 = rng.choice(list(SIZE_WORDS), 2)
                inverse = rng.choice(RELATION_WORDS[INVERSE_RELATION[relation]])
                caption = a_an(
                    template.format(
                        size1=rng.choice(SIZE_WORDS[z1]),
                        color1=c1,
                        shape1=rng.choice(SHAPE_WORDS[s1]),
                        size2=rng.choice(SIZE_WORDS[z2]),
                        color2=c2,
                        shape2=rng.choice(SHAPE_WORDS[s2]),
                        rel=rel_word,
                        inverse=inverse,
                        style=rng.choice(STYLE_WORDS["sketch"]),
                    )
                )
                parsed = parse_caption(caption)
                assert parsed is not None, caption
                facts = scene_facts(parsed)
                truth = scene_facts(Parsed(((z1, c1, s1), (z2, c2, s2)), relation=relation))
                assert [(c, s) for _, c, s in facts.objects] == [
                    (c, s) for _, c, s in truth.objects
                ] and facts.relation == truth.relation, caption


def test_captions_of_real_scenes_parse_and_agree_exactly():
    ds = ShapesWorld("test", 200, num_objects=(1, 2), style="mixed")
    for i in range(len(ds)):
        scene = ds.scene(i)
        for caption in ds.captions(i):
            result = agreement(parse_caption(caption), scene)
            assert result["exact"], (caption, result)
        assert parse_caption(canonical_caption(scene)).style is None


def test_agreement_names_what_is_wrong():
    scene = make_scene("red", "circle", "small", "left")
    assert agreement(parse_caption("a small red circle on the left"), scene)["exact"]
    wrong_place = agreement(parse_caption("a small red circle on the right"), scene)
    assert wrong_place["color_shape"] and not wrong_place["where"] and not wrong_place["exact"]
    wrong_size = agreement(parse_caption("a big red circle on the left"), scene)
    assert not wrong_size["size"] and not wrong_size["exact"]
    assert agreement(parse_caption("a red circle on the left"), scene)["exact"]  # size unsaid
    assert not agreement(parse_caption("a red circle"), scene)["exact"]  # place unsaid
    assert not agreement(parse_caption("a red square on the left"), scene)["color_shape"]
    assert agreement(None, scene) == {
        "parsed": False,
        "count": False,
        "color_shape": False,
        "size": False,
        "where": False,
        "exact": False,
    }
    pair = make_scene("red", "circle", "large", second=("blue", "square"), relation="left of")
    assert agreement(parse_caption("a blue box to the right of a red ball"), pair)["exact"]
    swapped = agreement(parse_caption("a blue square left of a red circle"), pair)
    assert swapped["color_shape"] and not swapped["where"]


def test_forms_and_unparseable_captions():
    assert caption_form(parse_caption(BRIEF_ONE.format(color="orange", shape="box"))) == "brief"
    assert caption_form(parse_caption("an orange box")) == "brief"
    assert (
        caption_form(
            parse_caption(
                BRIEF_TWO.format(color1="red", shape1="ball", color2="blue", shape2="wedge")
            )
        )
        == "brief"
    )
    assert caption_form(parse_caption("a small red circle on the left")) == "detailed"
    assert caption_form(parse_caption("a red circle on the left")) == "other"
    for junk in ("", "a red", "circle red a", "a red circle left of", "a cat on the mat"):
        assert parse_caption(junk) is None
    with pytest.raises(TypeError):
        parse_caption(3)
