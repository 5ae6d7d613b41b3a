"""Scenes for cross-modal reasoning: several coloured shapes, placed so that every relation is
clear, and the scene graph a program runs on.

A scene holds 3–6 objects by default (2–8 allowed), made of ShapesWorld's
:data:`~cmlib.data.shapes.world.SHAPES`, :data:`~cmlib.data.shapes.world.COLORS` and
:data:`~cmlib.data.shapes.world.SIZES`, as a :class:`~cmlib.data.shapes.world.Scene` of
:class:`~cmlib.data.shapes.world.Obj` (``position`` and ``relation`` stay ``None``). Radii are
smaller than in the one-object world (:data:`RADIUS_RANGE`) so that eight objects fit, and the
placement guarantees two things:

* no two objects touch: their bounding circles (:data:`EXTENT` times the radius, which holds
  any of the three shapes) are at least :data:`MARGIN` apart, and each is at least
  :data:`BORDER` inside the frame;
* the relations ("left of", "right of", "above", "below") compare the objects' *centres*, and
  any two centres differ by at least :data:`GAP` along x *and* along y (4.8 pixels at 48), so
  every pair is related along both axes, by a visible margin. (An object's edge may still overhang
  another's centre line: relations are about centres, not about whole shapes.)

CoGenT-style conditions (:data:`CONDITIONS`) restrict which colours circles and squares may
take, in complementary halves (:func:`allowed_pairs`), so that a model trained in one condition
can be tested on the pairs only the other holds.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ...validate import check_choice, check_int, check_type, describe
from ..shapes.render import Paint, paint_from_uniforms
from ..shapes.world import COLORS, RELATIONS, SHAPES, SIZES, STYLES, Obj, Scene, choose

MIN_OBJECTS, MAX_OBJECTS = 2, 8
DEFAULT_NUM_OBJECTS = (3, 6)
#: Radius range of each size, as fractions of the image size (smaller than ShapesWorld's).
RADIUS_RANGE = {"small": (0.055, 0.065), "large": (0.085, 0.095)}
#: A triangle's corners lie 1.3 radii from its centre: the bounding circle of every shape.
EXTENT = 1.3
#: Least distance between two objects' bounding circles, and between one and the frame.
MARGIN, BORDER = 0.015, 0.01
#: Least difference between two centres along x and along y: 4.8 pixels at 48. The largest
#: value in [0.08, 0.10] at which eight large objects still place reliably (:func:`place`).
GAP = 0.10
#: CoGenT conditions: in "A" circles take the first half of the colours and squares the second;
#: "B" swaps them; triangles take any colour in both.
CONDITIONS = ("A", "B")
COLOR_HALVES = (("red", "blue", "yellow"), ("green", "purple", "orange"))
#: Uniforms one scene's look takes (:func:`scene_paint`): ShapesWorld's 12, then 3 per object
#: beyond the second.
PAINT_UNIFORMS = 12 + 3 * (MAX_OBJECTS - 2)
_RESTARTS, _STEPS = 50, 1000  # fresh coordinates per scene; search steps per coordinates


@lru_cache(maxsize=4)
def allowed_pairs(condition: str | None = None) -> tuple[tuple[str, str], ...]:
    """The (colour, shape) pairs a condition allows: every pair for ``None``.

    Raises:
        ValueError: for a condition other than ``None``, ``"A"`` or ``"B"``.
    """
    if condition is None:
        return tuple((c, s) for c in COLORS for s in SHAPES)
    check_choice("condition", condition, CONDITIONS)
    circles, squares = COLOR_HALVES if condition == "A" else COLOR_HALVES[::-1]
    allowed = {"circle": circles, "square": squares, "triangle": COLORS}
    return tuple((c, s) for c in COLORS for s in SHAPES if c in allowed[s])


def check_rng(rng) -> None:
    """``TypeError`` unless ``rng`` has a ``random()`` method, the one draw cmlib asks of it."""
    if not callable(getattr(rng, "random", None)):
        raise TypeError(
            "rng must be a random number generator with a random() method (random.Random(seed) "
            f"or numpy.random.default_rng(seed)), got {describe(rng)}"
        )


def check_num_objects(num_objects) -> tuple[int, int]:
    """``num_objects`` (an int or a ``(low, high)`` pair) as ``(low, high)``, checked.

    Raises:
        TypeError: if it is neither an int nor a pair of ints.
        ValueError: if a count lies outside [2, 8] or ``low > high``.
    """
    if isinstance(num_objects, (int, np.integer)) and not isinstance(num_objects, bool):
        num_objects = (num_objects, num_objects)
    check_type("num_objects", num_objects, (tuple, list), "an int or a (low, high) pair")
    if len(num_objects) != 2:
        raise ValueError(f"num_objects must be an int or a (low, high) pair, got {num_objects!r}")
    low = check_int("num_objects[0]", num_objects[0], MIN_OBJECTS, MAX_OBJECTS)
    high = check_int("num_objects[1]", num_objects[1], MIN_OBJECTS, MAX_OBJECTS)
    if low > high:
        raise ValueError(f"num_objects must be (low, high) with low <= high, got {num_objects!r}")
    return low, high


# ---------------------------------------------------------------- placement
def shuffled(rng, items) -> list:
    """A uniform permutation (Fisher–Yates from ``rng.random()``, the one draw every rng has)."""
    items = list(items)
    for i in range(len(items) - 1, 0, -1):
        j = min(int(rng.random() * (i + 1)), i)
        items[i], items[j] = items[j], items[i]
    return items


def spaced(rng, n: int, low: float, high: float, gap: float) -> list[float] | None:
    """``n`` sorted values in ``[low, high]``, neighbours at least ``gap`` apart, drawn uniformly
    among all such sets; ``None`` if they cannot fit.

    Why not draw values one by one and keep those far enough from the others: like cars parking
    at random along a kerb, they jam long before the kerb is full (Rényi's parking problem), and
    eight values 0.1 apart would rarely fit. Sorting ``n`` uniform draws in
    ``[0, slack]`` and pushing the k-th up by ``k * gap`` never jams.
    """
    slack = high - low - (n - 1) * gap
    if slack < 0:
        return None
    draws = sorted(slack * rng.random() for _ in range(n))
    return [low + v + k * gap for k, v in enumerate(draws)]


def _assign(rng, xs: list[float], ys: list[float], reach: list[float]) -> dict | None:
    """Which object takes which ``(xs[a], ys[b])``, no two sharing an ``a`` or a ``b`` and no
    two closer than their reaches and :data:`MARGIN`: ``{object: (x, y)}``, or ``None``.

    A depth-first search, largest objects first (fewer dead ends), each taking a random cell
    still open to it; after each choice the later objects' open cells are filtered, so a dead end
    shows at once and the search steps back. At most ``_STEPS`` choices.
    """
    order = sorted(range(len(reach)), key=lambda i: -reach[i])
    steps = [_STEPS]

    def search(k: int, open_cells: dict, chosen: dict) -> dict | None:
        if k == len(order):
            return chosen
        i = order[k]
        for a, b in shuffled(rng, open_cells[i]):
            steps[0] -= 1
            if steps[0] < 0:
                return None
            later = {}
            for j in order[k + 1 :]:
                far = reach[i] + reach[j] + MARGIN
                later[j] = [
                    (c, d)
                    for c, d in open_cells[j]
                    if c != a and d != b and (xs[c] - xs[a]) ** 2 + (ys[d] - ys[b]) ** 2 >= far**2
                ]
                if not later[j]:
                    break  # object j would find no room: try another cell for object i
            else:
                found = search(k + 1, later, {**chosen, i: (xs[a], ys[b])})
                if found is not None:
                    return found
        return None

    cells = [(a, b) for a in range(len(xs)) for b in range(len(ys))]
    return search(0, dict.fromkeys(order, cells), {})


def place(rng, sizes: list[str]) -> list[tuple[float, float, float]] | None:
    """Centres and radii ``(x, y, radius)`` for objects of these sizes, or ``None`` on failure.

    First ``n`` x-values and ``n`` y-values, each set :func:`spaced` by :data:`GAP`, so every
    relation holds by construction; each object takes one x and one y (:func:`_assign`), so
    that no two objects come closer than :data:`MARGIN`. The values keep the largest object's
    distance from the frame, so any object may take any of them. A failed assignment draws new
    values, at most ``_RESTARTS`` times. ``rng`` is anything with a ``random()`` method
    (``random.Random`` or a numpy ``Generator``).
    """
    radii = [lo + (hi - lo) * rng.random() for lo, hi in (RADIUS_RANGE[s] for s in sizes)]
    reach = [EXTENT * r for r in radii]
    low = max(reach) + BORDER
    for _ in range(_RESTARTS):
        xs, ys = (
            spaced(rng, len(sizes), low, 1.0 - low, GAP),
            spaced(rng, len(sizes), low, 1.0 - low, GAP),
        )
        if xs is None or ys is None:
            return None  # no draw can fit: GAP is too large for this many objects
        chosen = _assign(rng, xs, ys, reach)
        if chosen is not None:
            return [(*chosen[i], radii[i]) for i in range(len(sizes))]
    return None


def place_objects(rng, sizes) -> list[tuple[float, float, float]]:
    """:func:`place`, with its arguments checked and a clear error where it fails.

    Args:
        rng: anything with ``random()`` (``random.Random`` or a numpy ``Generator``).
        sizes: a list of 2–8 sizes (``"small"`` or ``"large"``), one per object.

    Returns:
        One ``(x, y, radius)`` per object, in the order of ``sizes``.

    Raises:
        TypeError: if ``rng`` has no ``random()``, or ``sizes`` is not a list or tuple.
        ValueError: for an unknown size, a count outside 2..8, or objects that could not be
            placed.
    """
    check_rng(rng)
    check_type("sizes", sizes, (list, tuple), "a list of sizes, one per object")
    for size in sizes:
        check_choice("size", size, SIZES)
    check_int("number of objects", len(sizes), MIN_OBJECTS, MAX_OBJECTS)
    places = place(rng, list(sizes))
    if places is None:
        raise ValueError(
            f"could not place {len(sizes)} objects ({list(sizes).count('large')} large) with "
            f"centres {GAP} apart along x and y, without overlap, in {_RESTARTS} attempts; "
            "use fewer objects"
        )
    return places


def sample_scene(rng, num_objects=DEFAULT_NUM_OBJECTS, condition=None, style="photo") -> Scene:
    """A random scene: a uniform number of objects in ``num_objects``, uniform pairs and sizes.

    Args:
        rng: anything with ``random()`` (``random.Random`` or a numpy ``Generator``).
        num_objects: an int, or the ``(low, high)`` range the count is drawn from.
        condition: ``None``, ``"A"`` or ``"B"`` (see :func:`allowed_pairs`).
        style: ``"photo"`` or ``"sketch"``.

    Raises:
        TypeError: if ``rng`` has no ``random()``.
        ValueError: for an invalid count, condition or style.
    """
    check_rng(rng)
    low, high = check_num_objects(num_objects)
    check_choice("style", style, STYLES)
    pairs = allowed_pairs(condition)
    n = low + min(int(rng.random() * (high - low + 1)), high - low)
    triples = [(choose(SIZES, rng.random()), *choose(pairs, rng.random())) for _ in range(n)]
    places = place_objects(rng, [t[0] for t in triples])
    return make_scene(triples, places, style)


def make_scene(triples, places, style: str = "photo") -> Scene:
    """The scene of ``(size, colour, shape)`` triples at ``(x, y, radius)`` places."""
    objects = tuple(
        Obj(shape, color, size, x, y, r) for (size, color, shape), (x, y, r) in zip(triples, places)
    )
    return Scene(objects, style)


def paint_uniforms(num_objects: int) -> int:
    """How many uniforms :func:`scene_paint` reads for a scene of ``num_objects`` objects."""
    return 12 + 3 * max(0, num_objects - 2)


def scene_paint(u, scene: Scene) -> Paint:
    """The look of a scene from uniforms: one colour jitter per object.

    The first 12 uniforms give ShapesWorld's look (background, texture, two jitters); each
    further object takes three more (:func:`paint_uniforms`; :data:`PAINT_UNIFORMS` serves any
    scene).

    Raises:
        TypeError: if ``scene`` is not a Scene, or ``u`` is not a sequence of numbers.
        ValueError: if ``u`` holds fewer uniforms than the scene needs.
    """
    check_type("scene", scene, Scene)
    if not hasattr(u, "__len__") or not hasattr(u, "__getitem__"):
        raise TypeError(f"u must be a sequence of uniforms in [0, 1), got {describe(u)}")
    need = paint_uniforms(len(scene.objects))
    if len(u) < need:
        raise ValueError(
            f"a scene of {len(scene.objects)} objects needs {need} uniforms (12, and 3 per "
            f"object beyond the second), got {len(u)}"
        )
    base = paint_from_uniforms(list(u[:12]), scene.style)
    extra = [0.08 * v - 0.04 for v in u[12:PAINT_UNIFORMS]]  # ShapesWorld's jitter range
    jitter = base.color_jitter + tuple(
        (extra[k], extra[k + 1], extra[k + 2]) for k in range(0, len(extra), 3)
    )
    return Paint(jitter[: len(scene.objects)], base.background, base.texture, base.orientation)


# ---------------------------------------------------------------- scene graph
def relations_of(xs: list[float], ys: list[float]) -> dict[str, list[list[int]]]:
    """``{relation: [ids of the objects that are <relation> object i, for each i]}``: the rule
    :func:`scene_graph` uses, on centres ``xs`` and ``ys``.

    Image coordinates: x grows to the right and y downwards, so "above" means a smaller y. The
    executor calls it for a scene graph without ``relations`` (one a perception model wrote).
    """
    n = range(len(xs))
    return {
        "left of": [[j for j in n if xs[j] < xs[i]] for i in n],
        "right of": [[j for j in n if xs[j] > xs[i]] for i in n],
        "above": [[j for j in n if ys[j] < ys[i]] for i in n],
        "below": [[j for j in n if ys[j] > ys[i]] for i in n],
    }


def scene_graph(scene: Scene) -> dict:
    """The scene as plain data: each object's attributes, and every pairwise relation.

    Returns:
        ``{"objects": [{"shape", "color", "size", "x", "y"}, ...], "relations": {...}}``:
        object ``i`` is ``objects[i]``; ``relations["left of"][i]`` lists the objects that are
        left of object ``i`` (likewise for every name in
        :data:`~cmlib.data.shapes.world.RELATIONS`). Only lists, dicts, strings and numbers,
        so it prints, compares and serialises as it is.

    Raises:
        TypeError: if ``scene`` is not a Scene.
        ValueError: if it has no object.
    """
    check_type("scene", scene, Scene)
    if not scene.objects:
        raise ValueError("a scene graph needs at least one object, got an empty scene")
    objects = [
        {"shape": o.shape, "color": o.color, "size": o.size, "x": round(o.x, 3), "y": round(o.y, 3)}
        for o in scene.objects
    ]
    relations = relations_of([o.x for o in scene.objects], [o.y for o in scene.objects])
    return {"objects": objects, "relations": relations}


def format_scene_graph(graph: dict) -> str:
    """A scene graph as lines a reader can check against the image.

    Example: ``0: large red circle at (0.31, 0.62); left of 1, 3; above 3``.
    """
    lines = []
    for i, o in enumerate(graph["objects"]):
        parts = [f"{i}: {o['size']} {o['color']} {o['shape']} at ({o['x']:.2f}, {o['y']:.2f})"]
        for rel in RELATIONS:
            # object i is <rel> object k when i appears in relations[rel][k]
            others = [k for k, ids in enumerate(graph["relations"][rel]) if i in ids]
            if others:
                parts.append(f"{rel} {', '.join(map(str, others))}")
        lines.append("; ".join(parts))
    return "\n".join(lines)
