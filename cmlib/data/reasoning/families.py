"""The question families: how each draws its words and writes its question and program.

A family is a program template with 2–4 English templates (:data:`TEMPLATES`). Drawing a
question (:func:`draft`) picks the words first — which colours, shapes, sizes and relation —
and returns a :class:`~.planting.Draft`: the text, the program, the answers this very question
can have, and a ``plant`` function (see :mod:`~cmlib.data.reasoning.planting`). The generator
(:mod:`~cmlib.data.reasoning.questions`) then picks the answer it wants, with the number of
objects (uniformly among the pairs that fit, ``least`` objects or more), and plants it in a
scene. :func:`ask` writes a question from words a person chose.
"""

from __future__ import annotations

import inspect

from ...validate import check_choice, check_int, check_type
from ..shapes.text import a_an
from ..shapes.world import COLORS, RELATIONS, SHAPES, SIZES
from .planting import (
    ATTRS,
    VALUES,
    Context,
    Draft,
    ProgramBuilder,
    around,
    candidates,
    draw_description,
    exactly,
    only,
    phrase,
    pick,
    shuffled,
    values_of,
)
from .programs import NUMBER_WORDS

YES_NO = ("yes", "no")
#: The attribute names as the questions write them (British spelling, like the course).
ATTRIBUTE_WORDS = {"color": "colour", "shape": "shape", "size": "size"}
#: What :func:`ask` accepts for ``attr``: the code's names and the words the questions use.
_ATTRIBUTE_NAMES = {word: attr for attr, word in ATTRIBUTE_WORDS.items()}
#: Every question is one of these; ``{d}`` is a description ("large red circle"), ``{ds}`` its
#: plural, ``{rel}`` a relation, ``{p}``/``{q}`` single attributes ("red", "circles").
TEMPLATES = {
    "exist": ("Is there a {d}?", "Are there any {ds}?", "Is there at least one {d}?"),
    "count": ("How many {ds} are there?", "What number of {ds} are there?"),
    "query_color": ("What colour is the {d}?", "What is the colour of the {d}?"),
    "query_shape": ("What shape is the {d}?", "What is the shape of the {d}?"),
    "query_size": ("What size is the {d}?", "How big is the {d}?"),
    "count_relate": (
        "How many {ds} are {rel} the {d2}?",
        "What number of {ds} are {rel} the {d2}?",
    ),
    "exist_relate": ("Is there a {d} {rel} the {d2}?", "Are there any {ds} {rel} the {d2}?"),
    "query_relate": (
        "What colour is the {d} {rel} the {d2}?",
        "The {d} {rel} the {d2} is what colour?",
    ),
    "compare_attribute": (
        "Are the {d} and the {d2} the same {attr}?",
        "Is the {d} the same {attr} as the {d2}?",
        "Do the {d} and the {d2} have the same {attr}?",
    ),
    "compare_count": (
        "Are there more {ds} than {ds2}?",
        "Are there fewer {ds} than {ds2}?",
        "Are there as many {ds} as {ds2}?",
        "Is the number of {ds} greater than the number of {ds2}?",
    ),
    "and_or_count": (
        "How many objects are {p} or {q}?",
        "What number of objects are {p} or {q}?",
        "How many objects are both {p} and {q}?",
        "What number of objects are {p} and {q}?",
    ),
}
#: The function each template of these two families asks for.
VARIANTS = {
    "compare_count": ("greater_than", "less_than", "equal_integer", "greater_than"),
    "and_or_count": ("union", "union", "intersect", "intersect"),
}
FAMILIES = tuple(TEMPLATES)
_ALL_PAIRS = tuple((c, s) for c in COLORS for s in SHAPES)


def _fill(template: str, **slots: str) -> str:
    return a_an(template.format(**slots))


def family_answers(family: str, max_objects: int = 6) -> tuple[str, ...]:
    """Every answer a family can give with at most ``max_objects`` objects."""
    check_choice("family", family, FAMILIES)
    check_int("max_objects", max_objects, 1, len(NUMBER_WORDS) - 1)
    if family in ("query_color", "query_relate"):
        return COLORS
    if family in ("query_shape", "query_size"):
        return SHAPES if family == "query_shape" else SIZES
    if family in ("count", "and_or_count", "count_relate"):
        return NUMBER_WORDS[: max_objects + (family != "count_relate")]
    return YES_NO


