"""ShapesWorld's text: captions with synonyms, question–answer pairs, and the vocabulary.

Captions come from a few templates with synonyms ("a small red circle on the
left", "there is a little red ball to the left"). The first caption of a
scene is always the canonical one (:func:`canonical_caption`). Questions come
in five kinds — colour, shape, count, existence and relation — all written from
:data:`QUESTION_TEMPLATES` by :func:`ask`, and every answer is a single word from
:data:`ANSWERS`. Prompts for the generators are in :mod:`cmlib.data.shapes.prompt_text`.

Words such as "crimson" or "disc" never appear here on purpose: later
chapters use them as unseen paraphrases.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...text import Vocab, tokenize
from .world import COLORS, HELDOUT_PAIRS, POSITIONS, RELATIONS, SEEN_PAIRS, SHAPES, Obj, Scene

SHAPE_WORDS = {
    "circle": ("circle", "ball"),
    "square": ("square", "box"),
    "triangle": ("triangle", "wedge"),
}
SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big", "huge")}
POSITION_WORDS = {
    "left": ("on the left", "to the left", "at the left"),
    "right": ("on the right", "to the right", "at the right"),
    "top": ("at the top", "near the top", "up top"),
    "bottom": ("at the bottom", "near the bottom"),
    "center": ("in the center", "in the middle"),
}
RELATION_WORDS = {
    "left of": ("to the left of", "left of"),
    "right of": ("to the right of", "right of"),
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
}
INVERSE_RELATION = {
    "left of": "right of",
    "right of": "left of",
    "above": "below",
    "below": "above",
}
STYLE_WORDS = {"photo": ("photo", "picture"), "sketch": ("sketch", "drawing")}

ONE_OBJECT_TEMPLATES = (
    "there is a {size} {color} {shape} {where}",
    "{where} there is a {size} {color} {shape}",
    "a {style} of a {size} {color} {shape} {where}",
    "a {color} {shape} {where}",
)
TWO_OBJECT_TEMPLATES = (
    "there is a {color1} {shape1} {rel} a {color2} {shape2}",
    "a {color2} {shape2} {inverse} a {color1} {shape1}",
    "a {style} of a {size1} {color1} {shape1} {rel} a {size2} {color2} {shape2}",
    "the {color1} {shape1} is {rel} the {color2} {shape2}",
)
#: Every question ShapesWorld asks is one of these, filled in by :func:`ask` (empty slots vanish).
QUESTION_TEMPLATES = {
    "color": "what color is the {shape} {side} ?",
    "shape": "what shape is the {color} object {side} ?",
    "count": "how many objects are there ?",
    "count color": "how many {color} objects are there ?",
    "exist": "is there a {color} {shape} ?",
    "position": "is the {color} {shape} {where} ?",
    "relation": "is the {color1} {shape1} {rel} the {color2} {shape2} ?",
}
#: Captions per scene: the canonical one and one per template (as many for one object as for two).
NUM_CAPTIONS = 1 + len(ONE_OBJECT_TEMPLATES)
assert len(TWO_OBJECT_TEMPLATES) == len(ONE_OBJECT_TEMPLATES)
QUESTION_KINDS = ("color", "shape", "count", "exist", "relation")
NUMBER_WORDS = ("zero", "one", "two")
ANSWERS = COLORS + SHAPES + ("yes", "no") + NUMBER_WORDS


@dataclass(frozen=True)
class QA:
    """A question about a scene, its one-word answer and its kind."""

    question: str
    answer: str
    kind: str


_ARTICLE = re.compile(r"\ba ([aeiou])")


def a_an(text: str) -> str:
    """English's article rule: "a orange circle" → "an orange circle" (before any vowel)."""
    return _ARTICLE.sub(r"an \1", text)


def ask(template: str, **slots: str) -> str:
    """The question :data:`QUESTION_TEMPLATES` ``[template]`` with its slots filled in."""
    return a_an(" ".join(QUESTION_TEMPLATES[template].format(**slots).split()))


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[rng.integers(len(options))]


def describe(obj: Obj, with_size: bool = True) -> str:
    """``"small red circle"`` — the object's canonical words."""
    return f"{obj.size} {obj.color} {obj.shape}" if with_size else f"{obj.color} {obj.shape}"


def canonical_caption(scene: Scene) -> str:
    """The one caption that names every attribute with the canonical words."""
    if len(scene.objects) == 1:
        where = POSITION_WORDS[scene.position][0]
        return a_an(f"a {describe(scene.objects[0])} {where}")
    a, b = scene.objects
    return a_an(f"a {describe(a)} {RELATION_WORDS[scene.relation][0]} a {describe(b)}")


def captions(scene: Scene, rng: np.random.Generator) -> list[str]:
    """The canonical caption followed by one caption per template, with random synonyms."""
    return list(_caption_stream(scene, rng))


def caption_variant(scene: Scene, rng: np.random.Generator, k: int) -> str:
    """``captions(scene, rng)[k]``, drawing only the synonyms of the first ``k`` captions."""
    return next(itertools.islice(_caption_stream(scene, rng), k, None))


