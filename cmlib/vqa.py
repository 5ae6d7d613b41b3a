"""Visual question answering (视觉问答) on ShapesWorld: chapter 03's testbed for fusion.

An image's CNN feature grid and a question go in, a one-word answer comes out:

* the image backbone is pretrained and frozen by :mod:`cmlib.backbone`;
* :class:`VQAModel` — question encoder + any :mod:`cmlib.fusion` module + answer classifier;
* :func:`accuracy_by_kind` — accuracy overall and per question kind.

The questions themselves come from :mod:`cmlib.data.shapes.vqa`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .fusion import FUSIONS, Fusion, make_fusion
from .sequence import TextEncoder
from .train import predict
from .validate import check_positive_ints, check_same_length, check_tensor


class VQAModel(nn.Module):
    """Visual question answering: image grid + question → answer logits.

    The image arrives as a CNN feature grid (computed once by a frozen
    :class:`~cmlib.vision.ConvEncoder`, see :func:`cmlib.backbone.grid_features`). Vector
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
    fusion_class: type[Fusion] | None = None,
) -> VQAModel:
    """A :class:`VQAModel` with fusion ``name`` and the course's default sizes.

    Args:
        fusion_class: build this :class:`~cmlib.fusion.Fusion` subclass in place of
            ``FUSIONS[name]``, with the same arguments (a reader's own version of fusion
            ``name``, e.g. a subclass that overrides ``fuse``).

    Raises:
        TypeError: if ``fusion_class`` is not a ``Fusion`` subclass.
    """
    if fusion_class is not None and not (
        isinstance(fusion_class, type) and issubclass(fusion_class, Fusion)
    ):
        raise TypeError(f"fusion_class must be a Fusion subclass, got {fusion_class!r}")
    spatial = (fusion_class or FUSIONS.get(name, Fusion)).spatial
    extra = {"grid_size": grid_size} if spatial else {}
    if fusion_class is None:
        fusion = make_fusion(name, grid_channels, text_dim, fused_dim, **extra)
    else:
        fusion = fusion_class(grid_channels, text_dim, fused_dim, **extra)
    return VQAModel(fusion, TextEncoder(vocab_size, embed_dim, text_dim), num_answers)


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