# ---------------------------------------------------------------- the families
# Each family is two functions: ``_draw_<family>(rng, ctx)`` picks its words, as keyword
# arguments of ``_<family>(ctx, template, ...)``, which writes the question. :func:`ask` calls
# the second with words a person chose.
_ANCHORS = (("size", "shape"), ("color", "shape"), ("size", "color", "shape"))
_UNNAMED = {  # the descriptions compare_attribute may use: never the attribute it compares
    "color": (("shape",), ("size", "shape")),
    "shape": (("color",), ("size", "color")),
    "size": (("color",), ("shape",), ("color", "shape")),
}
_COMPARE = {
    "greater_than": lambda a, b: a > b,
    "less_than": lambda a, b: a < b,
    "equal_integer": lambda a, b: a == b,
}


def _exist(ctx, template, d):
    p = ProgramBuilder()
    p.add("exist", (p.select(d),))

    def plant(rng, answer, n, layout):
        k = 1 + min(int(rng.random() * n), n - 1) if answer == "yes" else 0
        return exactly(rng, n, k, d)

    text = _fill(TEMPLATES["exist"][template], d=phrase(d), ds=phrase(d, True))
    return Draft("exist", text, tuple(p.nodes), YES_NO, plant, lambda a: 1)


def _count(ctx, template, d):
    p = ProgramBuilder()
    p.add("count", (p.select(d),))

    def plant(rng, answer, n, layout):
        return exactly(rng, n, NUMBER_WORDS.index(answer), d)

    text = _fill(TEMPLATES["count"][template], ds=phrase(d, True))
    answers = NUMBER_WORDS[: ctx.high + 1]
    return Draft("count", text, tuple(p.nodes), answers, plant, NUMBER_WORDS.index)


def _query(attr: str):
    """The family that asks one attribute of a unique object (described without it)."""
    family = f"query_{attr}"

    def build(ctx, template, d):
        p = ProgramBuilder()
        p.add(family, (p.add("unique", (p.select(d),)),))

        def plant(rng, answer, n, layout):
            return exactly(rng, n, 1, d, extra=((only(attr, answer), True),))

        text = _fill(TEMPLATES[family][template], d=phrase(d))
        return Draft(family, text, tuple(p.nodes), values_of(ctx, d, attr), plant, lambda a: 1)

    return build


def _relate(family: str):
    """count_relate and exist_relate: the objects fitting ``d`` that are ``rel`` the anchor."""
    count = family == "count_relate"

    def build(ctx, template, d, anchor, rel):
        p = ProgramBuilder()
        related = p.add("relate", (p.add("unique", (p.select(anchor),)),), rel)
        p.add("count" if count else "exist", (p.select(d, start=related),))

        def plant(rng, answer, n, layout):
            k = NUMBER_WORDS.index(answer) if count else (None if answer == "yes" else 0)
            return around(rng, ctx, layout, anchor, rel, d, k)

        text = _fill(
            TEMPLATES[family][template], d=phrase(d), ds=phrase(d, True), rel=rel, d2=phrase(anchor)
        )
        answers = NUMBER_WORDS[: ctx.high] if count else YES_NO
        least = (lambda a: NUMBER_WORDS.index(a) + 1) if count else (lambda a: 2)
        return Draft(family, text, tuple(p.nodes), answers, plant, least, relational=True)

    return build


def _query_relate(ctx, template, d, anchor, rel):
    p = ProgramBuilder()
    related = p.add("relate", (p.add("unique", (p.select(anchor),)),), rel)
    p.add("query_color", (p.add("unique", (p.select(d, start=related),)),))

    def plant(rng, answer, n, layout):
        return around(rng, ctx, layout, anchor, rel, d, 1, extra=((only("color", answer), True),))

    text = _fill(TEMPLATES["query_relate"][template], d=phrase(d), rel=rel, d2=phrase(anchor))
    # an answer object fitting the anchor too would make the anchor not unique
    answers = values_of(ctx, d, "color", unlike=anchor)
    return Draft("query_relate", text, tuple(p.nodes), answers, plant, lambda a: 2, True)


def _compare_attribute(ctx, template, attr, d, d2):
    p = ProgramBuilder()
    first = p.add("unique", (p.select(d),))
    p.add(f"same_{attr}", (first, p.add("unique", (p.select(d2),))))
    v1, v2 = values_of(ctx, d, attr, unlike=d2), values_of(ctx, d2, attr, unlike=d)

    def plant(rng, answer, n, layout):
        a = pick(rng, v1)
        others = [b for b in v2 if (b == a) == (answer == "yes")]
        if not others:
            return None
        b = pick(rng, others)
        wants = [((d, False), (d2, False))] * n
        i, j = shuffled(rng, range(n))[:2]
        wants[i] = ((d, True), (d2, False), (only(attr, a), True))
        wants[j] = ((d2, True), (d, False), (only(attr, b), True))
        return wants

    # only the answers these two descriptions allow: "yes" needs a value both can take, "no"
    # two values between them
    answers = []
    if v1 and v2:
        if set(v1) & set(v2):
            answers.append("yes")
        if len(set(v1) | set(v2)) > 1:
            answers.append("no")
    text = _fill(
        TEMPLATES["compare_attribute"][template],
        d=phrase(d),
        d2=phrase(d2),
        attr=ATTRIBUTE_WORDS[attr],
    )
    return Draft("compare_attribute", text, tuple(p.nodes), tuple(answers), plant, lambda a: 2)


