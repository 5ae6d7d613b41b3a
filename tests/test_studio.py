"""The studio's language and its round-trip verdict."""

import pytest

from cmlib import studio
from cmlib.data.shapes import ShapesWorld
from cmlib.data.shapes.parse import Parsed


@pytest.mark.parametrize(
    "prompt, objects, position",
    [
        ("a small red circle on the left", (("small", "red", "circle"),), "left"),
        ("Draw a blue square!", ((None, "blue", "square"),), None),
        ("red ball", ((None, "red", "circle"),), None),
        ("show me a big green triangle at the top", (("large", "green", "triangle"),), "top"),
    ],
)
def test_prompts_in_the_studio_language_are_understood(prompt, objects, position):
    request = studio.understand(prompt)
    assert request.scene.objects == objects and request.scene.position == position
    assert request.prompt == prompt


def test_two_objects_and_their_relation():
    request = studio.understand("find a red circle left of a blue square")
    assert request.colors_and_shapes == (("red", "circle"), ("blue", "square"))
    assert request.scene.relation == "left of"


@pytest.mark.parametrize(
    "prompt, says",
    [
        ("", "empty"),
        ("   draw  ", "empty"),
        ("draw a cat", "no colour or shape"),
        ("a red cat", r"a colour \(red\) but no shape"),
        ("a circle", "no colour"),
    ],
)
def test_prompts_outside_the_language_get_a_message_naming_what_is_known(prompt, says):
    with pytest.raises(studio.PromptNotUnderstood, match=says) as error:
        studio.understand(prompt)
    assert "circle" in str(error.value) and "red" in str(error.value)  # what it knows
    assert isinstance(error.value, ValueError)


def test_a_prompt_must_be_a_string():
    with pytest.raises(TypeError, match="prompt must be a string"):
        studio.understand(None)


def test_the_verdict_checks_what_the_prompt_says_and_nothing_else():
    asked = studio.understand("a small red circle on the left").scene
    assert studio.round_trip_verdict(asked, "there is a tiny red ball to the left").agrees
    wrong_size = studio.round_trip_verdict(asked, "a big red circle on the left")
    assert not wrong_size.agrees and wrong_size.matches == {
        "color_shape": True,
        "size": False,
        "where": True,
    }
    assert "size" in wrong_size.message() and "colour" not in wrong_size.message()
    wrong_shape = studio.round_trip_verdict(asked, "a small red square on the left")
    assert wrong_shape.matches["color_shape"] is False
    assert "colour and shape" in wrong_shape.message() and "size" not in wrong_shape.message()
    loose = studio.understand("a red circle").scene  # says no size, no position
    verdict = studio.round_trip_verdict(loose, "a large red circle at the bottom")
    assert verdict.agrees and verdict.matches == {"color_shape": True}
    unread = studio.round_trip_verdict(asked, "a cat on a mat")
    assert not unread.agrees and unread.parsed is None and "could not be read" in unread.message()


def test_the_verdict_reads_relations_in_either_order():
    asked = studio.understand("a red circle left of a blue square").scene
    said = "a small blue square to the right of a large red circle"
    assert studio.round_trip_verdict(asked, said).agrees
    assert not studio.round_trip_verdict(asked, "a blue square left of a red circle").agrees


def test_true_captions_of_real_scenes_agree_with_themselves():
    data = ShapesWorld("test", size=40, num_objects=(1, 2))
    for i in range(len(data)):
        for caption in data.captions(i):
            asked = studio.understand(caption).scene
            assert studio.round_trip_verdict(asked, data.captions(i)[0]).agrees, caption


def test_compare_scenes_checks_its_input():
    with pytest.raises(TypeError, match="Parsed"):
        studio.compare_scenes("a red circle", None)
    assert studio.compare_scenes(Parsed(((None, "red", "circle"),)), None) == {"color_shape": False}
