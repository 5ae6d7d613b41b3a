"""Descriptions of objects, and how a question's answer is planted in a scene.

A description is a ``(size, colour, shape)`` triple with ``None`` for what it leaves open:
``(None, "red", "circle")`` is "red circle". A question's :class:`Draft` says, for the answer
the generator wants, what each object must or must not be — ``((description, True), ...)`` per
object — and :func:`candidates` lists the objects that meet such wants.

Why plant rather than draw scenes and keep the lucky ones: "how many large red circles are
there?" answered "six" is a needle in a haystack for random scenes, and picking the answer
first is what lets the generator decide how likely each answer is (see
:mod:`~cmlib.data.reasoning.questions`), so that the words alone predict nothing beyond the
family's prior.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from ..shapes.world import COLORS, SHAPES, SIZES, choose
from .programs import Node
from .scenes import shuffled

Desc = tuple  # (size, colour, shape), None where the question leaves it open
ATTRS = ("size", "color", "shape")
VALUES = {"size": SIZES, "color": COLORS, "shape": SHAPES}


@dataclass(frozen=True)
class Context:
    """What a draft may use: the allowed (colour, shape) pairs and the object-count range."""

    pairs: tuple[tuple[str, str], ...]
    low: int
    high: int


@dataclass(frozen=True)
class Draft:
    """A question before its scene: text, program, possible answers, and how to plant one.

    ``plant(rng, answer, n, layout)`` returns one tuple of ``(description, wanted)`` per object,
    or ``None`` when ``n`` objects (or this ``layout``: sizes and relations, for the relational
    families, whose objects are placed first) cannot give ``answer``. ``least(answer)`` is the
    fewest objects that can.
    """

    family: str
    text: str
    program: tuple[Node, ...]
    answers: tuple[str, ...]
    plant: Callable
    least: Callable[[str], int]
    relational: bool = False


def only(attr: str, value: str) -> Desc:
    """The description that fixes one attribute: ``only("color", "red")``."""
    return tuple(value if a == attr else None for a in ATTRS)


def matches(desc: Desc, triple: tuple[str, str, str]) -> bool:
    """Whether a ``(size, colour, shape)`` triple fits a description."""
    return all(d is None or d == t for d, t in zip(desc, triple))


# Sets of triples as bit masks over every triple, so that a want is one AND (speed: this runs
# a dozen times per question).
_TRIPLES = tuple((z, c, s) for c in COLORS for s in SHAPES for z in SIZES)


@lru_cache(maxsize=1024)
def _mask(desc: Desc) -> int:
    return sum(1 << i for i, t in enumerate(_TRIPLES) if matches(desc, t))


@lru_cache(maxsize=16)
def _universe(pairs, size) -> int:
    return sum(1 << i for i, t in enumerate(_TRIPLES) if t[1:] in pairs and size in (None, t[0]))


@lru_cache(maxsize=4096)
def candidates(pairs, size, wants) -> tuple[tuple[str, str, str], ...]:
    """The ``(size, colour, shape)`` triples of ``pairs`` (of size ``size`` unless ``None``)
    that meet every ``(description, wanted)`` of ``wants``, in a fixed order."""
    bits = _universe(pairs, size)
    for desc, wanted in wants:
        bits &= _mask(desc) if wanted else ~_mask(desc)
    out = []
    while bits:
        low = bits & -bits
        out.append(_TRIPLES[low.bit_length() - 1])
        bits ^= low
    return tuple(out)


def draw_description(rng, ctx: Context, pattern: tuple[str, ...]) -> Desc:
    """A description naming the attributes of ``pattern``, of an allowed pair."""
    color, shape = choose(ctx.pairs, rng.random())
    triple = dict(zip(ATTRS, (choose(SIZES, rng.random()), color, shape)))
    return tuple(triple[a] if a in pattern else None for a in ATTRS)


def values_of(ctx: Context, desc: Desc, attr: str, unlike: Desc | None = None) -> tuple[str, ...]:
    """The values of ``attr`` an object fitting ``desc`` (and not ``unlike``) can take here, in
    canonical order."""
    wants = ((desc, True),) if unlike is None else ((desc, True), (unlike, False))
    found = {t[ATTRS.index(attr)] for t in candidates(ctx.pairs, None, wants)}
    return tuple(v for v in VALUES[attr] if v in found)


def phrase(desc: Desc, plural: bool = False) -> str:
    """``"large red circle"``, ``"red objects"``: the words of a description."""
    size, color, shape = desc
    noun = (shape or "object") + ("s" if plural else "")
    return " ".join(w for w in (size, color, noun) if w)


class ProgramBuilder:
    """Builds a node list: ``select`` filters a set by a description, ``add`` appends a node."""

    def __init__(self):
        self.nodes: list[Node] = []

    def add(self, function: str, inputs=(), value=None) -> int:
        self.nodes.append(Node(function, tuple(inputs), value))
        return len(self.nodes) - 1

    def select(self, desc: Desc, start: int | None = None) -> int:
        k = self.add("scene") if start is None else start
        for attr, value in zip(ATTRS, desc):
            if value is not None:
                k = self.add(f"filter_{attr}", (k,), value)
        return k


def pick(rng, options):
    return choose(options, rng.random())


def exactly(rng, n: int, k: int, desc: Desc, extra=()) -> list | None:
    """``k`` random objects of ``n`` fit ``desc`` (and ``extra``), the others do not."""
    if k > n:
        return None
    chosen = set(shuffled(rng, range(n))[:k])
    return [((desc, True), *extra) if i in chosen else ((desc, False),) for i in range(n)]


def around(rng, ctx, layout, anchor, rel, desc, k, extra=()) -> list | None:
    """Objects for a relational question: one ``anchor`` object and, among the objects ``rel``
    it, exactly ``k`` fitting ``desc`` (at least one, at random, for ``k=None``)."""
    sizes, related = layout["sizes"], layout["relations"][rel]
    hit, miss = ((anchor, False), (desc, True), *extra), ((anchor, False), (desc, False))

    def fits(i, wants):
        return bool(candidates(ctx.pairs, sizes[i], wants))

    need = 1 if k is None else k
    options = []
    for i in range(len(sizes)):
        if fits(i, ((anchor, True),)) and all(fits(j, miss) for j in related[i]):
            room = [j for j in related[i] if fits(j, hit)]
            if len(room) >= need:
                options.append((i, room))
    if not options:
        return None
    i, room = pick(rng, options)
    count = k if k is not None else 1 + min(int(rng.random() * len(room)), len(room) - 1)
    chosen = set(shuffled(rng, room)[:count])
    wants = [((anchor, False),)] * len(sizes)
    wants[i] = ((anchor, True),)
    for j in related[i]:
        wants[j] = hit if j in chosen else miss
    return wants
