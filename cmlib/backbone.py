"""The frozen image backbone of chapters 03 and 05: a CNN pretrained to say what is where.

VQA and captioning models read an image as a grid of region features — the feature map of a
:class:`~cmlib.vision.ConvEncoder`. Rather than learn it through each task, the encoder is
pretrained once as a *cell tagger* (the detector-style "what is where" supervision that
VQA and captioning backbones are pretrained with) and then frozen:

* :class:`GridTagger` — the encoder plus one 1×1-conv head per labelling of the cells: the
  (colour, shape) pair for chapter 03; colour, shape and size as separate heads for chapter
  05, which keeps them apart in the features (a red triangle is then "red" and "triangle",
  not an unknown pair);
* :func:`pretrain_backbone` — builds and trains it with :func:`cmlib.train.fit`
  (:func:`train_backbone` trains one already built);
* :func:`chapter_five_backbone` — chapter 05's backbone, trained once and kept in the registry;
* :func:`grid_features` — the frozen encoder's grids of many images, computed once.

The labels come from :func:`cmlib.data.shapes.vqa.cell_labels` and
:func:`~cmlib.data.shapes.vqa.cell_attributes`. In every labelling, the *last* label of a
head means background: no object in that cell.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from . import registry, runtime, vision
from .data.shapes import captioning as captioning_data
from .data.shapes.captioning import load_captioning
from .data.shapes.vqa import ATTRIBUTE_LABELS
from .train import History, IndexBatches, fit, predict
from .validate import check_int, check_number, check_positive_ints, check_tensor
from .vision import ConvEncoder, permute_channels


class GridTagger(nn.Module):
    """A :class:`ConvEncoder` with a 1×1-conv tagging head per labelling of its grid cells.

    Args:
        encoder: the CNN to pretrain.
        heads: each head's name and its number of labels (background included, last).

    Shapes:
        ``(B, 3, S, S)`` → ``{name: (B, heads[name], g, g)}`` logits, ``g =``
        ``encoder.grid_size`` (``S / 8``, or ``S / 4`` for an encoder with ``cell_size=4``).
    """

    def __init__(self, encoder: ConvEncoder, heads: Mapping[str, int]):
        super().__init__()
        if not isinstance(encoder, ConvEncoder):
            raise TypeError(f"encoder must be a ConvEncoder, got {type(encoder).__name__}")
        if not isinstance(heads, Mapping) or not heads:
            raise TypeError(f"heads must be a non-empty mapping name → labels, got {heads!r}")
        check_positive_ints(**{f"heads[{k!r}]": v for k, v in heads.items()})
        self.encoder = encoder
        self.heads = nn.ModuleDict(
            {name: nn.Conv2d(encoder.out_channels, n, 1) for name, n in heads.items()}
        )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        grid = self.encoder.feature_map(images)
        return {name: head(grid) for name, head in self.heads.items()}


def tagging_loss(
    logits: Mapping[str, torch.Tensor], cells: Mapping[str, torch.Tensor], background_weight: float
) -> torch.Tensor:
    """The heads' cross-entropies summed, each head's background label weighing less."""
    total = 0.0
    for name, head_logits in logits.items():
        weight = torch.ones(head_logits.shape[1], device=head_logits.device)
        weight[-1] = background_weight
        total = total + F.cross_entropy(head_logits, cells[name], weight=weight)
    return total


def _check_training_data(
    images, cells, heads, grid, background_weight: float = 0.1, color_invariant=(), **_: Any
) -> None:
    check_tensor("images", images, ("N", 3, "S", "S"), floating=True, nonempty=True)
    if not isinstance(cells, Mapping) or set(cells) != set(heads):
        raise ValueError(
            f"cells and num_labels must name the same heads, got "
            f"{sorted(cells) if isinstance(cells, Mapping) else cells!r} and "
            f"{sorted(heads)}"
        )
    for name, labels in cells.items():
        check_tensor(f"cells[{name!r}]", labels, (len(images), grid, grid), floating=False)
    check_number("background_weight", background_weight, low=0)
    unknown = set(color_invariant) - set(heads)
    if unknown:
        raise ValueError(
            f"color_invariant names unknown heads {sorted(unknown)}; the heads: {sorted(heads)}"
        )


def pretrain_backbone(
    images: torch.Tensor,
    cells: Mapping[str, torch.Tensor],
    num_labels: Mapping[str, int],
    num_epochs: int,
    device: torch.device,
    width: int = 16,
    **options: Any,
) -> tuple[GridTagger, History]:
    """Build a :class:`GridTagger` on a new :class:`ConvEncoder` and train it
    (:func:`train_backbone`); return the tagger and its history.

    Args:
        images, cells, num_epochs, device: as in :func:`train_backbone`.
        num_labels: each head's number of labels, background (the last) included.
        width: the encoder's width.
        options: ``batch_size``, ``lr``, ``background_weight``, ``color_invariant``, ``seed``
            and ``progress``, as in :func:`train_backbone`.
    """
    _check_training_data(images, cells, num_labels, images.shape[-1] // 8, **options)
    encoder = ConvEncoder(image_size=images.shape[-1], width=width, embed_dim=64)
    tagger = GridTagger(encoder, num_labels)
    return tagger, train_backbone(tagger, images, cells, num_epochs, device, **options)


def train_backbone(
    tagger: GridTagger,
    images: torch.Tensor,
    cells: Mapping[str, torch.Tensor],
    num_epochs: int,
    device: torch.device,
    batch_size: int = 64,
    lr: float = 1e-3,
    background_weight: float = 0.1,
    color_invariant: tuple[str, ...] = (),
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Pretrain a cell tagger in place; it ends in eval mode with its encoder frozen.

    Every cell of the encoder's grid (``S/8 × S/8``, or ``S/4 × S/4``) has one label per head;
    background cells, most of them, weigh ``background_weight`` in the cross-entropy so they do
    not drown the objects.
    The tagger's encoder (``tagger.encoder``, the backbone) ends with ``requires_grad`` off.

    Args:
        tagger: the tagger to train (its heads name the labellings).
        images: ``(N, 3, S, S)`` training images.
        cells: each head's ``(N, g, g)`` cell labels, ``g = tagger.encoder.grid_size``.
        num_epochs: passes over the images.
        device: where to train.
        batch_size: images per step.
        lr: Adam's learning rate.
        background_weight: the background cells' weight in the loss.
        color_invariant: heads whose labels do not depend on colour (e.g. ``("shape", "size")``).
            Each step also trains them on the batch with its colour channels shuffled
            (:func:`~cmlib.vision.permute_channels`), so the features cannot read a shape off
            the colours it happened to come in — the shortcut that makes a backbone call a
            green circle a square when it only ever saw green squares and triangles.
        seed: the batch order and the channel shuffles.
        progress: show a progress bar.
    """
    if not isinstance(tagger, GridTagger):
        raise TypeError(f"tagger must be a GridTagger, got {type(tagger).__name__}")
    _check_training_data(
        images,
        cells,
        tagger.heads,
        tagger.encoder.grid_size,
        background_weight=background_weight,
        color_invariant=color_invariant,
    )
    encoder = tagger.encoder
    names = list(tagger.heads)
    shuffles = torch.Generator().manual_seed(seed)

    def step(model: GridTagger, batch: list[torch.Tensor]) -> torch.Tensor:
        labels = dict(zip(names, batch[1:]))
        loss = tagging_loss(model(batch[0]), labels, background_weight)
        if color_invariant:
            recoloured = model(permute_channels(batch[0], shuffles))
            loss = loss + tagging_loss(
                {k: recoloured[k] for k in color_invariant}, labels, background_weight
            )
        return loss

    history = fit(
        tagger,
        IndexBatches(len(images), batch_size, seed, (images, *(cells[k] for k in names))),
        torch.optim.Adam(tagger.parameters(), lr),
        num_epochs,
        device,
        step_fn=step,
        progress=progress,
        desc="backbone",
    )
    encoder.requires_grad_(False)
    tagger.eval()
    return history