def _compare_count(ctx, template, d, d2):
    function = VARIANTS["compare_count"][template]
    p = ProgramBuilder()
    first = p.add("count", (p.select(d),))
    p.add(function, (first, p.add("count", (p.select(d2),))))

    # "large" and "small" leave no object out: then the two counts add up to the objects
    cover = not candidates(ctx.pairs, None, ((d, False), (d2, False)))

    def plant(rng, answer, n, layout):
        # the two counts first, uniformly among those that give the answer
        pairs = [
            (a, b)
            for a in range(n + 1)
            for b in ((n - a,) if cover else range(n + 1 - a))
            if _COMPARE[function](a, b) == (answer == "yes")
        ]
        if not pairs:
            return None
        a, b = pick(rng, pairs)
        order = shuffled(rng, range(n))
        wants = [((d, False), (d2, False))] * n
        for i in order[:a]:
            wants[i] = ((d, True), (d2, False))
        for i in order[a : a + b]:
            wants[i] = ((d2, True), (d, False))
        return wants

    text = _fill(TEMPLATES["compare_count"][template], ds=phrase(d, True), ds2=phrase(d2, True))
    return Draft("compare_count", text, tuple(p.nodes), YES_NO, plant, lambda a: 1)


def _and_or_count(ctx, template, p1, p2):
    function = VARIANTS["and_or_count"][template]
    both = tuple(x or y for x, y in zip(p1, p2))
    p = ProgramBuilder()
    scene = p.add("scene")
    p.add("count", (p.add(function, (p.select(p1, scene), p.select(p2, scene))),))

    def plant(rng, answer, n, layout):
        m = NUMBER_WORDS.index(answer)
        if m > n:
            return None
        if function == "intersect":
            return exactly(rng, n, m, both)
        chosen = set(shuffled(rng, range(n))[:m])
        # a member of the union fits one predicate for sure; the other is left to chance
        return [
            (((p1 if rng.random() < 0.5 else p2), True),)
            if i in chosen
            else ((p1, False), (p2, False))
            for i in range(n)
        ]

    words = [v + "s" if a == "shape" else v for x in (p1, p2) for a, v in zip(ATTRS, x) if v]
    text = _fill(TEMPLATES["and_or_count"][template], p=words[0], q=words[1])
    answers = NUMBER_WORDS[: ctx.high + 1]
    return Draft("and_or_count", text, tuple(p.nodes), answers, plant, NUMBER_WORDS.index)


def _draw_one(*patterns):
    """A drawer of one description ``d`` following one of ``patterns``."""
    return lambda rng, ctx: {"d": draw_description(rng, ctx, pick(rng, patterns))}


def _draw_related(*patterns):
    """A description and an anchor such that an object can fit the first and not the anchor.

    Why: in "is there a large square below the large square?" any answer object would be a
    second anchor, so the answer could only be "no" — the words would give it away.
    """

    def draw(rng, ctx):
        while True:
            d = draw_description(rng, ctx, pick(rng, patterns))
            anchor = draw_description(rng, ctx, pick(rng, _ANCHORS))
            if candidates(ctx.pairs, None, ((anchor, False), (d, True))):
                return {"d": d, "anchor": anchor, "rel": pick(rng, RELATIONS)}

    return draw


def _draw_compare_attribute(rng, ctx):
    attr = pick(rng, tuple(_UNNAMED))
    while True:  # until both answers are possible, or the words alone would give it away
        d, d2 = (draw_description(rng, ctx, pick(rng, _UNNAMED[attr])) for _ in range(2))
        if len(_compare_attribute(ctx, 0, attr, d, d2).answers) == 2:
            return {"attr": attr, "d": d, "d2": d2}


def _draw_compare_count(rng, ctx):
    pattern = pick(rng, (("color",), ("shape",), ("color", "shape"), ("size",)))
    d = d2 = draw_description(rng, ctx, pattern)
    while d2 == d:  # the same attributes with other values: the two sets never overlap
        d2 = draw_description(rng, ctx, pattern)
    return {"d": d, "d2": d2}


