"""ShapesWorld: the course's procedurally generated image–text dataset.

Every image shows one or two coloured shapes, drawn in one of two styles:

* ``photo`` — filled, shaded shapes on a textured background;
* ``sketch`` — coloured outlines on plain light paper.

A :class:`Scene` holds the exact attributes (shape, colour, size, position or
relation), so every model can be evaluated exactly. Captions and
question–answer pairs come from :mod:`cmlib.data.shapes_text`.

Item ``i`` of a split is a pure function of ``(seed, split, i)``: there is
nothing to download and nothing to store. The ``heldout`` split holds only
scenes with a (colour, shape) pair from :data:`HELDOUT_PAIRS`; the other
splits never contain those pairs, so a model trained on ``train`` and tested
on ``heldout`` must *compose* what it learned.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import Dataset

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

RGB = {
    "red": (0.86, 0.13, 0.13),
    "green": (0.18, 0.70, 0.22),
    "blue": (0.16, 0.32, 0.92),
    "yellow": (0.96, 0.86, 0.12),
    "purple": (0.58, 0.22, 0.78),
    "orange": (1.00, 0.52, 0.06),
}
MIN_IMAGE_SIZE = 16
_RADIUS = {"small": (0.10, 0.12), "large": (0.16, 0.19)}  # fraction of the image size
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
def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid values are {valid}")


def allowed_pairs(split: str) -> tuple[tuple[str, str], ...]:
    """The (colour, shape) pairs a split draws from."""
    _check_choice("split", split, SPLITS)
    return HELDOUT_PAIRS if split == "heldout" else SEEN_PAIRS


def _sample_object(rng: np.random.Generator, pair: tuple[str, str], box) -> Obj:
    color, shape = pair
    size = SIZES[rng.integers(2)]
    lo, hi = _RADIUS[size]
    (x0, x1), (y0, y1) = box
    u = rng.random(3)
    return Obj(shape, color, size, x0 + (x1 - x0) * u[0], y0 + (y1 - y0) * u[1], lo + (hi - lo) * u[2])


def sample_scene(
    rng: np.random.Generator, split: str = "train", style: str = "photo", num_objects: int = 1
) -> Scene:
    """Draw a random scene for ``split``.

    Args:
        rng: the random generator.
        split: decides which (colour, shape) pairs may appear.
        style: ``"photo"`` or ``"sketch"``.
        num_objects: 1 or 2.
    """
    _check_choice("style", style, STYLES)
    pairs = allowed_pairs(split)
    if num_objects == 1:
        position = POSITIONS[rng.integers(len(POSITIONS))]
        obj = _sample_object(rng, pairs[rng.integers(len(pairs))], _POSITION_BOX[position])
        return Scene((obj,), style, position=position)
    if num_objects != 2:
        raise ValueError(f"num_objects must be 1 or 2, got {num_objects}")
    # Two objects that differ in colour or shape, so each can be named uniquely.
    first = pairs[rng.integers(len(pairs))]
    others = [p for p in (SEEN_PAIRS + HELDOUT_PAIRS) if p != first]
    if split != "heldout":
        others = [p for p in others if p not in HELDOUT_PAIRS]
    second = others[rng.integers(len(others))]
    if rng.random() < 0.5:
        first, second = second, first  # the held-out object may be either one
    relation = RELATIONS[rng.integers(len(RELATIONS))]
    near, far, free = (0.15, 0.30), (0.70, 0.85), (0.32, 0.68)
    boxes = {
        "left of": ((near, free), (far, free)),
        "right of": ((far, free), (near, free)),
        "above": ((free, near), (free, far)),
        "below": ((free, far), (free, near)),
    }[relation]
    a = _sample_object(rng, first, boxes[0])
    b = _sample_object(rng, second, boxes[1])
    return Scene((a, b), style, relation=relation)


def item_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator behind item ``index`` of ``split``: a pure function of its arguments."""
    return np.random.default_rng((seed, _SPLIT_CODE[split], index))


