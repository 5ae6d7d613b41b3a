"""ShapesWorld's world: what a scene can contain, and how scenes are drawn at random.

Every image shows one or two coloured shapes. A :class:`Scene` holds the exact attributes
(shape, colour, size, position or relation), so every model can be evaluated exactly.

Item ``i`` of a split is a pure function of ``(seed, split, i)`` (:func:`item_uniforms`):
there is nothing to download and nothing to store. The ``heldout`` split holds only scenes
with a (colour, shape) pair from :data:`HELDOUT_PAIRS`; the other splits never contain those
pairs, so a model trained on ``train`` and tested on ``heldout`` must *compose* what it learned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...validate import check_choice

SHAPES = ("circle", "square", "triangle")
COLORS = ("red", "green", "blue", "yellow", "purple", "orange")
SIZES = ("small", "large")
POSITIONS = ("left", "right", "top", "bottom", "center")
RELATIONS = ("left of", "right of", "above", "below")
STYLES = ("photo", "sketch")
SPLITS = ("train", "val", "test", "heldout")
DEFAULT_SPLIT_SIZES = {"train": 10_000, "val": 1_000, "test": 1_000, "heldout": 1_000}

#: (colour, shape) pairs that never appear in train/val/test; only in ``heldout``.
HELDOUT_PAIRS = (("red", "triangle"), ("green", "circle"), ("blue", "square"))
SEEN_PAIRS = tuple((c, s) for c in COLORS for s in SHAPES if (c, s) not in HELDOUT_PAIRS)
#: Every (colour, shape) pair: the seen ones, then the held-out ones (the order class ids use).
ALL_PAIRS = SEEN_PAIRS + HELDOUT_PAIRS

RGB = {
    "red": (0.86, 0.13, 0.13),
    "green": (0.18, 0.70, 0.22),
    "blue": (0.16, 0.32, 0.92),
    "yellow": (0.96, 0.86, 0.12),
    "purple": (0.58, 0.22, 0.78),
    "orange": (1.00, 0.52, 0.06),
}
MIN_IMAGE_SIZE = 16
#: The radius range of each size, as fractions of the image size.
RADIUS_RANGE = {"small": (0.10, 0.12), "large": (0.16, 0.19)}
_POSITION_BOX = {  # (x range, y range) of the object's centre, as fractions
    "left": ((0.20, 0.30), (0.40, 0.60)),
    "right": ((0.70, 0.80), (0.40, 0.60)),
    "top": ((0.40, 0.60), (0.20, 0.30)),
    "bottom": ((0.40, 0.60), (0.70, 0.80)),
    "center": ((0.44, 0.56), (0.44, 0.56)),
}
_SPLIT_CODE = {name: i for i, name in enumerate(SPLITS)}


@dataclass(frozen=True)
class Obj:
    """One object: attributes plus its centre and radius (fractions of the image size)."""

    shape: str
    color: str
    size: str
    x: float
    y: float
    radius: float


@dataclass(frozen=True)
class Scene:
    """What an image shows.

    ``position`` is set for one-object scenes; ``relation`` for two-object
    scenes, read as ``objects[0] <relation> objects[1]``.
    """

    objects: tuple[Obj, ...]
    style: str
    position: str | None = None
    relation: str | None = None


# ---------------------------------------------------------------- sampling
def allowed_pairs(split: str) -> tuple[tuple[str, str], ...]:
    """The (colour, shape) pairs a split draws from."""
    check_choice("split", split, SPLITS)
    return HELDOUT_PAIRS if split == "heldout" else SEEN_PAIRS


def choose(options, u: float):
    """The option that the uniform number ``u`` in [0, 1) falls on."""
    return options[min(int(u * len(options)), len(options) - 1)]


def _make_object(pair: tuple[str, str], box, u: list[float]) -> Obj:
    """An object of ``pair`` whose centre lies in ``box`` and inside the frame (``u``: 4
    uniforms)."""
    color, shape = pair
    size = choose(SIZES, u[0])
    lo, hi = RADIUS_RANGE[size]
    radius = lo + (hi - lo) * u[1]
    margin = radius + 0.03
    (x0, x1), (y0, y1) = box
    x = min(max(x0 + (x1 - x0) * u[2], margin), 1 - margin)
    y = min(max(y0 + (y1 - y0) * u[3], margin), 1 - margin)
    return Obj(shape, color, size, x, y, radius)


_NEAR, _FAR, _FREE = (0.15, 0.30), (0.70, 0.85), (0.32, 0.68)
_RELATION_BOXES = {  # centre boxes of (first, second) object; the first is <relation> the second
    "left of": ((_NEAR, _FREE), (_FAR, _FREE)),
    "right of": ((_FAR, _FREE), (_NEAR, _FREE)),
    "above": ((_FREE, _NEAR), (_FREE, _FAR)),
    "below": ((_FREE, _FAR), (_FREE, _NEAR)),
}
_PARTNERS = {  # (split is heldout, first pair) -> pairs the second object may have
    (heldout, first): tuple(
        p for p in (SEEN_PAIRS + HELDOUT_PAIRS if heldout else SEEN_PAIRS) if p != first
    )
    for heldout in (False, True)
    for first in SEEN_PAIRS + HELDOUT_PAIRS
}


def scene_from_uniforms(u: list[float], split: str, style: str, num_objects: int) -> Scene:
    """The scene that 12 uniform numbers in [0, 1) pick (see :func:`sample_scene`)."""
    check_choice("style", style, STYLES)
    pairs = allowed_pairs(split)
    if num_objects == 1:
        position = choose(POSITIONS, u[0])
        obj = _make_object(choose(pairs, u[1]), _POSITION_BOX[position], u[2:6])
        return Scene((obj,), style, position=position)
    if num_objects != 2:
        raise ValueError(f"num_objects must be 1 or 2, got {num_objects}")
    first = choose(pairs, u[0])
    second = choose(_PARTNERS[split == "heldout", first], u[1])
    if u[2] < 0.5:
        first, second = second, first  # the held-out object may be either one
    relation = choose(RELATIONS, u[3])
    box_a, box_b = _RELATION_BOXES[relation]
    return Scene(
        (_make_object(first, box_a, u[4:8]), _make_object(second, box_b, u[8:12])),
        style,
        relation=relation,
    )


def make_scene(
    color: str,
    shape: str,
    size: str = "large",
    position: str = "center",
    style: str = "photo",
    second: tuple[str, str] | None = None,
    relation: str = "left of",
) -> Scene:
    """The scene a reader describes: one object, or two when ``second`` gives (colour, shape).

    The object sits in the middle of its position's box, with the middle radius of its size;
    with ``second``, the first object is ``relation`` the second (which has the same size).

    Raises:
        ValueError: for an unknown attribute, or two objects that cannot be told apart.
    """
    for name, value, valid in (
        ("color", color, COLORS),
        ("shape", shape, SHAPES),
        ("size", size, SIZES),
        ("position", position, POSITIONS),
        ("style", style, STYLES),
        ("relation", relation, RELATIONS),
    ):
        check_choice(name, value, valid)
    u = [SIZES.index(size) / len(SIZES) + 0.25, 0.5, 0.5, 0.5]
    if second is None:
        return Scene(
            (_make_object((color, shape), _POSITION_BOX[position], u),), style, position=position
        )
    check_choice("second colour", second[0], COLORS)
    check_choice("second shape", second[1], SHAPES)
    if second == (color, shape):
        raise ValueError("two objects of one colour and shape could not be told apart")
    box_a, box_b = _RELATION_BOXES[relation]
    return Scene(
        (_make_object((color, shape), box_a, u), _make_object(second, box_b, u)),
        style,
        relation=relation,
    )


def sample_scene(
    rng: np.random.Generator, split: str = "train", style: str = "photo", num_objects: int = 1
) -> Scene:
    """Draw a random scene for ``split``.

    Args:
        rng: the random generator.
        split: decides which (colour, shape) pairs may appear.
        style: ``"photo"`` or ``"sketch"``.
        num_objects: 1 or 2. Two objects always differ in colour or shape, so
            each can be named uniquely.
    """
    return scene_from_uniforms(rng.random(12).tolist(), split, style, num_objects)


# computed for many items at once, so random access costs nothing and batches vectorise.
def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def item_uniforms(seed: int, split: str, indices, count: int = 25, stream: int = 0) -> np.ndarray:
    """``(len(indices), count)`` uniforms in [0, 1): a pure function of the arguments."""
    check_choice("split", split, SPLITS)
    key = _splitmix64(np.array([(seed * 8 + _SPLIT_CODE[split]) * 4 + stream], np.uint64))
    idx = np.asarray(indices, dtype=np.uint64)[:, None] * np.uint64(64)
    bits = _splitmix64(key ^ _splitmix64(idx + np.arange(count, dtype=np.uint64)))
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def item_seeds(seed: int, split: str, indices, stream: int = 1) -> list[int]:
    """The seeds of :func:`item_rng` for many items at once."""
    return [int(u * 2**53) for u in item_uniforms(seed, split, indices, 1, stream)[:, 0]]


def item_rng(seed: int, split: str, index: int, stream: int = 1) -> np.random.Generator:
    """A generator for item ``index``; stream 1 draws its caption and question wording."""
    return np.random.default_rng(item_seeds(seed, split, [index], stream)[0])


# ---------------------------------------------------------------- attributes
ATTRIBUTE_KEYS = (
    "num_objects",
    "shape",
    "color",
    "size",
    "shape2",
    "color2",
    "size2",
    "position",
    "relation",
)


def attributes(scene: Scene) -> dict[str, int]:
    """The scene as integer labels (``-1`` where an attribute does not apply).

    Keys: ``num_objects``; ``shape``/``color``/``size`` of the first object;
    ``shape2``/``color2``/``size2`` of the second; ``position`` (one object)
    and ``relation`` (two objects). Indices refer to :data:`SHAPES`,
    :data:`COLORS`, :data:`SIZES`, :data:`POSITIONS` and :data:`RELATIONS`.
    """
    a, b = scene.objects[0], (scene.objects[1] if len(scene.objects) > 1 else None)
    return {
        "num_objects": len(scene.objects),
        "shape": SHAPES.index(a.shape),
        "color": COLORS.index(a.color),
        "size": SIZES.index(a.size),
        "shape2": SHAPES.index(b.shape) if b else -1,
        "color2": COLORS.index(b.color) if b else -1,
        "size2": SIZES.index(b.size) if b else -1,
        "position": POSITIONS.index(scene.position) if scene.position else -1,
        "relation": RELATIONS.index(scene.relation) if scene.relation else -1,
    }


def pair_label(color: str, shape: str) -> int:
    """One class id for a (colour, shape) pair: ``color_index * len(SHAPES) + shape_index``."""
    return COLORS.index(color) * len(SHAPES) + SHAPES.index(shape)
