"""Scoring translations where ShapesWorld knows the answer.

Unpaired benchmarks cannot say what the right translation of an image is. ShapesWorld can:
the same scene rendered in the other style (:func:`photo_sketch_pairs`). Those pairs are for
evaluation only; training sees photos and sketches of *different* scenes.

:func:`score_translation` gives the panel, each number against a different failure:

* ``mae``, ``ssim`` — pixel error to the true translation (fidelity);
* ``preserved`` — colour and shape read back by a judge trained on *target-style images only*
  (a judge that knew both styles would reward the identity map);
* ``target_style`` — a photo-vs-sketch classifier's verdict: does it look like the target?
  (the identity map keeps everything and fails this one);
* ``joint`` — target style *and* colour and shape kept, image by image: neither the identity
  map nor a generator that draws one pretty sketch for every photo can score here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.shapes import ShapesWorld
from ..judge import AttributeJudge
from ..train import History, IndexBatches, fit, predict
from ..validate import check_choice, check_tensor, require
from ..vision import ConvEncoder

#: Class ids of the style classifier.
STYLE_IDS = {"photo": 0, "sketch": 1}


def photo_sketch_pairs(
    split: str, size: int, image_size: int = 16, seed: int = 0, num_objects: int = 1
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """The same ``size`` scenes as photos and as sketches, and their labels.

    Returns:
        ``(photos, sketches, attrs)``: two ``(size, 3, S, S)`` tensors whose rows show the same
        scene, and the attribute tensors ``(size,)`` they share.
    """
    out = []
    for style in ("photo", "sketch"):
        data = ShapesWorld(
            split, size=size, image_size=image_size, style=style, num_objects=num_objects, seed=seed
        )
        out.append(data.tensors())
    (photos, attrs), (sketches, _) = out
    return photos, sketches, attrs


@torch.no_grad()
def translate(generator: nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``generator`` applied to ``images`` ``(N, C, S, S)`` in batches, clamped to [0, 1], on the
    CPU."""
    check_tensor("images", images, ("N", "C", "H", "W"), floating=True, nonempty=True)
    return predict(generator, images, device, batch_size=256).clamp(0.0, 1.0)


def ssim(images: torch.Tensor, references: torch.Tensor) -> float:
    """Mean structural similarity (scikit-image, data range 1, over the colour channels)."""
    metrics = require("skimage.metrics", "scikit-image", "SSIM")
    check_tensor("images", images, ("N", "C", "H", "W"), floating=True, nonempty=True)
    if images.shape != references.shape:
        raise ValueError(
            f"images {tuple(images.shape)} and references {tuple(references.shape)} differ"
        )
    a = images.permute(0, 2, 3, 1).numpy()
    b = references.permute(0, 2, 3, 1).numpy()
    return float(
        np.mean(
            [
                metrics.structural_similarity(x, y, data_range=1.0, channel_axis=-1)
                for x, y in zip(a, b)
            ]
        )
    )


class StyleClassifier(nn.Module):
    """Photo or sketch? A small CNN: the realism verdict (the paper's AMT study, automated).

    Shapes:
        ``forward(x (B, 3, S, S))`` → logits ``(B, 2)`` (0: photo, 1: sketch).
    """

    def __init__(self, image_size: int = 16, width: int = 8):
        super().__init__()
        self.encoder = ConvEncoder(3, image_size, width, embed_dim=32)
        self.head = nn.Linear(32, len(STYLE_IDS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.encoder(x)))


def train_style_classifier(
    photos: torch.Tensor,
    sketches: torch.Tensor,
    num_epochs: int,
    device: torch.device,
    seed: int = 0,
) -> tuple[StyleClassifier, History]:
    """Train a :class:`StyleClassifier` on real photos and sketches."""
    images = torch.cat([photos, sketches])
    labels = torch.cat([torch.zeros(len(photos)), torch.ones(len(sketches))]).long()
    model = StyleClassifier(images.shape[-1])
    history = fit(
        model,
        IndexBatches(len(images), 64, seed, (images, labels)),
        torch.optim.Adam(model.parameters(), 3e-3),
        num_epochs,
        device,
        loss_fn=F.cross_entropy,
        progress=False,
        desc="style",
    )
    return model, history


@dataclass(frozen=True)
class TranslationScores:
    """The panel of :func:`score_translation` (every value a mean over the images)."""

    mae: float
    ssim: float
    preserved: float
    target_style: float
    joint: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def score_translation(
    outputs: torch.Tensor,
    targets: torch.Tensor,
    attrs: dict[str, torch.Tensor],
    judge: AttributeJudge,
    style_classifier: StyleClassifier,
    target_style: str,
) -> TranslationScores:
    """Score translated images against the true translations.

    Args:
        outputs: the translations ``(N, 3, S, S)`` in [0, 1].
        targets: the true translations (the same scenes rendered in the target style).
        attrs: the scenes' labels, ``"color"`` and ``"shape"`` at least, each ``(N,)``.
        judge: an attribute judge trained on target-style images only.
        style_classifier: photo vs sketch.
        target_style: ``"photo"`` or ``"sketch"``.
    """
    check_choice("target_style", target_style, tuple(STYLE_IDS))
    check_tensor("outputs", outputs, ("N", 3, "H", "W"), floating=True, nonempty=True)
    if outputs.shape != targets.shape:
        raise ValueError(
            f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ"
        )
    for k in ("color", "shape"):
        check_tensor(f"attrs[{k!r}]", attrs.get(k), (len(outputs),))
    device = next(judge.parameters()).device
    read = judge.predict(outputs)
    kept = (read["color"] == attrs["color"]) & (read["shape"] == attrs["shape"])
    styled = predict(style_classifier, outputs, device).argmax(1) == STYLE_IDS[target_style]
    return TranslationScores(
        mae=(outputs - targets).abs().mean().item(),
        ssim=ssim(outputs, targets),
        preserved=kept.float().mean().item(),
        target_style=styled.float().mean().item(),
        joint=(kept & styled).float().mean().item(),
    )


#: The two directions, as the panels name them.
DIRECTIONS = ("G: photo → sketch", "F: sketch → photo")


def score_both_directions(
    g: nn.Module | None,
    f: nn.Module | None,
    photos: torch.Tensor,
    sketches: torch.Tensor,
    attrs: dict[str, torch.Tensor],
    judges: dict[str, AttributeJudge],
    style_classifier: StyleClassifier,
    device: torch.device,
) -> dict[str, dict[str, float]]:
    """The panel of :func:`score_translation` for G: photo → sketch and F: sketch → photo.

    Args:
        g: photo → sketch; ``None`` for the identity map (the output is the input).
        f: sketch → photo; ``None`` for the identity map.
        photos: test photos ``(N, 3, S, S)``; ``sketches``: the same scenes as sketches.
        attrs: the scenes' labels.
        judges: ``{"photo": ..., "sketch": ...}``, each trained on its own style only.
        style_classifier: photo vs sketch.
        device: where the generators run.

    Returns:
        ``{direction: {"mae", "ssim", "preserved", "target_style", "joint"}}`` for both
        :data:`DIRECTIONS`.
    """
    out = {}
    for direction, generator, inputs, targets, style in (
        (DIRECTIONS[0], g, photos, sketches, "sketch"),
        (DIRECTIONS[1], f, sketches, photos, "photo"),
    ):
        outputs = inputs if generator is None else translate(generator, inputs, device)
        out[direction] = score_translation(
            outputs, targets, attrs, judges[style], style_classifier, style
        ).as_dict()
    return out
