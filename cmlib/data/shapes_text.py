"""ShapesWorld text: captions with synonyms, question–answer pairs, vocabulary.

Captions come from a few templates with synonyms ("a small red circle on the
left", "there is a little red ball to the left"). The first caption of a
scene is always the canonical one (:func:`canonical_caption`). Questions come
in five kinds — colour, shape, count, existence and relation — and every
answer is a single word from :data:`ANSWERS`.

Words such as "crimson" or "disc" never appear here on purpose: later
chapters use them as unseen paraphrases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..text import Vocab, tokenize
from .shapes import COLORS, HELDOUT_PAIRS, POSITIONS, RELATIONS, SEEN_PAIRS, SHAPES, Obj, Scene

SHAPE_WORDS = {"circle": ("circle", "ball"), "square": ("square", "box"),
               "triangle": ("triangle", "wedge")}
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
INVERSE_RELATION = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
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
QUESTION_TEMPLATES = (
    "what color is the {shape} {side} ?",
    "what shape is the {color} object {side} ?",
    "how many objects are there ?",
    "how many {color} objects are there ?",
    "is there a {color} {shape} ?",
    "is the {color} {shape} {where} ?",
    "is the {color1} {shape1} {rel} the {color2} {shape2} ?",
)
QUESTION_KINDS = ("color", "shape", "count", "exist", "relation")
NUMBER_WORDS = ("zero", "one", "two")
ANSWERS = COLORS + SHAPES + ("yes", "no") + NUMBER_WORDS


@dataclass(frozen=True)
class QA:
    """A question about a scene, its one-word answer and its kind."""

    question: str
    answer: str
    kind: str


def _a_an(text: str) -> str:
    return re.sub(r"\ba ([aeiou])", r"an \1", text)


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[rng.integers(len(options))]


def describe(obj: Obj, with_size: bool = True) -> str:
    """``"small red circle"`` — the object's canonical words."""
    return f"{obj.size} {obj.color} {obj.shape}" if with_size else f"{obj.color} {obj.shape}"


def canonical_caption(scene: Scene) -> str:
    """The one caption that names every attribute with the canonical words."""
    if len(scene.objects) == 1:
        where = POSITION_WORDS[scene.position][0]
        return _a_an(f"a {describe(scene.objects[0])} {where}")
    a, b = scene.objects
    return _a_an(f"a {describe(a)} {RELATION_WORDS[scene.relation][0]} a {describe(b)}")


def captions(scene: Scene, rng: np.random.Generator) -> list[str]:
    """The canonical caption followed by one caption per template, with random synonyms."""
    out = [canonical_caption(scene)]
    style = _pick(rng, STYLE_WORDS[scene.style])
    if len(scene.objects) == 1:
        obj = scene.objects[0]
        for template in ONE_OBJECT_TEMPLATES:
            out.append(template.format(
                size=_pick(rng, SIZE_WORDS[obj.size]), color=obj.color,
                shape=_pick(rng, SHAPE_WORDS[obj.shape]),
                where=_pick(rng, POSITION_WORDS[scene.position]), style=style))
    else:
        a, b = scene.objects
        for template in TWO_OBJECT_TEMPLATES:
            out.append(template.format(
                size1=_pick(rng, SIZE_WORDS[a.size]), color1=a.color,
                shape1=_pick(rng, SHAPE_WORDS[a.shape]),
                size2=_pick(rng, SIZE_WORDS[b.size]), color2=b.color,
                shape2=_pick(rng, SHAPE_WORDS[b.shape]),
                rel=_pick(rng, RELATION_WORDS[scene.relation]),
                inverse=_pick(rng, RELATION_WORDS[INVERSE_RELATION[scene.relation]]),
                style=style))
    return [_a_an(c) for c in out]


def _sides(scene: Scene) -> tuple[str, str]:
    """Where each of two objects is, as a phrase: ("on the left", "on the right")."""
    if scene.relation in ("left of", "right of"):
        first = "left" if scene.relation == "left of" else "right"
        second = "right" if first == "left" else "left"
        return f"on the {first}", f"on the {second}"
    first = "top" if scene.relation == "above" else "bottom"
    second = "bottom" if first == "top" else "top"
    return f"at the {first}", f"at the {second}"


def _attribute_question(scene: Scene, rng: np.random.Generator, ask: str) -> QA:
    """Ask an object's colour (naming its shape) or its shape (naming its colour)."""
    objs = scene.objects
    k = int(rng.integers(len(objs)))
    obj, side = objs[k], ""
    if len(objs) == 2:
        same = objs[0].shape == objs[1].shape if ask == "color" else objs[0].color == objs[1].color
        side = _sides(scene)[k] if same else ""
    if ask == "color":
        text = f"what color is the {obj.shape} {side}"
        return QA(text.strip() + " ?", obj.color, "color")
    text = f"what shape is the {obj.color} object {side}"
    return QA(text.strip() + " ?", obj.shape, "shape")


def _count_question(scene: Scene, rng: np.random.Generator) -> QA:
    if rng.random() < 0.3:
        return QA("how many objects are there ?", NUMBER_WORDS[len(scene.objects)], "count")
    present = [o.color for o in scene.objects]
    colour = present[rng.integers(len(present))] if rng.random() < 0.6 else _pick(rng, COLORS)
    n = sum(c == colour for c in present)
    return QA(_a_an(f"how many {colour} objects are there ?"), NUMBER_WORDS[n], "count")


def _exist_question(scene: Scene, rng: np.random.Generator) -> QA:
    present = [(o.color, o.shape) for o in scene.objects]
    if rng.random() < 0.5:
        colour, shape = present[rng.integers(len(present))]
        return QA(_a_an(f"is there a {colour} {shape} ?"), "yes", "exist")
    # Only pairs the scene's split can hold: a held-out pair asked about in a training scene
    # would always be answered "no", a prior a question-only model could learn.
    heldout_scene = any(p in HELDOUT_PAIRS for p in present)
    pool = SEEN_PAIRS + HELDOUT_PAIRS if heldout_scene else SEEN_PAIRS
    pairs = [p for p in pool if p not in present]
    hard = [p for p in pairs if any(p[0] == c or p[1] == s for c, s in present)]
    colour, shape = _pick_pair(rng, hard if hard and rng.random() < 0.7 else pairs)
    return QA(_a_an(f"is there a {colour} {shape} ?"), "no", "exist")


def _pick_pair(rng: np.random.Generator, pairs: list[tuple[str, str]]) -> tuple[str, str]:
    return pairs[rng.integers(len(pairs))]


def _relation_question(scene: Scene, rng: np.random.Generator) -> QA:
    truth = rng.random() < 0.5
    if len(scene.objects) == 1:
        obj = scene.objects[0]
        where = scene.position if truth else _pick(rng, tuple(p for p in POSITIONS if p != scene.position))
        text = f"is the {obj.color} {obj.shape} {POSITION_WORDS[where][0]} ?"
        return QA(text, "yes" if truth else "no", "relation")
    a, b = scene.objects
    rel = scene.relation if truth else _pick(rng, tuple(r for r in RELATIONS if r != scene.relation))
    text = f"is the {a.color} {a.shape} {RELATION_WORDS[rel][0]} the {b.color} {b.shape} ?"
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
    for template in ONE_OBJECT_TEMPLATES + TWO_OBJECT_TEMPLATES + QUESTION_TEMPLATES:
        phrases.append(re.sub(r"\{\w+\}", " ", template))
    words: list[str] = []
    for phrase in phrases:
        words += [w for w in tokenize(phrase) if w not in words]
    return Vocab(words)