def grid_features(
    encoder: ConvEncoder, images: torch.Tensor, device: torch.device, batch_size: int = 512
) -> torch.Tensor:
    """``encoder.feature_map`` of every image, in eval mode, on the CPU: ``(N, C, h, w)``."""
    if not isinstance(encoder, ConvEncoder):
        raise TypeError(f"encoder must be a ConvEncoder, got {type(encoder).__name__}")
    return predict(encoder.feature_map, images, device, batch_size)


#: Chapter 05's backbone by run profile: pretrained on the first ``backbone_images`` of the
#: ``num_train`` training images of :func:`~cmlib.data.shapes.captioning.load_captioning`.
#: Part 1 trains it once; parts 2 and 3 load the same registry entry.
CHAPTER_FIVE_SIZES = {
    "cpu": {"num_train": 4000, "backbone_images": 1500, "num_epochs": 6},
    "gpu": {"num_train": 12000, "backbone_images": 8000, "num_epochs": 15},
}
CHAPTER_FIVE_IMAGE_SIZE = 32


def chapter_five_backbone_name(seed: int) -> str:
    """The registry entry of chapter 05's backbone, e.g. ``ch05-backbone-cpu-seed0``."""
    return f"ch05-backbone-{runtime.profile()}-seed{seed}"


def chapter_five_backbone(
    device: torch.device, seed: int, progress: bool = True
) -> tuple[GridTagger, str]:
    """Chapter 05's frozen backbone, loaded from the model registry or pretrained once and saved.

    It tags colour, shape and size per cell
    (:data:`~cmlib.data.shapes.vqa.ATTRIBUTE_LABELS`). Building it draws its initial weights from
    the global random state whether it is then loaded or trained, and training draws from its
    own seeded generators, so the cells after this call see the same random state either way.

    Returns:
        ``(tagger, status)``: the tagger on ``device``, in eval mode with its encoder frozen;
        status is ``"loaded"`` or says why it was trained.
    """
    check_int("seed", seed, minimum=0)
    config = {
        **CHAPTER_FIVE_SIZES[runtime.profile()],
        "image_size": CHAPTER_FIVE_IMAGE_SIZE,
        "width": 16,
        "seed": seed,
    }

    def build(cfg: dict) -> GridTagger:
        encoder = ConvEncoder(image_size=cfg["image_size"], width=cfg["width"], embed_dim=64)
        return GridTagger(encoder, ATTRIBUTE_LABELS).to(device)

    def pretrain(tagger: GridTagger) -> dict[str, float]:
        train = load_captioning("train", config["num_train"], config["image_size"], seed=seed)
        n = config["backbone_images"]
        cells = {k: v[:n] for k, v in train.cells.items()}
        history = train_backbone(
            tagger,
            train.images[:n],
            cells,
            config["num_epochs"],
            device,
            seed=seed,
            progress=progress,
        )
        return history.last

    code = [sys.modules[__name__], vision, captioning_data]
    tagger, status = registry.load_or_train(
        chapter_five_backbone_name(seed), config, build, pretrain, code
    )
    tagger.encoder.requires_grad_(False)
    return tagger.to(device).eval(), status
