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

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
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


def _choose(options, u: float):
    """The option that the uniform number ``u`` in [0, 1) falls on."""
    return options[min(int(u * len(options)), len(options) - 1)]


def _make_object(pair: tuple[str, str], box, u: list[float]) -> Obj:
    """An object of ``pair`` whose centre lies in ``box`` and inside the frame (``u``: 4 uniforms)."""
    color, shape = pair
    size = _choose(SIZES, u[0])
    lo, hi = _RADIUS[size]
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
    (heldout, first): tuple(p for p in (SEEN_PAIRS + HELDOUT_PAIRS if heldout else SEEN_PAIRS)
                            if p != first)
    for heldout in (False, True) for first in SEEN_PAIRS + HELDOUT_PAIRS
}


def scene_from_uniforms(u: list[float], split: str, style: str, num_objects: int) -> Scene:
    """The scene that 12 uniform numbers in [0, 1) pick (see :func:`sample_scene`)."""
    _check_choice("style", style, STYLES)
    pairs = allowed_pairs(split)
    if num_objects == 1:
        position = _choose(POSITIONS, u[0])
        obj = _make_object(_choose(pairs, u[1]), _POSITION_BOX[position], u[2:6])
        return Scene((obj,), style, position=position)
    if num_objects != 2:
        raise ValueError(f"num_objects must be 1 or 2, got {num_objects}")
    first = _choose(pairs, u[0])
    second = _choose(_PARTNERS[split == "heldout", first], u[1])
    if u[2] < 0.5:
        first, second = second, first  # the held-out object may be either one
    relation = _choose(RELATIONS, u[3])
    box_a, box_b = _RELATION_BOXES[relation]
    return Scene((_make_object(first, box_a, u[4:8]), _make_object(second, box_b, u[8:12])),
                 style, relation=relation)


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


@dataclass(frozen=True)
class Paint:
    """The random look of one image: colour jitter, background and texture choice."""

    color_jitter: tuple[tuple[float, float, float], ...]  # one RGB offset per object
    background: tuple[float, float, float]                 # photo base colour or sketch paper
    texture: int                                           # index into the texture bank
    orientation: int                                       # 0..7: rotations and flips


_PAPER = (0.96, 0.95, 0.91)


def paint_from_uniforms(u: list[float], style: str) -> Paint:
    """The look that 12 uniform numbers in [0, 1) pick (see :func:`sample_paint`)."""
    j = [0.08 * v - 0.04 for v in u[6:12]]
    jitter = ((j[0], j[1], j[2]), (j[3], j[4], j[5]))
    if style == "photo":
        grey = 0.24 + 0.24 * u[0]
        background = (grey + 0.08 * u[1], grey + 0.08 * u[2], grey + 0.08 * u[3])
    else:
        shift = 0.05 * u[0] - 0.03
        background = tuple(c + shift for c in _PAPER)
    return Paint(jitter, background, int(u[4] * _TEXTURES), int(u[5] * 8))


def sample_paint(rng: np.random.Generator, style: str) -> Paint:
    """Draw the look of an image (see :class:`Paint`)."""
    return paint_from_uniforms(rng.random(12).tolist(), style)


# Items are counter-based: the uniforms of item i are a hash of (seed, split, i, stream),
# computed for many items at once, so random access costs nothing and batches vectorise.
def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def item_uniforms(seed: int, split: str, indices, count: int = 25, stream: int = 0) -> np.ndarray:
    """``(len(indices), count)`` uniforms in [0, 1): a pure function of the arguments."""
    _check_choice("split", split, SPLITS)
    key = _splitmix64(np.array([(seed * 8 + _SPLIT_CODE[split]) * 4 + stream], np.uint64))
    idx = np.asarray(indices, dtype=np.uint64)[:, None] * np.uint64(64)
    bits = _splitmix64(key ^ _splitmix64(idx + np.arange(count, dtype=np.uint64)))
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def item_rng(seed: int, split: str, index: int, stream: int = 1) -> np.random.Generator:
    """A generator for item ``index``; stream 1 draws its caption and question wording."""
    return np.random.default_rng(int(item_uniforms(seed, split, [index], 1, stream)[0, 0] * 2**53))


# ---------------------------------------------------------------- rendering
_TEXTURES = 64


