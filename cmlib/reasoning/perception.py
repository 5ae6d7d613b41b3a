"""Seeing a reasoning scene: a cell tagger fine enough for one object per cell, and the scene
graph read off its tags.

Chapter 05's backbone tags the cells of an 8-pixel grid (:class:`~cmlib.backbone.GridTagger`).
A reasoning scene holds up to eight small objects whose centres differ by at least
:data:`~cmlib.data.reasoning.scenes.GAP` (a tenth of the image) along each axis, so two of them
can share an 8-pixel cell of a 48-pixel image, but never a 4-pixel one. The tagger here is the
same class on an encoder with ``cell_size=4`` (a 12 × 12 grid at 48 pixels): each object is
tagged in the cell that holds its centre.

* :func:`cell_labels` — each cell's colour, shape and size (background last), from the scenes;
* :func:`build_scene_tagger`, :func:`train_scene_tagger` — the tagger, trained with
  :func:`cmlib.backbone.train_backbone` (chapter 05's loss and loop);
* :func:`parse_scenes` — tags → scene graphs (``{"objects": [...]}``), with each object at its
  cell's centre: what the neuro-symbolic model runs its programs on;
* :func:`tag_accuracy` — how well the parse matches the true scenes, per attribute and in count.

The frozen encoder's feature grid is also what the neural reasoners read
(:func:`cmlib.backbone.grid_features`): one backbone, several ways to reason on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch.nn import functional as F

from ..backbone import GridTagger, train_backbone
from ..data.reasoning.scenes import GAP
from ..data.shapes.world import COLORS, SHAPES, SIZES, Scene
from ..train import History, predict
from ..validate import check_int, check_number, check_tensor, check_type
from ..vision import ConvEncoder

#: The tagger's heads: each attribute's values, background last (``len(values)``).
ATTRIBUTES: dict[str, tuple[str, ...]] = {"color": COLORS, "shape": SHAPES, "size": SIZES}
HEADS: dict[str, int] = {name: len(values) + 1 for name, values in ATTRIBUTES.items()}
#: Pixels per cell side: the grid is ``image_size / CELL_SIZE`` cells wide.
CELL_SIZE = 4


def check_grid_size(grid_size: int) -> None:
    """A grid too coarse for :data:`GAP` could put two objects in one cell."""
    check_int("grid_size", grid_size)
    if grid_size * GAP < 1:
        raise ValueError(
            f"a grid of {grid_size} cells per side could put two objects in one cell (their "
            f"centres are only {GAP} of the image apart); use at least {int(1 / GAP)} cells, "
            f"i.e. images of at least {int(1 / GAP) * CELL_SIZE} pixels"
        )


def cell_labels(scenes: Sequence[Scene], grid_size: int) -> dict[str, torch.Tensor]:
    """Each cell's colour, shape and size index, or the background label, for each scene.

    An object is tagged in the one cell that holds its centre.

    Returns:
        ``{"color": (N, g, g), "shape": ..., "size": ...}`` int64; background is
        ``len(ATTRIBUTES[name])``.

    Raises:
        ValueError: for a grid too coarse to keep objects apart, or two objects in one cell.
    """
    check_grid_size(grid_size)
    if not isinstance(scenes, Sequence) or not scenes:
        raise ValueError(f"scenes must be a non-empty sequence of Scene, got {scenes!r}")
    labels = {
        name: torch.full((len(scenes), grid_size, grid_size), len(values), dtype=torch.long)
        for name, values in ATTRIBUTES.items()
    }
    for i, scene in enumerate(scenes):
        check_type(f"scenes[{i}]", scene, Scene)
        for obj in scene.objects:
            row, col = _cell(obj.y, grid_size), _cell(obj.x, grid_size)
            if labels["color"][i, row, col] != len(COLORS):
                raise ValueError(f"scenes[{i}] has two objects in cell ({row}, {col})")
            for name, values in ATTRIBUTES.items():
                labels[name][i, row, col] = values.index(getattr(obj, name))
    return labels


def _cell(coordinate: float, grid_size: int) -> int:
    return min(int(coordinate * grid_size), grid_size - 1)


def build_scene_tagger(image_size: int = 48, width: int = 16) -> GridTagger:
    """A :class:`GridTagger` with :data:`HEADS` on an encoder of :data:`CELL_SIZE`-pixel cells.

    Shapes:
        ``(B, 3, S, S)`` → ``{name: (B, HEADS[name], S / 4, S / 4)}`` logits.
    """
    check_int("image_size", image_size)
    check_grid_size(image_size // CELL_SIZE)
    encoder = ConvEncoder(image_size=image_size, width=width, embed_dim=64, cell_size=CELL_SIZE)
    return GridTagger(encoder, HEADS)


def scene_grids(
    encoder: ConvEncoder, dataset, items: Sequence, device: torch.device, chunk: int = 2000
) -> torch.Tensor:
    """The frozen encoder's feature grids of the items' images, in float16, rendered and encoded
    ``chunk`` images at a time (the images themselves are never all held): what the reasoners
    train on, computed once.

    Args:
        encoder: the scene tagger's encoder (``tagger.encoder``).
        dataset: the :class:`~cmlib.data.reasoning.ReasoningDataset` that renders the items.
        items: its items.
        device: where the encoder runs.
        chunk: images per rendering.

    Returns:
        ``(N, C, g, g)`` float16, on the CPU.
    """
    check_type("encoder", encoder, ConvEncoder)
    check_int("chunk", chunk)
    if not items:
        raise ValueError("items must not be empty")
    grids = []
    for lo in range(0, len(items), chunk):
        images = torch.from_numpy(dataset.images(items[lo : lo + chunk])).permute(0, 3, 1, 2)
        grids.append(predict(encoder.feature_map, images, device, 512).half())
    return torch.cat(grids)


def train_scene_tagger(
    tagger: GridTagger,
    images: torch.Tensor,
    scenes: Sequence[Scene],
    num_epochs: int,
    device: torch.device,
    **options,
) -> History:
    """Train ``tagger`` on the scenes' cell labels (:func:`cell_labels`), chapter 05's way.

    Args:
        tagger: from :func:`build_scene_tagger`.
        images: ``(N, 3, S, S)``, image ``i`` showing ``scenes[i]``.
        scenes: what the images show.
        num_epochs: passes over the images.
        device: where to train.
        options: ``batch_size``, ``lr``, ``background_weight``, ``color_invariant``, ``seed``,
            ``progress``, as in :func:`cmlib.backbone.train_backbone`.

    Returns:
        The :class:`~cmlib.train.History`; the tagger ends in eval mode, its encoder frozen.
    """
    check_type("tagger", tagger, GridTagger)
    check_tensor("images", images, (len(scenes), 3, "S", "S"), floating=True, nonempty=True)
    cells = cell_labels(scenes, tagger.encoder.grid_size)
    return train_backbone(tagger, images, cells, num_epochs, device, **options)


def _objects(logits: Mapping[str, torch.Tensor], threshold: float) -> list[dict]:
    """One image's tags ``{name: (L, g, g)}`` → its objects, in reading order.

    A cell is an object when its mean background probability is below ``threshold`` *and* no
    cell beside it (up, down, left or right) is more surely one: an object's edge can spill
    into the next cell, and two objects' centres never share a row or a column of cells (they
    are more than a cell apart along both axes), so the weaker of two such neighbours is the
    same object seen twice (non-maximum suppression).
    """
    grid = next(iter(logits.values())).shape[-1]
    background = torch.stack([F.softmax(v, dim=0)[-1] for v in logits.values()]).mean(0)
    objectness = 1 - background
    padded = F.pad(objectness, (1, 1, 1, 1))
    beside = torch.stack(
        [padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]]
    ).amax(0)
    keep = (background < threshold) & (objectness >= beside)
    objects = []
    for row, col in keep.nonzero().tolist():
        obj = {
            name: ATTRIBUTES[name][int(logits[name][:-1, row, col].argmax())] for name in ATTRIBUTES
        }
        obj.update(x=round((col + 0.5) / grid, 3), y=round((row + 0.5) / grid, 3))
        objects.append(obj)
    return objects


@torch.no_grad()
def parse_scenes(
    tagger: GridTagger,
    images: torch.Tensor,
    device: torch.device,
    threshold: float = 0.5,
    batch_size: int = 512,
) -> list[dict]:
    """Read each image as a scene graph: an object wherever the tagger sees one.

    A cell holds an object when the three heads' mean probability of background is below
    ``threshold`` and no cell beside it is more surely an object (see :func:`_objects`); its
    attributes are each head's likeliest non-background label, and its position the cell's
    centre. Relations are left to the executor, which works them out from
    ``x`` and ``y`` (:func:`~cmlib.data.reasoning.scenes.relations_of`): cell centres keep every
    pair in order, because two objects are always at least one cell apart along each axis.

    Returns:
        One ``{"objects": [{"color", "shape", "size", "x", "y"}, ...]}`` per image, ready for
        :func:`~cmlib.data.reasoning.execute`; ``objects`` is empty where nothing was seen.
    """
    check_type("tagger", tagger, GridTagger)
    check_number("threshold", threshold, 0.0, 1.0, low_open=True, high_open=True)
    if set(tagger.heads) != set(HEADS):
        raise ValueError(f"the tagger needs the heads {sorted(HEADS)}, got {sorted(tagger.heads)}")
    tags = predict(tagger, images, device, batch_size)
    return [
        {"objects": _objects({name: t[i] for name, t in tags.items()}, threshold)}
        for i in range(len(images))
    ]


def tag_accuracy(
    graphs: Sequence[dict], scenes: Sequence[Scene], grid_size: int
) -> dict[str, float]:
    """How far parsed scene graphs (:func:`parse_scenes`, on a ``grid_size`` grid) match the
    true scenes.

    Returns:
        ``count`` (the fraction of images with the right number of objects) and, over the true
        objects, ``found`` (an object parsed in the cell of its centre or a cell beside it) and
        ``color``, ``shape``, ``size``, ``all`` (found *and* read right).
    """
    check_int("grid_size", grid_size)
    if len(graphs) != len(scenes) or not scenes:
        raise ValueError(
            f"graphs and scenes must be non-empty and as many, got {len(graphs)} and {len(scenes)}"
        )
    count = found = total = 0
    right = dict.fromkeys([*ATTRIBUTES, "all"], 0)
    for graph, scene in zip(graphs, scenes):
        objects = graph["objects"]
        count += len(objects) == len(scene.objects)
        cells = [(_cell(o["y"], grid_size), _cell(o["x"], grid_size)) for o in objects]
        used: set[int] = set()
        for obj in scene.objects:
            total += 1
            k = _match((_cell(obj.y, grid_size), _cell(obj.x, grid_size)), cells, used)
            if k is None:
                continue
            used.add(k)
            found += 1
            ok = [objects[k][name] == getattr(obj, name) for name in ATTRIBUTES]
            for name, good in zip(ATTRIBUTES, ok):
                right[name] += good
            right["all"] += all(ok)
    return {
        "count": count / len(scenes),
        "found": found / total,
        **{name: value / total for name, value in right.items()},
    }


def _match(cell: tuple[int, int], cells: list[tuple[int, int]], used: set[int]) -> int | None:
    """The parsed object in ``cell``, else in a cell beside it (where an object whose centre
    is near a cell's edge can be read), not matched yet; ``None`` if there is none."""
    for reach in (0, 1):
        for k, (row, col) in enumerate(cells):
            if k not in used and abs(row - cell[0]) + abs(col - cell[1]) == reach:
                return k
    return None
