"""Chapter 00 exercise: the mechanism, on a ShapesWorld scene."""

from __future__ import annotations

import numpy as np

from ..data.shapes import COLORS, Obj, Scene, sample_scene
from . import Exercise, register


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