# ---------------------------------------------------------------- rendering
@lru_cache(maxsize=8)
def _grid(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    centres = np.arange(image_size, dtype=np.float32) + 0.5
    return np.meshgrid(centres, centres)  # X, Y in pixels


_TRI_NORMALS = np.array([[0.0, 1.0], [0.866, -0.5], [-0.866, -0.5]], dtype=np.float32)


def signed_distance(obj: Obj, image_size: int) -> np.ndarray:
    """Signed distance in pixels from each pixel to the object's edge (< 0 inside)."""
    X, Y = _grid(image_size)
    dx, dy, r = X - obj.x * image_size, Y - obj.y * image_size, obj.radius * image_size
    if obj.shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - r
    if obj.shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - 0.85 * r
    if obj.shape == "triangle":  # apex up; circumradius 1.3 r, inradius half of it
        n = _TRI_NORMALS
        d = np.maximum(np.maximum(n[0, 0] * dx + n[0, 1] * dy, n[1, 0] * dx + n[1, 1] * dy),
                       n[2, 0] * dx + n[2, 1] * dy)
        return d - 0.65 * r
    raise ValueError(f"unknown shape {obj.shape!r}; valid values are {SHAPES}")


def _photo_background(rng: np.random.Generator, image_size: int) -> np.ndarray:
    base = rng.uniform(0.28, 0.52) + rng.uniform(-0.04, 0.04, size=3)
    coarse = rng.normal(0.0, 0.06, size=(4, 4)).astype(np.float32)
    idx = (np.arange(image_size) * 4) // image_size
    texture = coarse[idx][:, idx] + rng.normal(0.0, 0.025, size=(image_size, image_size))
    return (base[None, None, :] + texture[..., None]).astype(np.float32)


def render(scene: Scene, image_size: int = 32, rng: np.random.Generator | None = None) -> np.ndarray:
    """Draw ``scene`` as an ``(H, W, 3)`` float32 array in [0, 1].

    Args:
        scene: what to draw.
        image_size: height and width in pixels (at least 16).
        rng: the source of texture and colour jitter (default: a fixed one).
    """
    check_image_size(image_size)
    rng = rng if rng is not None else np.random.default_rng(0)
    if scene.style == "photo":
        canvas = _photo_background(rng, image_size)
    else:
        paper = np.array([0.96, 0.95, 0.91], dtype=np.float32) + rng.uniform(-0.03, 0.02)
        canvas = np.broadcast_to(paper, (image_size, image_size, 3)).copy()
    X, Y = _grid(image_size)
    for obj in scene.objects:
        colour = np.clip(np.array(RGB[obj.color], np.float32) + rng.uniform(-0.04, 0.04, 3), 0, 1)
        d = signed_distance(obj, image_size)
        if scene.style == "photo":
            alpha = np.clip(0.5 - d, 0.0, 1.0)
            r = obj.radius * image_size
            light = 1.0 - 0.18 * ((X - obj.x * image_size) + (Y - obj.y * image_size)) / r
            paint = colour[None, None, :] * np.clip(light, 0.65, 1.2)[..., None]
        else:
            width = max(1.0, 1.5 * image_size / 32)
            alpha = np.clip(0.5 * width + 0.5 - np.abs(d), 0.0, 1.0)
            paint = colour[None, None, :]
        a = alpha[..., None]
        canvas = canvas * (1.0 - a) + paint * a
    return np.clip(canvas, 0.0, 1.0, out=canvas)


def check_image_size(image_size: int) -> None:
    if not isinstance(image_size, (int, np.integer)) or isinstance(image_size, bool):
        raise TypeError(f"image_size must be an int, got {type(image_size).__name__}")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be at least {MIN_IMAGE_SIZE} pixels to draw, got {image_size}")


# ---------------------------------------------------------------- attributes
ATTRIBUTE_KEYS = ("num_objects", "shape", "color", "size", "shape2", "color2", "size2",
                  "position", "relation")


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


# ---------------------------------------------------------------- dataset
class ShapesWorld(Dataset):
    """ShapesWorld as a torch ``Dataset`` (torchvision conventions).

    Each item is ``(image, caption, attributes)``: a float tensor of shape
    ``(3, image_size, image_size)`` in [0, 1] (after ``transform``), one caption
    string, and a dict of integer labels (see :func:`attributes`; after
    ``target_transform``). :meth:`captions` and :meth:`questions` give all the
    captions and question–answer pairs of an item.

    Args:
        split: ``"train"``, ``"val"``, ``"test"`` or ``"heldout"``.
        size: number of items (default: 10,000 for train, 1,000 otherwise).
        image_size: height and width in pixels (at least 16).
        style: ``"photo"``, ``"sketch"`` or ``"mixed"`` (each item picks one).
        num_objects: 1, 2, or ``(1, 2)`` for a mix (half and half).
        seed: the dataset seed; with ``split`` and the index it fixes each item.
        transform: applied to the image tensor.
        target_transform: applied to the attribute dict.
    """

    def __init__(
        self,
        split: str = "train",
        size: int | None = None,
        image_size: int = 32,
        style: str = "photo",
        num_objects: int | tuple[int, ...] = (1, 2),
        seed: int = 0,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
    ):
        _check_choice("split", split, SPLITS)
        _check_choice("style", style, STYLES + ("mixed",))
        size = DEFAULT_SPLIT_SIZES[split] if size is None else size
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size <= 0:
            raise ValueError(f"size must be a positive int, got {size!r}")
        check_image_size(image_size)
        counts = (num_objects,) if isinstance(num_objects, int) else tuple(num_objects)
        if not counts or any(n not in (1, 2) for n in counts):
            raise ValueError(f"num_objects must be 1, 2 or (1, 2), got {num_objects!r}")
        self.split, self.size, self.image_size, self.style = split, int(size), image_size, style
        self.num_objects, self.seed = counts, seed
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return self.size

    def _rng_and_scene(self, index: int) -> tuple[np.random.Generator, Scene]:
        if not -self.size <= index < self.size:
            raise IndexError(f"index {index} out of range for a split of {self.size}")
        index %= self.size
        rng = item_rng(self.seed, self.split, index)
        style = self.style if self.style != "mixed" else STYLES[rng.integers(2)]
        num_objects = self.num_objects[index % len(self.num_objects)]
        return rng, sample_scene(rng, self.split, style, num_objects)

    def scene(self, index: int) -> Scene:
        """The scene of item ``index``."""
        return self._rng_and_scene(index)[1]

    def image_array(self, index: int) -> np.ndarray:
        """Item ``index`` as an ``(H, W, 3)`` float32 array, before ``transform``."""
        rng, scene = self._rng_and_scene(index)
        return render(scene, self.image_size, rng)

    def captions(self, index: int) -> list[str]:
        """All caption variants of item ``index`` (the first is the canonical one)."""
        from .shapes_text import captions

        return captions(self.scene(index), _text_rng(self.seed, self.split, index))

    def questions(self, index: int):
        """Question–answer pairs about item ``index`` (see :func:`shapes_text.questions`)."""
        from .shapes_text import questions

        return questions(self.scene(index), _text_rng(self.seed, self.split, index))

    def __getitem__(self, index: int):
        from .shapes_text import captions

        rng, scene = self._rng_and_scene(index)
        image = torch.from_numpy(render(scene, self.image_size, rng)).permute(2, 0, 1)
        variants = captions(scene, _text_rng(self.seed, self.split, index % self.size))
        caption = variants[index % len(variants)]
        target = attributes(scene)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, caption, target

    def tensors(self, cache: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The whole split at once: images ``(N, 3, H, W)`` float32 and attribute tensors ``(N,)``.

        With ``cache=True`` the rendered images are kept under ``data/cache``
        (written atomically, verified on load, rebuilt when corrupt).
        """
        from .cache import cached_array

        def build() -> np.ndarray:
            out = np.empty((self.size, self.image_size, self.image_size, 3), np.uint8)
            for i in range(self.size):
                out[i] = np.round(self.image_array(i) * 255)
            return out

        key = f"shapes-v1-{self.split}-{self.size}-{self.image_size}-{self.style}-" \
              f"{'-'.join(map(str, self.num_objects))}-{self.seed}"
        pixels = cached_array(key, build) if cache else build()
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0)
        labels = [attributes(self.scene(i)) for i in range(self.size)]
        attrs = {k: torch.tensor([row[k] for row in labels]) for k in ATTRIBUTE_KEYS}
        return images, attrs


def _text_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng((seed, _SPLIT_CODE[split], index, zlib.crc32(b"text")))
