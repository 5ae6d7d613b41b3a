"""The referees that score every translation in chapter 06, shipped as a long-run model.

Three models: an :class:`~cmlib.judge.AttributeJudge` for each style, trained on that style
only, and the photo-or-sketch :class:`~cmlib.cyclegan.evaluation.StyleClassifier`. They are
trained once by ``make models NAMES="ch06-referees"`` (:mod:`cmlib.longrun.cyclegan`, the
recipe and the evidence) and loaded here, so that every part of the chapter, every seed and
the long-run CycleGAN are scored by the same instrument.

Why they are shipped rather than trained in each notebook: a referee of generated images has
to read through small errors that keep colour and shape (a blur, a one-pixel shift, a little
noise). Judges trained for seconds on clean images could not: they read blurred true sketches
at 0.33. The robust ones need 20 epochs of a wider network, three minutes on two cores.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..judge import AttributeJudge
from ..longrun import store
from ..validate import check_int
from .evaluation import StyleClassifier

#: The long-run recipe that trains the referees, and the seed the chapter uses.
RECIPE_NAME, SEED = "ch06-referees", 0
#: The styles, each with its own judge.
STYLES = ("photo", "sketch")


def build_referees(config: dict[str, Any]) -> nn.ModuleDict:
    """``photo`` and ``sketch`` (an :class:`AttributeJudge` each, ``config["judge_width"]``
    wide) and ``style`` (a :class:`StyleClassifier`), for ``config["image_size"]`` images.

    Raises:
        KeyError: if ``config`` lacks one of those keys; ``TypeError``/``ValueError`` for a bad
            value.
    """
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    size = check_int("config['image_size']", config["image_size"], minimum=4)
    width = check_int("config['judge_width']", config["judge_width"])
    return nn.ModuleDict(
        {
            "photo": AttributeJudge(size, width),
            "sketch": AttributeJudge(size, width),
            "style": StyleClassifier(size),
        }
    )


def shipped_referees(
    device: torch.device, seed: int = SEED
) -> tuple[dict[str, AttributeJudge], StyleClassifier, dict[str, Any]]:
    """The shipped referees in eval mode on ``device``.

    Returns:
        ``({"photo": judge, "sketch": judge}, style classifier, manifest)``; the manifest's
        ``metrics`` say how each judge reads perturbed true images.

    Raises:
        LongRunError: if they are missing, corrupt or do not fit today's code, naming the
            command that trains them again.
    """
    if not isinstance(device, torch.device):
        raise TypeError(f"device must be a torch.device, got {type(device).__name__}")
    check_int("seed", seed, minimum=0)
    manifest = store.read_manifest(RECIPE_NAME, seed)
    try:
        model = build_referees(manifest["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise store.LongRunError(
            f"the manifest of {store.model_name(RECIPE_NAME, seed)} does not describe the "
            f"referees ({type(err).__name__}: {err}); run "
            f"`{store.rebuild_command(RECIPE_NAME, seed)}` to train and write them again"
        ) from err
    store.load_long_run(RECIPE_NAME, seed, model, manifest)
    model.to(device).eval()
    return {s: model[s] for s in STYLES}, model["style"], manifest