@lru_cache(maxsize=8)
def _grid(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    centres = np.arange(image_size, dtype=np.float32) + 0.5
    return np.meshgrid(centres, centres)  # X, Y in pixels


@lru_cache(maxsize=8)
def _texture_bank(image_size: int) -> np.ndarray:
    """``(8 * _TEXTURES, H, W)`` grey textures, zero mean: smooth blotches plus grain."""
    import torch.nn.functional as F

    rng = np.random.default_rng(20240601)
    coarse = torch.from_numpy(rng.normal(0.0, 0.07, (_TEXTURES, 1, 5, 5)).astype(np.float32))
    smooth = F.interpolate(coarse, size=image_size, mode="bicubic", align_corners=True)[:, 0]
    bank = smooth.numpy() + rng.normal(0.0, 0.025, (_TEXTURES, image_size, image_size))
    views = [np.rot90(bank, k, axes=(1, 2)) for k in range(4)]
    views += [v[:, :, ::-1] for v in views]
    return np.ascontiguousarray(np.concatenate(views), dtype=np.float32)


_TRI_NORMALS = np.array([[0.0, 1.0], [0.866, -0.5], [-0.866, -0.5]], dtype=np.float32)


def _sdf(shape: str, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Signed distance (pixels, < 0 inside) of one shape kind; ``r`` broadcasts against dx."""
    if shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - r
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - 0.85 * r
    if shape == "triangle":  # apex up; circumradius 1.3 r, inradius half of it
        n = _TRI_NORMALS
        d = np.maximum(n[0, 1] * dy, n[1, 0] * dx + n[1, 1] * dy)
        return np.maximum(d, n[2, 0] * dx + n[2, 1] * dy) - 0.65 * r
    raise ValueError(f"unknown shape {shape!r}; valid values are {SHAPES}")


def signed_distance(obj: Obj, image_size: int) -> np.ndarray:
    """Signed distance in pixels from each pixel to the object's edge (< 0 inside)."""
    X, Y = _grid(image_size)
    return _sdf(obj.shape, X - obj.x * image_size, Y - obj.y * image_size, obj.radius * image_size)


def render_batch(scenes: list[Scene], paints: list[Paint], image_size: int = 32) -> np.ndarray:
    """Draw many scenes at once, vectorised: ``(N, H, W, 3)`` float32 in [0, 1].

    The images are computed together, one style and one object slot at a
    time, which is what makes ShapesWorld fast (``benchmarks/bench_shapes.py``).
    """
    check_image_size(image_size)
    if len(scenes) != len(paints) or not scenes:
        raise ValueError(f"need as many paints as scenes (at least one), got {len(scenes)} "
                         f"scenes and {len(paints)} paints")
    canvas = np.empty((len(scenes), image_size, image_size, 3), np.float32)
    canvas[:] = np.array([p.background for p in paints], np.float32)[:, None, None, :]
    for style in STYLES:
        rows = [i for i, s in enumerate(scenes) if s.style == style]
        if not rows:
            continue
        part = canvas[rows] if len(rows) < len(scenes) else canvas
        if style == "photo":
            views = np.array([paints[i].orientation * _TEXTURES + paints[i].texture for i in rows])
            part += _texture_bank(image_size)[views][..., None]
        _draw_objects(part, [scenes[i] for i in rows], [paints[i] for i in rows], style)
        if part is not canvas:
            canvas[rows] = part
    return np.clip(canvas, 0.0, 1.0, out=canvas)


def _draw_objects(canvas: np.ndarray, scenes: list[Scene], paints: list[Paint], style: str) -> None:
    """Paint every object of ``scenes`` (all of one style) onto ``canvas`` ``(N, S, S, 3)`` in place.

    Each object is drawn inside a square window just big enough for the
    largest object, so the work per image does not grow with the background.
    """
    size = canvas.shape[1]
    window = min(size, int(np.ceil(2 * 1.3 * _RADIUS["large"][1] * size)) + 4)
    offsets = np.arange(window, dtype=np.float32) + 0.5
    for slot in (0, 1):
        rows = np.array([i for i, s in enumerate(scenes) if len(s.objects) > slot])
        if len(rows) == 0:
            break
        objs = [scenes[i].objects[slot] for i in rows]
        geometry = np.array([(o.x, o.y, o.radius) for o in objs], np.float32) * size
        corner = np.clip(np.floor(geometry[:, :2] - window / 2), 0, size - window).astype(np.int64)
        dx = offsets[None, None, :] + (corner[:, 0] - geometry[:, 0])[:, None, None]  # (n, 1, w)
        dy = offsets[None, :, None] + (corner[:, 1] - geometry[:, 1])[:, None, None]  # (n, w, 1)
        r = geometry[:, 2, None, None]
        d = np.empty((len(rows), window, window), np.float32)
        kinds = np.array([SHAPES.index(o.shape) for o in objs])
        for k, shape in enumerate(SHAPES):
            sel = kinds == k
            if sel.any():
                d[sel] = _sdf(shape, dx[sel], dy[sel], r[sel])
        colour = np.array([RGB[o.color] for o in objs], np.float32)
        colour += np.array([paints[i].color_jitter[slot] for i in rows], np.float32)
        colour = np.clip(colour, 0.0, 1.0)[:, None, None, :]
        if style == "photo":  # filled, lit from the top left
            alpha = np.clip(0.5 - d, 0.0, 1.0)
            paint = colour * (1.0 - (0.18 / r) * (dx + dy))[..., None]
        else:  # an outline of constant width
            width = max(1.0, 1.5 * size / 32)
            alpha = np.clip(0.5 * width + 0.5 - np.abs(d), 0.0, 1.0)
            paint = colour
        # (N, S-w+1, S-w+1, 3, w, w): every window of every image, as a view of the canvas
        windows = sliding_window_view(canvas, (window, window), axis=(1, 2), writeable=True)
        index = (rows, corner[:, 1], corner[:, 0])
        patch = windows[index].transpose(0, 2, 3, 1)  # (n, w, w, 3)
        patch += alpha[..., None] * (paint - patch)
        windows[index] = patch.transpose(0, 3, 1, 2)  # each image has one window per slot


def render(scene: Scene, image_size: int = 32, rng: np.random.Generator | None = None,
           paint: Paint | None = None) -> np.ndarray:
    """Draw one scene as an ``(H, W, 3)`` float32 array in [0, 1].

    Args:
        scene: what to draw.
        image_size: height and width in pixels (at least 16).
        rng: draws the look when ``paint`` is not given (default: a fixed generator).
        paint: the look (colour jitter, background, texture).
    """
    if paint is None:
        rng = rng if rng is not None else np.random.default_rng(0)
        paint = sample_paint(rng, scene.style)
    return render_batch([scene], [paint], image_size)[0]


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

    def _index(self, index: int) -> int:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not -self.size <= index < self.size:
            raise IndexError(f"index {index} out of range for a split of {self.size}")
        return int(index) % self.size

    def _items(self, indices) -> list[tuple[Scene, Paint]]:
        """Scene and look of each index, from one vectorised draw of their uniforms."""
        rows = item_uniforms(self.seed, self.split, indices).tolist()
        out = []
        for index, u in zip(indices, rows):
            style = self.style if self.style != "mixed" else _choose(STYLES, u[0])
            num_objects = self.num_objects[index % len(self.num_objects)]
            out.append((scene_from_uniforms(u[1:13], self.split, style, num_objects),
                        paint_from_uniforms(u[13:25], style)))
        return out

    def _scene_and_paint(self, index: int) -> tuple[Scene, Paint]:
        return self._items([self._index(index)])[0]

    def scene(self, index: int) -> Scene:
        """The scene of item ``index``."""
        return self._scene_and_paint(index)[0]

    def image_array(self, index: int) -> np.ndarray:
        """Item ``index`` as an ``(H, W, 3)`` float32 array, before ``transform``."""
        scene, paint = self._scene_and_paint(index)
        return render(scene, self.image_size, paint=paint)

    def captions(self, index: int) -> list[str]:
        """All caption variants of item ``index`` (the first is the canonical one)."""
        from .shapes_text import captions

        index = self._index(index)
        return captions(self.scene(index), item_rng(self.seed, self.split, index, stream=1))

    def caption(self, index: int) -> str:
        """The caption ``__getitem__`` returns: variant ``index % 5`` of :meth:`captions`."""
        variants = self.captions(index)
        return variants[self._index(index) % len(variants)]

    def questions(self, index: int):
        """One question of each kind about item ``index`` (see :func:`shapes_text.questions`)."""
        from .shapes_text import questions

        index = self._index(index)
        return questions(self.scene(index), item_rng(self.seed, self.split, index, stream=1))

    def __getitem__(self, index: int):
        from .shapes_text import captions

        index = self._index(index)
        scene, paint = self._scene_and_paint(index)
        image = torch.from_numpy(render(scene, self.image_size, paint=paint)).permute(2, 0, 1)
        variants = captions(scene, item_rng(self.seed, self.split, index, stream=1))
        target = attributes(scene)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, variants[index % len(variants)], target

    def render_all(self, batch_size: int = 256) -> np.ndarray:
        """Every image of the split, rendered in vectorised batches: ``(N, H, W, 3)`` uint8."""
        out = np.empty((self.size, self.image_size, self.image_size, 3), np.uint8)
        for start in range(0, self.size, batch_size):
            items = self._items(range(start, min(start + batch_size, self.size)))
            images = render_batch([s for s, _ in items], [p for _, p in items], self.image_size)
            out[start:start + len(items)] = np.round(images * 255.0)
        return out

    def tensors(self, cache: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The whole split at once: images ``(N, 3, H, W)`` float32 and attribute tensors ``(N,)``.

        Images are stored as 8-bit, so they differ from ``self[i][0]`` by at
        most 1/510. With ``cache=True`` they are kept under ``data/cache``
        (written atomically, verified on load, rebuilt when corrupt).
        """
        from .cache import cached_array

        key = (f"shapes-v2-{self.split}-{self.size}-{self.image_size}-{self.style}-"
               f"{'-'.join(map(str, self.num_objects))}-{self.seed}")
        pixels = cached_array(key, self.render_all) if cache else self.render_all()
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0)
        labels = [attributes(scene) for scene, _ in self._items(range(self.size))]
        attrs = {k: torch.tensor([row[k] for row in labels]) for k in ATTRIBUTE_KEYS}
        return images, attrs
