"""The contrastive loss across processes: every rank needs every rank's negatives.

With N processes and a local batch of B, a rank that scores only its own B pairs sees B − 1
negatives per positive. CLIP's loss wants the global batch: N·B − 1 negatives. So each rank
gathers the features of all ranks (not the images: features are small) and scores its own
rows against all of them, as open_clip's ``ClipLoss`` does with ``local_loss=True``.

The gradient is the subtle part. ``dist.all_gather`` returns tensors with no history, so by
itself it would cut the gradient to every other rank's features. Two ways to keep it:

* ``gather_with_grad=True`` gathers through :class:`AllGatherWithGrad`, whose backward pass
  sums every rank's gradient for each slice and hands each rank its own. Then N ranks with
  batch B produce exactly the gradient of one process with batch N·B.
* ``gather_with_grad=False`` (open_clip's default) gathers without history and puts the local
  tensors back in their slot, so the gradient flows through the local part only. It is cheaper,
  but each rank then misses the terms where *its* features serve as another rank's negatives;
  open_clip advises against combining it with the local loss used here.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..retrieval import clip_loss
from ..validate import check_tensor
from .env import require_process_group


class AllGatherWithGrad(torch.autograd.Function):
    """``all_gather`` that passes gradients back: ``(B, D)`` on each rank → ``(N·B, D)`` on all.

    Forward: every rank receives every rank's tensor. Backward: every rank holds a gradient for
    all N slices (its loss used them all); summing these over ranks (``all_reduce``) gives each
    slice its full gradient, and each rank keeps the slice of its own tensor.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad.chunk(dist.get_world_size(), dim=0)[dist.get_rank()]


def gather_features(
    image_features: torch.Tensor, text_features: torch.Tensor, gather_with_grad: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate every rank's features, in rank order.

    Args:
        image_features: this rank's ``(B, D)`` image embeddings.
        text_features: this rank's ``(B, D)`` text embeddings.
        gather_with_grad: keep the gradient to every rank's features (see the module notes);
            otherwise only the local slice carries a gradient.

    Returns:
        ``(N·B, D)`` image and text features; rows ``rank·B … rank·B + B − 1`` are this rank's.

    Raises:
        RuntimeError: without a process group.
    """
    world_size = require_process_group()
    check_tensor("image_features", image_features, ("B", "D"), floating=True)
    check_tensor("text_features", text_features, tuple(image_features.shape), floating=True)
    if gather_with_grad:
        return AllGatherWithGrad.apply(image_features), AllGatherWithGrad.apply(text_features)
    rank = dist.get_rank()
    gathered = []
    for local in (image_features, text_features):
        parts = [torch.zeros_like(local) for _ in range(world_size)]
        dist.all_gather(parts, local.detach().contiguous())
        parts[rank] = local  # the local slice keeps its history, the others have none
        gathered.append(torch.cat(parts, dim=0))
    return gathered[0], gathered[1]


def distributed_clip_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor | float,
    gather: bool = True,
    gather_with_grad: bool = True,
) -> torch.Tensor:
    """CLIP's symmetric InfoNCE for this rank's pairs against the global batch.

    With ``gather=True`` each rank's loss covers its own B rows and B columns of the global
    ``(N·B, N·B)`` logit matrix; DDP's gradient average over the ranks is then the gradient of
    :func:`cmlib.retrieval.clip_loss` on the whole batch. With ``gather=False`` (or a world of
    one) it is ``clip_loss`` on the local batch alone.

    Args:
        image_features: this rank's ``(B, D)`` normalised image embeddings.
        text_features: this rank's ``(B, D)`` normalised text embeddings.
        logit_scale: the inverse temperature.
        gather: score against every rank's features.
        gather_with_grad: see :func:`gather_features`.

    Returns:
        This rank's scalar loss. The mean over ranks is the global loss.
    """
    if not gather or not (dist.is_available() and dist.is_initialized()):
        return clip_loss(image_features, text_features, logit_scale)
    all_images, all_texts = gather_features(image_features, text_features, gather_with_grad)
    batch = image_features.shape[0]
    # This rank's positives sit at columns rank·B … rank·B + B − 1 of the global matrix.
    labels = torch.arange(batch, device=image_features.device) + dist.get_rank() * batch
    logits_per_image = logit_scale * image_features @ all_texts.T  # (B, N·B)
    logits_per_text = logit_scale * text_features @ all_images.T  # (B, N·B)
    return (
        F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)
    ) / 2
