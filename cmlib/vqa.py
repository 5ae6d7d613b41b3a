"""Visual question answering (视觉问答) on ShapesWorld: chapter 03's testbed for fusion.

An image's CNN feature grid and a question go in, a one-word answer comes out:

* :class:`GridTagger` and :func:`pretrain_backbone` — pretrain the image backbone to say what
  is where, cell by cell (chapter 03's both parts share this recipe);
* :func:`grid_features` — the frozen backbone's grids, computed once;
* :class:`VQAModel` — question encoder + any :mod:`cmlib.fusion` module + answer classifier;
* :func:`accuracy_by_kind` — accuracy overall and per question kind.

The questions themselves come from :mod:`cmlib.data.shapes.vqa`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .fusion import FUSIONS, Fusion, make_fusion
from .sequence import TextEncoder
from .train import History, IndexBatches, fit, predict
from .validate import check_number, check_positive_ints, check_same_length, check_tensor
from .vision import ConvEncoder


class VQAModel(nn.Module):
    """Visual question answering: image grid + question → answer logits.

    The image arrives as a CNN feature grid (computed once by a frozen
    :class:`~cmlib.vision.ConvEncoder`, see :func:`grid_features`). Vector
    fusions get the grid average-pooled to ``(B, C)``; spatial ones the grid.
    The question goes through a :class:`~cmlib.sequence.TextEncoder`.

    Args:
        fusion: the fusion module; its ``vision_dim`` is the grid's channels and its
            ``language_dim`` the text encoder's ``out_dim``.
        text_encoder: the question encoder.
        num_answers: number of answer classes.
        hidden_dim: width of the answer classifier's hidden layer.

    Shapes:
        ``forward(grid (B, C, h, w), ids (B, T), lengths (B,))`` → ``(B, num_answers)``.
    """

    def __init__(
        self, fusion: Fusion, text_encoder: TextEncoder, num_answers: int, hidden_dim: int = 128
    ):
        super().__init__()
        if not isinstance(fusion, Fusion):
            raise TypeError(f"fusion must be a cmlib.fusion.Fusion, got {type(fusion).__name__}")
        if fusion.language_dim != text_encoder.out_dim:
            raise ValueError(
                f"fusion expects language features of size {fusion.language_dim}, "
                f"the text encoder gives {text_encoder.out_dim}"
            )
        check_positive_ints(num_answers=num_answers, hidden_dim=hidden_dim)
        self.fusion, self.text_encoder = fusion, text_encoder
        self.classifier = nn.Sequential(
            nn.Linear(fusion.out_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, num_answers)
        )

    def fused(self, grid: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The fused feature ``(B, fusion.out_dim)``."""
        check_tensor("feature grid", grid, ("B", "C", "h", "w"))
        vision = grid if self.fusion.spatial else grid.mean(dim=(2, 3))
        return self.fusion(vision, self.text_encoder(ids, lengths))

    def forward(self, grid: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.fused(grid, ids, lengths))


def make_vqa_model(
    name: str,
    vocab_size: int,
    num_answers: int,
    grid_channels: int,
    grid_size: int = 4,
    embed_dim: int = 32,
    text_dim: int = 64,
    fused_dim: int = 128,
) -> VQAModel:
    """A :class:`VQAModel` with fusion ``name`` and the course's default sizes."""
    extra = {"grid_size": grid_size} if FUSIONS.get(name, Fusion).spatial else {}
    fusion = make_fusion(name, grid_channels, text_dim, fused_dim, **extra)
    return VQAModel(fusion, TextEncoder(vocab_size, embed_dim, text_dim), num_answers)