def _draw_and_or_count(rng, ctx):
    first, second = pick(rng, (("color", "shape"), ("size", "color"), ("size", "shape")))
    color, shape = pick(rng, ctx.pairs)  # an allowed pair, so that "both" can happen
    triple = dict(zip(ATTRS, (pick(rng, SIZES), color, shape)))
    return {"p1": only(first, triple[first]), "p2": only(second, triple[second])}


#: family -> (draw its words, write its question)
_FAMILIES = {
    "exist": (
        _draw_one(("size", "color", "shape"), ("color", "shape"), ("size", "shape"), ("color",)),
        _exist,
    ),
    "count": (
        _draw_one(("color", "shape"), ("color",), ("shape",), ("size", "shape"), ("size",)),
        _count,
    ),
    "query_color": (_draw_one(("shape",), ("size", "shape")), _query("color")),
    "query_shape": (_draw_one(("color",), ("size", "color")), _query("shape")),
    "query_size": (_draw_one(("color", "shape"), ("color",), ("shape",)), _query("size")),
    "count_relate": (
        _draw_related(("color",), ("shape",), ("color", "shape")),
        _relate("count_relate"),
    ),
    "exist_relate": (
        _draw_related(("color",), ("shape",), ("size", "shape")),
        _relate("exist_relate"),
    ),
    "query_relate": (_draw_related(("shape",), ("size", "shape")), _query_relate),
    "compare_attribute": (_draw_compare_attribute, _compare_attribute),
    "compare_count": (_draw_compare_count, _compare_count),
    "and_or_count": (_draw_and_or_count, _and_or_count),
}


def draft(family: str, rng, ctx: Context) -> Draft:
    """A random question of ``family``: its words, then one of its templates, uniformly."""
    draw, build = _FAMILIES[family]
    words = draw(rng, ctx)
    return build(ctx, pick(rng, range(len(TEMPLATES[family]))), **words)


def ask(family: str, template: int = 0, context: Context | None = None, **words) -> Draft:
    """The question of ``family`` with chosen words: what a reader builds by hand.

    Args:
        family: one of :data:`FAMILIES`.
        template: which of ``TEMPLATES[family]`` to write it with.
        context: the allowed pairs and object counts (default: every pair, 3–6 objects).
        **words: the family's words: descriptions are ``(size, colour, shape)`` triples with
            ``None`` for what is left open. ``d`` (exist, count, query_*), plus ``anchor`` and
            ``rel`` (count_relate, exist_relate, query_relate); ``attr`` (``"colour"`` or
            ``"color"``, ``"shape"``, ``"size"``), ``d``, ``d2`` (compare_attribute); ``d``,
            ``d2`` (compare_count); ``p1``, ``p2``, each naming one attribute (and_or_count).

    Example:
        >>> ask("count_relate", d=(None, "red", None), anchor=("large", None, "square"),
        ...     rel="left of").text
        'How many red objects are left of the large square?'

    Raises:
        TypeError: for a word of the wrong type (a description that is not a tuple, say), a
            context that is not a Context, or missing or unexpected words.
        ValueError: for an unknown family, template, word or description.
    """
    check_type("family", family, str)
    check_choice("family", family, FAMILIES)
    check_int("template", template, 0, len(TEMPLATES[family]) - 1)
    if context is not None:
        check_type("context", context, Context)
    build = _FAMILIES[family][1]
    expected = list(inspect.signature(build).parameters)[2:]  # after (ctx, template)
    if set(words) != set(expected):
        raise TypeError(
            f"ask({family!r}) takes the words {', '.join(expected)}; got "
            f"{', '.join(words) or 'none'}"
        )
    for name in ("rel", "attr"):
        if name in words:
            check_type(name, words[name], str)
    if "attr" in words:  # the questions say "colour", the code "color": take either
        words["attr"] = _ATTRIBUTE_NAMES.get(words["attr"], words["attr"])
    for name, value in words.items():
        if name == "rel":
            check_choice("rel", value, RELATIONS)
        elif name == "attr":
            check_choice("attr", value, ATTRS)
        else:
            check_type(name, value, tuple, "a (size, colour, shape) tuple")
            ok = len(value) == 3 and any(value)
            if not ok or any(v is not None and v not in VALUES[a] for a, v in zip(ATTRS, value)):
                raise ValueError(
                    f"{name} must be a (size, colour, shape) triple naming at least one valid "
                    f"value, None elsewhere, got {value!r}"
                )
    context = context if context is not None else Context(_ALL_PAIRS, 3, 6)
    return build(context, template, **words)
