"""Chapter 06's referees, trained to read content (``ch06-referees``).

The chapter scores a translation by reading colour and shape back with a judge trained on
target-style images only. Trained for seconds on clean images, such a judge read the true
sketches at 1.000 but the same sketches after a 3×3 blur at 0.33, and under noise of std 0.05
(about a generator's pixel error) at 0.72: it scored sharpness, not content. This recipe trains
the judges wider and longer, on images perturbed in ways that keep colour and shape
(:func:`cmlib.perturb.content_keeping`), and its manifest records how each reads perturbed true
images (:data:`cmlib.perturb.PERTURBATIONS`) and the *other* style (what the identity map would
score). They are a measuring instrument, never tuned on a generator's outputs: one set, seed 0,
scores every part of chapter 06 and every CycleGAN seed (:mod:`cmlib.cyclegan.referees` loads
it).
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn

from .. import judge as judge_module
from .. import perturb, runtime, vision
from .. import train as train_module
from ..cyclegan import evaluation, referees
from ..cyclegan.evaluation import photo_sketch_pairs, train_style_classifier
from ..cyclegan.referees import build_referees
from ..data.shapes import render, tasks, world
from ..judge import AttributeJudge, train_judge
from .base import Recipe, TrainResult

IMAGE_SIZE = 16
NUM_TEST = 500
#: The judges' batch size (train_judge's default, stated so the curve's steps follow it).
JUDGE_BATCH = 64

REFEREE_CONFIG: dict[str, Any] = {
    "image_size": IMAGE_SIZE,
    # each judge learns its own style: train scenes 0..num_scenes-1 and heldout[num_kept:]
    "num_scenes": 8000,
    "num_heldout": 1500,
    "num_kept": NUM_TEST,  # heldout[:num_kept] is seen by no referee
    "judge_width": 32,
    "judge_epochs": 20,
    "augment": True,
    # the style classifier: photos of scenes 0..999, sketches of 1000..1999, as in the chapter
    "style_images": 1000,
    "style_epochs": 2,
}


def _train_referees(
    model: nn.ModuleDict, config: dict[str, Any], seed: int, device: torch.device, progress: bool
) -> TrainResult:
    """Each judge on real images of its own style only, then the style classifier."""
    photos, sketches, attrs = photo_sketch_pairs(
        "train", config["num_scenes"], config["image_size"], seed=seed
    )
    held = photo_sketch_pairs("heldout", config["num_heldout"], config["image_size"])
    curve: dict[str, list[float]] = {}
    for style, images, held_images in (("photo", photos, held[0]), ("sketch", sketches, held[1])):
        x, a = tasks.judge_training_set(images, attrs, held_images, held[2], config["num_kept"])
        per_epoch = -(-len(x) // JUDGE_BATCH)
        curve["step"] = [per_epoch * (e + 1) for e in range(config["judge_epochs"])]
        curve[f"{style}_loss"] = train_judge(
            model[style],
            x,
            a,
            config["judge_epochs"],
            device,
            batch_size=JUDGE_BATCH,
            seed=seed,
            progress=progress,
            augment=config["augment"],
        ).train_loss
    n = config["style_images"]
    style, _ = train_style_classifier(
        photos[:n], sketches[n : 2 * n], config["style_epochs"], device, seed=seed
    )
    model["style"].load_state_dict(style.state_dict())
    # the curve: each judge's training loss after each epoch, against its steps; the steps are
    # the two judges' (the style classifier's few are not counted)
    return TrainResult(steps=2 * curve["step"][-1], curve=curve)


def referee_scores(bundle: nn.ModuleDict, device: torch.device) -> dict[str, float]:
    """How each judge reads the 500 test scenes' true images (colour and shape both right):
    clean, under each of :data:`cmlib.perturb.PERTURBATIONS`, and in the other style; and the
    style classifier's accuracy on both styles."""
    bundle.to(device).eval()
    photos, sketches, attrs = photo_sketch_pairs("test", NUM_TEST, IMAGE_SIZE)
    images = {"photo": photos, "sketch": sketches}
    out: dict[str, float] = {}
    for style, other in (("photo", "sketch"), ("sketch", "photo")):
        judge = bundle[style]

        def read(x: torch.Tensor, judge: AttributeJudge = judge) -> torch.Tensor:
            r = judge.predict(x)
            return ((r["color"] == attrs["color"]) & (r["shape"] == attrs["shape"])).float().mean()

        for name, value in perturb.readings(read, images[style]).items():
            out[f"{style}_{name}"] = value
        out[f"{style}_reads_{other}"] = float(read(images[other]))
    logits = train_module.predict(bundle["style"], torch.cat([photos, sketches]), device)
    truth = torch.cat([torch.zeros(len(photos)), torch.ones(len(sketches))]).long()
    out["style_accuracy"] = float((logits.argmax(1) == truth).float().mean())
    return out


def evaluate_referees(
    model: nn.ModuleDict, config: dict[str, Any], seed: int, device: torch.device
) -> dict[str, float]:
    return referee_scores(model, device)


REFEREES = Recipe(
    name=referees.RECIPE_NAME,
    summary="chapter 06's referees (a judge per style, trained to read through blur, noise and "
    "shifts, and the style classifier)",
    config=REFEREE_CONFIG,
    build=build_referees,
    train=_train_referees,
    evaluate=evaluate_referees,
    code=[
        judge_module,
        perturb,
        evaluation,
        vision,
        train_module,
        world,
        render,
        tasks,
        runtime,
        referees,
        sys.modules[__name__],
    ],
    seeds=(0,),
)
