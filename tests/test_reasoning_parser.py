"""cmlib.reasoning.parser: every generated question parses back to its own program, every
template of every family round-trips, and what is not a template question fails clearly."""

import pytest

from cmlib.data.reasoning import TEMPLATES, ReasoningDataset, ask
from cmlib.data.reasoning.questions import make_context
from cmlib.reasoning.parser import ParsedQuestion, parse_question

#: Words a reader might choose, per family: "an" before a vowel, "object(s)" for an open
#: shape, and every kind of slot.
WORDS = {
    "exist": {"d": (None, "orange", "triangle")},
    "count": {"d": ("small", None, None)},
    "query_color": {"d": ("large", None, "square")},
    "query_shape": {"d": (None, "purple", None)},
    "query_size": {"d": (None, "green", "circle")},
    "count_relate": {
        "d": (None, "red", None),
        "anchor": ("large", None, "square"),
        "rel": "left of",
    },
    "exist_relate": {
        "d": (None, "orange", "circle"),
        "anchor": ("small", "yellow", "triangle"),
        "rel": "below",
    },
    "query_relate": {
        "d": (None, None, "triangle"),
        "anchor": (None, "blue", "square"),
        "rel": "above",
    },
    "compare_attribute": {
        "attr": "colour",
        "d": (None, None, "circle"),
        "d2": ("large", None, "square"),
    },
    "compare_count": {"d": (None, "yellow", None), "d2": (None, "blue", None)},
    "and_or_count": {"p1": (None, "red", None), "p2": (None, None, "circle")},
}


def _unparsed(items) -> list:
    """The items whose question does not parse back to their own family and program."""
    bad = []
    for item in items:
        parsed = parse_question(item.question)
        if (parsed.family, parsed.program, parsed.text) != (
            item.family,
            item.program,
            item.question,
        ):
            bad.append((item.index, item.question, parsed.family))
    return bad


@pytest.mark.parametrize(
    "kwargs, n",
    [({}, 300), ({"condition": "A"}, 100), ({"num_objects": (7, 8)}, 100)],
    ids=["default", "condition-A", "7-8-objects"],
)
def test_generated_questions_parse_to_their_programs(kwargs, n):
    items = ReasoningDataset("train", n, **kwargs).items(range(n))
    assert _unparsed(items) == []


def test_every_template_of_every_family_round_trips():
    assert set(WORDS) == set(TEMPLATES)
    for family, words in WORDS.items():
        for template in range(len(TEMPLATES[family])):
            draft = ask(family, template, **words)
            parsed = parse_question(draft.text)
            assert parsed == ParsedQuestion(family, template, words, draft.program, draft.text)
            # and the words write the question again
            assert ask(parsed.family, parsed.template, **parsed.words).text == draft.text


def test_case_whitespace_question_mark_and_article_do_not_matter():
    text = "How many red objects are left of the large square?"
    expected = parse_question(text)
    for variant in (
        "  how MANY red objects are LEFT OF the large square  ",
        "How many red objects are left of the large square",
        "how many red objects   are left of\tthe large square ?\n",
    ):
        assert parse_question(variant) == expected
    # "a" where the template writes "an": read alike, written back as the template would
    assert parse_question("is there a orange triangle").text == "Is there an orange triangle?"


def test_context_is_passed_to_ask():
    context = make_context(condition="A")
    parsed = parse_question("What shape is the red object?", context=context)
    assert parsed.program == parse_question("What shape is the red object?").program
    with pytest.raises(TypeError, match="context"):
        parse_question("What shape is the red object?", context="A")


def test_errors_say_what_is_wrong():
    with pytest.raises(TypeError, match="question must be str"):
        parse_question(42)
    for empty in ("", "   ", "?"):
        with pytest.raises(ValueError, match="at least one word"):
            parse_question(empty)
    with pytest.raises(ValueError, match="unknown word 'balls'"):
        parse_question("How many red balls are there?")
    with pytest.raises(ValueError, match="unknown words 'crimson', 'balls'"):
        parse_question("Are there any crimson balls?")
    # known words in no template's order: the message shows a template of each family
    with pytest.raises(ValueError, match="matches no question template") as err:
        parse_question("red circle is there")
    for family, templates in TEMPLATES.items():
        assert f"{family}: {templates[0]!r}" in str(err.value)
    # a singular where and_or_count writes a plural shape is not its template either
    with pytest.raises(ValueError, match="matches no question template"):
        parse_question("How many objects are red or circle?")
    # a template that fits, with words ask rejects: ask's own message
    with pytest.raises(ValueError, match="fits the template .* naming at least one valid value"):
        parse_question("Is there an object?")