def _caption_stream(scene: Scene, rng: np.random.Generator) -> Iterator[str]:
    """The captions one by one: canonical first, then each template with fresh synonyms."""
    yield canonical_caption(scene)
    style = _pick(rng, STYLE_WORDS[scene.style])
    if len(scene.objects) == 1:
        obj = scene.objects[0]
        for template in ONE_OBJECT_TEMPLATES:
            yield a_an(
                template.format(
                    size=_pick(rng, SIZE_WORDS[obj.size]),
                    color=obj.color,
                    shape=_pick(rng, SHAPE_WORDS[obj.shape]),
                    where=_pick(rng, POSITION_WORDS[scene.position]),
                    style=style,
                )
            )
        return
    a, b = scene.objects
    for template in TWO_OBJECT_TEMPLATES:
        yield a_an(
            template.format(
                size1=_pick(rng, SIZE_WORDS[a.size]),
                color1=a.color,
                shape1=_pick(rng, SHAPE_WORDS[a.shape]),
                size2=_pick(rng, SIZE_WORDS[b.size]),
                color2=b.color,
                shape2=_pick(rng, SHAPE_WORDS[b.shape]),
                rel=_pick(rng, RELATION_WORDS[scene.relation]),
                inverse=_pick(rng, RELATION_WORDS[INVERSE_RELATION[scene.relation]]),
                style=style,
            )
        )


def _sides(scene: Scene) -> tuple[str, str]:
    """Where each of two objects is, as a phrase: ("on the left", "on the right")."""
    if scene.relation in ("left of", "right of"):
        first = "left" if scene.relation == "left of" else "right"
        second = "right" if first == "left" else "left"
        return f"on the {first}", f"on the {second}"
    first = "top" if scene.relation == "above" else "bottom"
    second = "bottom" if first == "top" else "top"
    return f"at the {first}", f"at the {second}"


def _attribute_question(scene: Scene, rng: np.random.Generator, kind: str) -> QA:
    """Ask an object's colour (naming its shape) or its shape (naming its colour)."""
    objs = scene.objects
    k = int(rng.integers(len(objs)))
    obj, side = objs[k], ""
    if len(objs) == 2:
        same = objs[0].shape == objs[1].shape if kind == "color" else objs[0].color == objs[1].color
        side = _sides(scene)[k] if same else ""
    if kind == "color":
        return QA(ask("color", shape=obj.shape, side=side), obj.color, "color")
    return QA(ask("shape", color=obj.color, side=side), obj.shape, "shape")


def _count_question(scene: Scene, rng: np.random.Generator) -> QA:
    if rng.random() < 0.3:
        return QA(ask("count"), NUMBER_WORDS[len(scene.objects)], "count")
    present = [o.color for o in scene.objects]
    colour = present[rng.integers(len(present))] if rng.random() < 0.6 else _pick(rng, COLORS)
    n = sum(c == colour for c in present)
    return QA(ask("count color", color=colour), NUMBER_WORDS[n], "count")


def _exist_question(scene: Scene, rng: np.random.Generator) -> QA:
    present = [(o.color, o.shape) for o in scene.objects]
    if rng.random() < 0.5:
        colour, shape = present[rng.integers(len(present))]
        return QA(ask("exist", color=colour, shape=shape), "yes", "exist")
    # Only pairs the scene's split can hold: a held-out pair asked about in a training scene
    # would always be answered "no", a prior a question-only model could learn.
    heldout_scene = any(p in HELDOUT_PAIRS for p in present)
    pool = SEEN_PAIRS + HELDOUT_PAIRS if heldout_scene else SEEN_PAIRS
    pairs = [p for p in pool if p not in present]
    hard = [p for p in pairs if any(p[0] == c or p[1] == s for c, s in present)]
    colour, shape = _pick_pair(rng, hard if hard and rng.random() < 0.7 else pairs)
    return QA(ask("exist", color=colour, shape=shape), "no", "exist")


def _pick_pair(rng: np.random.Generator, pairs: list[tuple[str, str]]) -> tuple[str, str]:
    return pairs[rng.integers(len(pairs))]


def _relation_question(scene: Scene, rng: np.random.Generator) -> QA:
    truth = rng.random() < 0.5
    if len(scene.objects) == 1:
        obj = scene.objects[0]
        where = (
            scene.position
            if truth
            else _pick(rng, tuple(p for p in POSITIONS if p != scene.position))
        )
        text = ask("position", color=obj.color, shape=obj.shape, where=POSITION_WORDS[where][0])
        return QA(text, "yes" if truth else "no", "relation")
    a, b = scene.objects
    rel = (
        scene.relation if truth else _pick(rng, tuple(r for r in RELATIONS if r != scene.relation))
    )
    text = ask(
        "relation",
        color1=a.color,
        shape1=a.shape,
        rel=RELATION_WORDS[rel][0],
        color2=b.color,
        shape2=b.shape,
    )
    return QA(text, "yes" if truth else "no", "relation")


def questions(scene: Scene, rng: np.random.Generator) -> list[QA]:
    """One question of each kind in :data:`QUESTION_KINDS`, in that order."""
    return [
        _attribute_question(scene, rng, "color"),
        _attribute_question(scene, rng, "shape"),
        _count_question(scene, rng),
        _exist_question(scene, rng),
        _relation_question(scene, rng),
    ]


@lru_cache(maxsize=1)
def shapes_vocab() -> Vocab:
    """Every word ShapesWorld captions and questions can use, in a fixed order."""
    phrases: list[str] = list(COLORS) + list(SHAPES) + list(ANSWERS) + ["a", "an", "the"]
    for table in (SHAPE_WORDS, SIZE_WORDS, POSITION_WORDS, RELATION_WORDS, STYLE_WORDS):
        phrases += [p for options in table.values() for p in options]
    for template in (
        ONE_OBJECT_TEMPLATES + TWO_OBJECT_TEMPLATES + tuple(QUESTION_TEMPLATES.values())
    ):
        phrases.append(re.sub(r"\{\w+\}", " ", template))
    words: list[str] = []
    for phrase in phrases:
        words += [w for w in tokenize(phrase) if w not in words]
    return Vocab(words)
