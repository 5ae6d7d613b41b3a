"""Chapter 00 exercises: the mechanism, on ShapesWorld scenes; 0.3, the course's first
predict-then-run question (the colour–shape pairs in the training split)."""

from __future__ import annotations

import numpy as np

from ..data.shapes import COLORS, Obj, Scene, sample_scene
from ..data.shapes.text import POSITION_WORDS, canonical_caption
from . import Exercise, register, register_prediction


def count_color(scene: Scene, color: str) -> int:
    """How many objects of ``scene`` have colour ``color``."""
    return sum(obj.color == color for obj in scene.objects)


def _random_scene_and_colour(rng: np.random.Generator) -> tuple[Scene, str]:
    scene = sample_scene(rng, "train", "photo", int(rng.integers(1, 3)))
    present = [o.color for o in scene.objects]
    colour = present[0] if rng.random() < 0.5 else COLORS[rng.integers(len(COLORS))]
    return scene, colour


def _edge_cases() -> tuple[tuple[Scene, str], ...]:
    red, blue = (
        Obj("circle", "red", "small", 0.3, 0.5, 0.1),
        Obj("square", "blue", "large", 0.7, 0.5, 0.15),
    )
    both_red = Scene(
        (red, Obj("square", "red", "large", 0.7, 0.5, 0.15)), "photo", relation="left of"
    )
    red_blue = Scene((red, blue), "photo", relation="left of")
    return ((both_red, "red"), (red_blue, "blue"), (red_blue, "green"))


register(
    Exercise(
        id="0.1",
        title="count the objects of one colour",
        hint="loop over scene.objects and compare each obj.color with the colour asked for",
        reference=count_color,
        make_inputs=_random_scene_and_colour,
        wrong_answers=(
            lambda scene, color: len(scene.objects),  # ignores the colour
            lambda scene, color: int(scene.objects[0].color == color),  # looks at one object only
        ),
        cases=_edge_cases(),
        trials=20,
    )
)


def _random_one_object_scene(rng: np.random.Generator) -> tuple[Scene]:
    return (sample_scene(rng, "train", "photo", 1),)


register(
    Exercise(
        id="0.2",
        title="write the canonical caption of a one-object scene",
        hint="'a {size} {color} {shape} {where}', where `where` is "
        "POSITION_WORDS[scene.position][0] (for example 'on the left')",
        reference=canonical_caption,
        make_inputs=_random_one_object_scene,
        wrong_answers=(
            lambda scene: "a {0.size} {0.color} {0.shape} {1}".format(
                scene.objects[0], scene.position
            ),
            lambda scene: "a {0.color} {0.shape} {1}".format(
                scene.objects[0], POSITION_WORDS[scene.position][0]
            ),  # forgets the size
        ),
        trials=20,
    )
)


register_prediction(
    "0.3",
    "how many of the 18 colour–shape pairs appear in 2,000 training images",
    {"a": "all 18", "b": "15", "c": "fewer than 15"},
    "b",  # backed by the checkpoints no-heldout-pair-in-train and other-pairs-in-train
)
