"""ShapesWorld's renderer: scenes become images, many at once, vectorised.

Two styles:

* ``photo`` — filled, shaded shapes on a textured background;
* ``sketch`` — coloured outlines on plain light paper.

The random look of an image (colour jitter, background, texture) is a :class:`Paint`, drawn
from uniforms like the scene itself, so the same scene can be rendered in both styles.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from ...validate import check_int
from .world import MIN_IMAGE_SIZE, RADIUS_RANGE, RGB, SHAPES, STYLES, Obj, Scene


@dataclass(frozen=True)
class Paint:
    """The random look of one image: colour jitter, background and texture choice."""

    color_jitter: tuple[tuple[float, float, float], ...]  # one RGB offset per object
    background: tuple[float, float, float]  # photo base colour or sketch paper
    texture: int  # index into the texture bank
    orientation: int  # 0..7: rotations and flips


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
        raise ValueError(
            f"need as many paints as scenes (at least one), got {len(scenes)} "
            f"scenes and {len(paints)} paints"
        )
    for i, (scene, paint) in enumerate(zip(scenes, paints)):
        if len(paint.color_jitter) < len(scene.objects):
            raise ValueError(
                f"need one colour jitter per object, got {len(paint.color_jitter)} in paint {i} "
                f"for a scene of {len(scene.objects)} objects"
            )
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
    """Paint every object of ``scenes`` (all of one style) onto ``canvas`` ``(N, S, S, 3)`` in
    place.

    Each object is drawn inside a square window just big enough for the
    largest object, so the work per image does not grow with the background.
    """
    size = canvas.shape[1]
    window = min(size, int(np.ceil(2 * 1.3 * RADIUS_RANGE["large"][1] * size)) + 4)
    offsets = np.arange(window, dtype=np.float32) + 0.5
    for slot in range(max(len(s.objects) for s in scenes)):  # one pass per object slot
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


def render(
    scene: Scene,
    image_size: int = 32,
    rng: np.random.Generator | None = None,
    paint: Paint | None = None,
) -> np.ndarray:
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
    """``TypeError`` unless an int, ``ValueError`` if too small to draw a shape."""
    check_int("image_size", image_size, minimum=None)
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(
            f"image_size must be at least {MIN_IMAGE_SIZE} pixels to draw, got {image_size}"
        )