class GridTagger(nn.Module):
    """Pretraining head for the VQA backbone: tag each grid cell with the objects it shows.

    A 1×1 conv on :meth:`ConvEncoder.feature_map` gives, per cell, one logit per
    label ((colour, shape) pairs and background) — the detector-style "what is
    where" supervision that VQA backbones are pretrained with. Train it with
    ``cross_entropy`` against :func:`cmlib.data.shapes.vqa.cell_labels`.

    Args:
        encoder: the CNN to pretrain.
        num_labels: labels per cell.

    Shapes:
        ``(B, 3, S, S)`` → ``(B, num_labels, S / 8, S / 8)`` logits.
    """

    def __init__(self, encoder: ConvEncoder, num_labels: int):
        super().__init__()
        if not isinstance(encoder, ConvEncoder):
            raise TypeError(f"encoder must be a ConvEncoder, got {type(encoder).__name__}")
        check_positive_ints(num_labels=num_labels)
        self.encoder = encoder
        self.tag = nn.Conv2d(encoder.out_channels, num_labels, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.tag(self.encoder.feature_map(images))


def pretrain_backbone(
    images: torch.Tensor,
    cells: torch.Tensor,
    num_labels: int,
    background: int,
    num_epochs: int,
    device: torch.device,
    width: int = 16,
    batch_size: int = 64,
    lr: float = 1e-3,
    background_weight: float = 0.1,
    seed: int = 0,
    progress: bool = True,
) -> tuple[GridTagger, History]:
    """Pretrain a :class:`ConvEncoder` as a cell tagger; return the tagger and its history.

    Each cell of the ``S/8 × S/8`` grid is labelled with the (colour, shape) pair that covers it
    or with ``background`` (:func:`cmlib.data.shapes.vqa.cell_labels`); the background cells,
    most of them, weigh ``background_weight`` in the cross-entropy so they do not drown the
    objects. The tagger comes back in eval mode, its encoder (``tagger.encoder``, the backbone)
    with ``requires_grad`` off.

    Args:
        images: ``(N, 3, S, S)`` training images.
        cells: ``(N, S/8, S/8)`` their cell labels.
        num_labels: labels per cell (the pairs and the background).
        background: the background label.
        num_epochs: passes over the images.
        device: where to train.
        width: the encoder's width.
        batch_size: images per step.
        lr: Adam's learning rate.
        background_weight: the background cells' weight in the loss.
        seed: the batch order.
        progress: show a progress bar.
    """
    check_tensor("images", images, ("N", 3, "S", "S"), floating=True, nonempty=True)
    grid = images.shape[-1] // 8
    check_tensor("cells", cells, (len(images), grid, grid), floating=False)
    check_positive_ints(num_labels=num_labels)
    check_number("background_weight", background_weight, low=0)
    encoder = ConvEncoder(image_size=images.shape[-1], width=width, embed_dim=64)
    tagger = GridTagger(encoder, num_labels)
    weight = torch.ones(num_labels, device=device)
    weight[background] = background_weight
    history = fit(
        tagger,
        IndexBatches(len(images), batch_size, seed, (images, cells)),
        torch.optim.Adam(tagger.parameters(), lr),
        num_epochs,
        device,
        loss_fn=lambda logits, target: F.cross_entropy(logits, target, weight=weight),
        progress=progress,
        desc="backbone",
    )
    encoder.requires_grad_(False)
    return tagger.eval(), history


def grid_features(
    encoder: ConvEncoder, images: torch.Tensor, device: torch.device, batch_size: int = 512
) -> torch.Tensor:
    """``encoder.feature_map`` of every image, in eval mode, on the CPU: ``(N, C, h, w)``."""
    if not isinstance(encoder, ConvEncoder):
        raise TypeError(f"encoder must be a ConvEncoder, got {type(encoder).__name__}")
    return predict(encoder.feature_map, images, device, batch_size)


@torch.no_grad()
def accuracy_by_kind(
    model: VQAModel,
    grids: torch.Tensor,
    ids: torch.Tensor,
    lengths: torch.Tensor,
    answers: torch.Tensor,
    kinds: torch.Tensor,
    kind_names: Sequence[str],
    device: torch.device,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Accuracy overall and for each question kind.

    Args:
        grids: ``(Q, C, h, w)`` — the grid of each question's image.
        ids, lengths, answers, kinds: ``(Q, T)``, ``(Q,)``, ``(Q,)``, ``(Q,)``.
        kind_names: the name of each kind id.
    """
    check_same_length(grids=grids, ids=ids, lengths=lengths, answers=answers, kinds=kinds)
    model.eval().to(device)
    preds = predict(
        lambda *batch: model(*batch).argmax(1), (grids, ids, lengths), device, batch_size
    )
    correct = (preds == answers).float()
    out = {"overall": correct.mean().item()}
    for k, name in enumerate(kind_names):
        mask = kinds == k
        if mask.any():
            out[name] = correct[mask].mean().item()
    return out
