"""Reading a caption back into a scene, with ShapesWorld's own caption grammar.

A captioner is judged by what its words *mean*: :func:`parse_caption` turns "there is a little
red ball to the left" into ``Parsed(objects=(("small", "red", "circle"),), position="left")``,
and :func:`scene_facts` puts a parse and a true :class:`~cmlib.data.shapes.world.Scene` in one
normal form, so that "a red circle left of a blue square" and "a blue square to the right of a
red circle" compare equal. The grammar is the one :mod:`cmlib.data.shapes.text` writes
captions with — every template, every synonym — plus the short form "a red circle" (one object)
and "a red circle and a blue square" (two). A caption outside it does not parse (``None``),
and counts as wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .text import (
    ONE_OBJECT_TEMPLATES,
    POSITION_WORDS,
    RELATION_WORDS,
    SHAPE_WORDS,
    SIZE_WORDS,
    STYLE_WORDS,
    TWO_OBJECT_TEMPLATES,
)
from .world import COLORS, Scene

#: The short forms, written for a "briefly" prompt (chapter 05): no size, no position.
BRIEF_ONE = "a {color} {shape}"
BRIEF_TWO = "a {color1} {shape1} and a {color2} {shape2}"
CANONICAL_ONE = "a {size} {color} {shape} {where}"
CANONICAL_TWO = "a {size1} {color1} {shape1} {rel} a {size2} {color2} {shape2}"
#: How the objects' order flips with the relation, to a normal form (left of, above).
_FLIP = {"right of": "left of", "below": "above"}


@dataclass(frozen=True)
class Parsed:
    """What a caption says.

    Attributes:
        objects: ``(size or None, colour, shape)`` of each object named, in reading order.
        position: where a lone object is (``None`` if not said).
        relation: how the first object named stands to the second (``"left of"``…), if two.
        style: ``"photo"`` or ``"sketch"`` when the caption says which.
    """

    objects: tuple[tuple[str | None, str, str], ...]
    position: str | None = None
    relation: str | None = None
    style: str | None = None


def _alternatives(table: dict[str, tuple[str, ...]]) -> tuple[str, dict[str, str]]:
    """A regex alternation of every phrase in ``table`` (longest first) and phrase → key."""
    lookup = {phrase: key for key, phrases in table.items() for phrase in phrases}
    return "|".join(re.escape(p) for p in sorted(lookup, key=len, reverse=True)), lookup


@lru_cache(maxsize=1)
def _grammar():
    sizes, size_of = _alternatives(SIZE_WORDS)
    shapes, shape_of = _alternatives(SHAPE_WORDS)
    wheres, where_of = _alternatives(POSITION_WORDS)
    relations, relation_of = _alternatives(RELATION_WORDS)
    styles, style_of = _alternatives(STYLE_WORDS)
    colors = "|".join(COLORS)
    slots = {
        "size": sizes,
        "color": colors,
        "shape": shapes,
        "where": wheres,
        "rel": relations,
        "inverse": relations,
        "style": styles,
    }

    def compile_template(template: str) -> re.Pattern:
        pattern = re.escape(template).replace(r"\{", "{").replace(r"\}", "}").replace(r"\ ", " ")
        pattern = re.sub(
            r"\ba ", "an? ", pattern
        )  # "a orange" or "an orange": grammar, not meaning

        def slot(match: re.Match) -> str:
            name = match.group(1)
            kind = name.rstrip("12")
            group = "rel" if name == "inverse" else name
            return f"(?P<{group}>{slots[kind]})"

        return re.compile(re.sub(r"\{(\w+)\}", slot, pattern) + r"$")

    one = [compile_template(t) for t in (CANONICAL_ONE, *ONE_OBJECT_TEMPLATES, BRIEF_ONE)]
    two = [compile_template(t) for t in (CANONICAL_TWO, *TWO_OBJECT_TEMPLATES, BRIEF_TWO)]
    return (
        one,
        two,
        {
            "size": size_of,
            "shape": shape_of,
            "where": where_of,
            "rel": relation_of,
            "style": style_of,
        },
    )


def parse_caption(caption: str) -> Parsed | None:
    """What ``caption`` says, or ``None`` when ShapesWorld's grammar does not cover it.

    Raises:
        TypeError: if ``caption`` is not a string.
    """
    if not isinstance(caption, str):
        raise TypeError(f"caption must be a string, got {type(caption).__name__}")
    text = " ".join(caption.lower().replace("?", " ").replace(".", " ").split())
    one, two, lookup = _grammar()
    for pattern in one:
        match = pattern.match(text)
        if match:
            g = match.groupdict()
            size = lookup["size"][g["size"]] if g.get("size") else None
            where = lookup["where"][g["where"]] if g.get("where") else None
            style = lookup["style"][g["style"]] if g.get("style") else None
            return Parsed(
                ((size, g["color"], lookup["shape"][g["shape"]]),), position=where, style=style
            )
    for pattern in two:
        match = pattern.match(text)
        if match:
            g = match.groupdict()
            order = sorted((1, 2), key=lambda k: match.start(f"color{k}"))  # as the words come
            objects = tuple(
                (
                    lookup["size"][g[f"size{k}"]] if g.get(f"size{k}") else None,
                    g[f"color{k}"],
                    lookup["shape"][g[f"shape{k}"]],
                )
                for k in order
            )
            relation = lookup["rel"][g["rel"]] if g.get("rel") else None
            style = lookup["style"][g["style"]] if g.get("style") else None
            return Parsed(objects, relation=relation, style=style)
    return None


def scene_facts(what: Scene | Parsed) -> Parsed:
    """A scene or a parse in normal form: two objects ordered so the relation is left of/above.

    Sizes are kept; compare with :func:`agreement` to ignore what a caption leaves unsaid.
    """
    if isinstance(what, Scene):
        objects = tuple((o.size, o.color, o.shape) for o in what.objects)
        what = Parsed(objects, position=what.position, relation=what.relation, style=what.style)
    if what.relation in _FLIP and len(what.objects) == 2:
        return Parsed(what.objects[::-1], what.position, _FLIP[what.relation], what.style)
    return what


def agreement(parsed: Parsed | None, scene: Scene) -> dict[str, bool]:
    """Which parts of ``scene`` a parsed caption got right.

    Returns:
        ``parsed`` (the caption parsed at all), ``count`` (as many objects as the scene),
        ``color_shape`` (every object's colour and shape, as a set), ``size`` (every size that
        is said is right), ``where`` (position or relation said and right), and ``exact``: all
        of these — an unsaid size is not wrong, an unsaid position or relation is.
    """
    truth = scene_facts(scene)
    out = {
        "parsed": parsed is not None,
        "count": False,
        "color_shape": False,
        "size": False,
        "where": False,
    }
    if parsed is not None:
        facts = scene_facts(parsed)
        out["count"] = len(facts.objects) == len(truth.objects)
        said = sorted((c, s) for _, c, s in facts.objects)
        out["color_shape"] = out["count"] and said == sorted((c, s) for _, c, s in truth.objects)
        if out["color_shape"]:
            by_pair = {(c, s): size for size, c, s in truth.objects}
            out["size"] = all(
                size is None or size == by_pair[(c, s)] for size, c, s in facts.objects
            )
            if len(truth.objects) == 1:
                out["where"] = facts.position == truth.position
            else:
                same_order = [(c, s) for _, c, s in facts.objects] == [
                    (c, s) for _, c, s in truth.objects
                ]
                out["where"] = same_order and facts.relation == truth.relation
    out["exact"] = all(out[k] for k in ("parsed", "count", "color_shape", "size", "where"))
    return out


def caption_form(parsed: Parsed | None) -> str | None:
    """``"brief"`` (colours and shapes only), ``"detailed"`` (sizes and where, too), or ``None``.

    What the style prompts of chapter 05 ask for; any other parse is ``"other"``.
    """
    if parsed is None:
        return None
    sized = all(size is not None for size, _, _ in parsed.objects)
    placed = parsed.position is not None or parsed.relation is not None
    if not sized and not placed:
        return "brief"
    if sized and placed:
        return "detailed"
    return "other"
