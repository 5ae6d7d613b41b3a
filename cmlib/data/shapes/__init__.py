"""ShapesWorld: the course's procedurally generated image–text dataset.

One or two coloured shapes per image, in a ``photo`` or a ``sketch`` style, with exact
attributes, captions with synonyms, question–answer pairs and prompts. Nothing is
downloaded: item ``i`` of a split is a pure function of the seed, the split and ``i``.

The package, from the world outwards (each module imports only those above it):

* :mod:`~cmlib.data.shapes.world` — colours, shapes, splits, scenes and how they are sampled;
* :mod:`~cmlib.data.shapes.render` — scenes to images, vectorised, in both styles;
* :mod:`~cmlib.data.shapes.text` — captions, questions and the vocabulary;
* :mod:`~cmlib.data.shapes.prompt_text` — prompts for the generators of chapter 04;
* :mod:`~cmlib.data.shapes.dataset` — :class:`ShapesWorld`, the torch ``Dataset``;
* :mod:`~cmlib.data.shapes.vqa` and :mod:`~cmlib.data.shapes.tasks` — the per-chapter data
  (VQA, partial views, the word-order task, chapter 04's photos).

The names most chapters need are importable from here: ``from cmlib.data.shapes import
ShapesWorld, COLORS, SHAPES``.
"""

from .dataset import ShapesWorld
from .render import render, render_batch, signed_distance
from .world import (
    ALL_PAIRS,
    ATTRIBUTE_KEYS,
    COLORS,
    HELDOUT_PAIRS,
    POSITIONS,
    RELATIONS,
    RGB,
    SEEN_PAIRS,
    SHAPES,
    SIZES,
    SPLITS,
    STYLES,
    Obj,
    Scene,
    attributes,
    pair_label,
    sample_scene,
)

__all__ = [
    "ALL_PAIRS",
    "ATTRIBUTE_KEYS",
    "COLORS",
    "HELDOUT_PAIRS",
    "POSITIONS",
    "RELATIONS",
    "RGB",
    "SEEN_PAIRS",
    "SHAPES",
    "SIZES",
    "SPLITS",
    "STYLES",
    "Obj",
    "Scene",
    "ShapesWorld",
    "attributes",
    "pair_label",
    "render",
    "render_batch",
    "sample_scene",
    "signed_distance",
]
