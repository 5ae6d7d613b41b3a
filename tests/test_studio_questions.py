"""The studio's question-answering role: reading a reader's question, both reasoners' answers on
chapter 08's shipped long run, and how agreement is scored."""

from __future__ import annotations

import math

import pytest
import torch

from cmlib.studio.questions import (
    EXAMPLE_QUESTION,
    NO_ANSWER,
    QuestionAnswerer,
    QuestionNotUnderstood,
    agreement,
    read_question,
)


def test_read_question_maps_a_readers_words_to_the_courses():
    parsed = read_question(EXAMPLE_QUESTION)
    assert parsed.family == "count_relate"
    assert parsed.text == "How many red objects are left of the circle?"
    colour = read_question("what COLOR is the large square")
    assert colour.text == "What colour is the large square?"
    # "shape" the attribute is not a synonym of "object"
    assert read_question("What shape is the red thing?").family == "query_shape"


@pytest.mark.parametrize(
    "question, expected",
    [
        ("How many dogs are there?", "'dogs'"),
        ("", "at least one word"),
        ("circle red the is there", "matches no question template"),
    ],
)
def test_read_question_names_what_it_cannot_read(question, expected):
    with pytest.raises(QuestionNotUnderstood, match=expected):
        read_question(question)


def test_read_question_wants_text():
    with pytest.raises(TypeError, match="question"):
        read_question(3)


def test_agreement_counts_by_hand():
    transformer = ["two", "yes", "red", "one"]
    neuro_symbolic = ["two", "no", "red", NO_ANSWER]
    truth = ["two", "no", "blue", "one"]
    scores = agreement(transformer, neuro_symbolic, truth)
    assert scores["transformer"] == pytest.approx(2 / 4)
    assert scores["neuro-symbolic"] == pytest.approx(2 / 4)
    assert scores["agree"] == pytest.approx(2 / 4)
    assert scores["right when they agree"] == pytest.approx(1 / 2)  # "red" was wrong for both
    assert scores["errors flagged"] == pytest.approx(1 / 2)  # "yes" flagged, "red" not
    assert scores["neuro-symbolic right when they disagree"] == pytest.approx(1 / 2)


def test_agreement_says_nan_for_a_share_of_nothing():
    scores = agreement(["yes"], ["yes"], ["yes"])
    assert math.isnan(scores["errors flagged"])
    assert math.isnan(scores["neuro-symbolic right when they disagree"])


@pytest.mark.parametrize("lists", [([], [], []), (["a"], ["a", "b"], ["a"])])
def test_agreement_wants_equal_nonempty_lists(lists):
    with pytest.raises(ValueError, match="equal length"):
        agreement(*lists)


@pytest.fixture(scope="module")
def answerer():
    qa, status = QuestionAnswerer.load(torch.device("cpu"))
    assert status.startswith("loaded models/ch08-reasoning-seed0")
    return qa


def test_ask_and_answer_agree_with_each_other_and_with_the_truth(answerer):
    items, images = answerer.scenes(24, seed=5)
    assert images.shape == (24, 3, answerer.image_size, answerer.image_size)
    transformer, symbolic = answerer.answer(images, [i.question for i in items])
    for k in (0, 7, 19):  # one question at a time gives the same answers as the batch
        reply = answerer.ask(images[k], items[k].question)
        assert (reply.transformer, reply.neuro_symbolic) == (transformer[k], symbolic[k])
        assert reply.family == items[k].family
        assert reply.answer == (reply.transformer if reply.agree else None)
        assert reply.graph["objects"], "the tagger found no object"
    truth = [i.answer for i in items]
    scores = agreement(transformer, symbolic, truth)
    # chapter 08's long run: neuro-symbolic 1.000, transformer 0.951 on 2,000 test questions
    assert scores["neuro-symbolic"] >= 0.9
    assert scores["transformer"] >= 0.75


def test_ask_shows_the_program_and_where_it_stopped(answerer):
    items, images = answerer.scenes(1, seed=0)
    reply = answerer.ask(images[0], "Is there a purple triangle?")
    assert reply.family == "exist" and reply.steps and reply.stopped is None
    scene = {(o["color"], o["shape"]) for o in reply.graph["objects"]}
    assert reply.neuro_symbolic == ("yes" if ("purple", "triangle") in scene else "no")


def test_bad_input_gets_a_clear_error(answerer):
    items, images = answerer.scenes(2, seed=0)
    with pytest.raises(ValueError, match="image"):
        answerer.ask(images[0][:, :16, :16], "Is there a circle?")
    with pytest.raises(QuestionNotUnderstood, match="'unicorns'"):
        answerer.ask(images[0], "Are there any unicorns?")
    with pytest.raises(ValueError, match="one question per image"):
        answerer.answer(images, ["Is there a circle?"])
    with pytest.raises(ValueError, match="n"):
        answerer.scenes(0, seed=0)


def test_load_names_the_long_runs_it_can_use():
    with pytest.raises(ValueError, match="ch08-reasoning-generalisation"):
        QuestionAnswerer.load(torch.device("cpu"), name="ch08-reasoning-film")


def test_question_app_answers_redraws_and_shows_messages(answerer):
    import matplotlib

    matplotlib.use("Agg")
    from cmlib.widgets.studio import question_app

    items, images = answerer.scenes(4, seed=1)
    app = question_app(answerer, images, question=items[2].question, index=2, static=False)
    scene, box, button = app.children[0].children
    message, picture, reply = app.children[1:]
    assert picture.value[:4] == b"\x89PNG" and "studio-qa-ok" in message.value
    assert reply.value.count("class='studio-qa-answer'") == 2 and "program's steps" in reply.value
    box.value = "Are there any unicorns?"
    button.click()
    assert "cannot read" in message.value and "unicorns" in message.value
    assert picture.value == b"" and reply.value == ""  # a message, never a traceback
    scene.value, box.value = 0, EXAMPLE_QUESTION
    button.click()
    assert picture.value[:4] == b"\x89PNG"
    assert "read as: How many red objects are left of the circle?" in reply.value
    with pytest.raises(TypeError, match="qa"):
        question_app("not a studio", images)


def test_answerable_finds_the_scenes_a_question_fits(answerer):
    items, _ = answerer.scenes(30, seed=2)
    fits = answerer.answerable(items, "What colour is the circle?")
    assert fits, "no scene with exactly one circle among 30"
    for k, item in enumerate(items):
        circles = sum(o["shape"] == "circle" for o in item.graph["objects"])
        assert (k in fits) == (circles == 1)
        truth = answerer.true_answer(item, "What colour is the circle?")
        assert (truth == NO_ANSWER) == (circles != 1)
    assert answerer.true_answer(items[0], items[0].question) == items[0].answer
