"""Gradient accumulation, and why it does not give a contrastive loss more negatives.

Accumulation splits a batch into micro-batches, runs forward and backward on each, and steps
the optimiser once: the memory of a micro-batch buys the gradient of the whole batch. That is
exact only when the loss is a mean of per-example terms that do not look at each other:

* cross-entropy on a model without batch statistics: exact, up to float rounding;
* batch normalisation in training mode: each micro-batch is normalised with its own mean and
  variance, which can change the gradient substantially;
* a contrastive loss (InfoNCE, CLIP's): each example's term *is* a comparison with the rest of
  the batch, so each micro-batch is a smaller contrastive problem with fewer negatives.

:func:`cached_contrastive_gradient` repairs the third case the way GradCache does (Gao et
al., 2021, "Scaling deep contrastive learning batch size under memory limited setup"): embed
every micro-batch without a graph, compute the loss and its gradient with respect to the
embeddings on the whole batch, then re-run each micro-batch with a graph and back-propagate
those cached embedding gradients through it. The memory is a micro-batch's; the cost is a
second forward pass. It needs the two passes to give the same embeddings: no dropout (or its
random state replayed for the second pass), and batch normalisation, if any, in evaluation mode
(in training mode each micro-batch is still normalised on its own, and its running statistics
are updated twice). Chapter 10 accumulates across processes with DDP's ``no_sync``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..validate import check_int

Batch = Sequence[torch.Tensor]


def flat_gradient(model: nn.Module) -> torch.Tensor:
    """Every parameter's ``.grad`` in one vector (zeros where a parameter has none)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return torch.cat(
        [
            (p.grad if p.grad is not None else torch.zeros_like(p)).detach().flatten()
            for p in model.parameters()
            if p.requires_grad
        ]
    )


def micro_batches(batch: Batch, count: int) -> list[tuple[torch.Tensor, ...]]:
    """``batch`` (a tuple of tensors with the same first size) cut into ``count`` equal parts."""
    if not isinstance(batch, (tuple, list)) or not batch:
        raise TypeError(f"batch must be a non-empty tuple of tensors, got {type(batch).__name__}")
    check_int("count", count)
    size = len(batch[0])
    if any(not isinstance(t, torch.Tensor) or len(t) != size for t in batch):
        raise ValueError("every tensor in batch must be a tensor with the same first size")
    if size % count:
        raise ValueError(f"a batch of {size} does not split into {count} equal micro-batches")
    return list(zip(*(t.split(size // count) for t in batch)))


def accumulated_gradient(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, tuple[torch.Tensor, ...]], torch.Tensor],
    batch: Batch,
    count: int = 1,
) -> torch.Tensor:
    """The gradient of ``loss_fn`` over ``batch``, accumulated over ``count`` micro-batches.

    Each micro-batch's mean loss is weighted by ``1 / count`` before its backward pass, so that
    the sum is the batch's mean loss when the loss is a mean of independent terms. ``count=1``
    is the ordinary full-batch gradient. The model's ``.grad`` are cleared before and after.

    Args:
        model: in whichever mode the comparison needs (``eval()`` fixes batch statistics).
        loss_fn: ``loss_fn(model, micro_batch)`` → a scalar mean loss.
        batch: a tuple of tensors.
        count: micro-batches.

    Returns:
        ``(P,)`` the gradient of all trainable parameters, flattened.
    """
    model.zero_grad(set_to_none=True)
    for piece in micro_batches(batch, count):
        (loss_fn(model, piece) / count).backward()
    gradient = flat_gradient(model)
    model.zero_grad(set_to_none=True)
    return gradient


def cached_contrastive_gradient(
    model: nn.Module,
    encode: Callable[[nn.Module, tuple[torch.Tensor, ...]], tuple[torch.Tensor, ...]],
    loss_fn: Callable[..., torch.Tensor],
    batch: Batch,
    count: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole batch's contrastive gradient, computed a micro-batch at a time (GradCache).

    Args:
        model: the encoders (and any loss parameter, such as a learnable temperature, that
            ``encode`` returns).
        encode: ``encode(model, micro_batch)`` → the tensors the loss reads: first the
            per-example ones, e.g. ``(image_embeddings, text_embeddings)`` each ``(b, D)``,
            then any shared 0-d tensors (a logit scale), passed through.
        loss_fn: ``loss_fn(*features)`` on the whole batch's features → a scalar.
        batch: a tuple of tensors.
        count: micro-batches.

    Returns:
        ``(loss, gradient)``: the whole batch's loss and ``(P,)`` the flattened gradient.
    """
    pieces = micro_batches(batch, count)
    model.zero_grad(set_to_none=True)
    # 1. embed every micro-batch without a graph: only the embeddings are kept
    with torch.no_grad():
        outputs = [encode(model, piece) for piece in pieces]
    count_batched = sum(o.dim() > 0 for o in outputs[0])  # per-example tensors come first
    for out, piece in zip(outputs, pieces):
        if any(o.dim() == 0 for o in out[:count_batched]) or any(
            o.dim() for o in out[count_batched:]
        ):
            raise ValueError("encode must return the per-example tensors first, then 0-d ones")
        if any(len(o) != len(piece[0]) for o in out[:count_batched]):
            raise ValueError(
                f"each per-example tensor must have one row per item ({len(piece[0])}), got "
                f"{[tuple(o.shape) for o in out[:count_batched]]}"
            )
    features = [torch.cat([o[i] for o in outputs]).requires_grad_() for i in range(count_batched)]
    # a shared scalar (a logit scale) is the same for every piece: take the first piece's
    extras = [o.clone().requires_grad_() for o in outputs[0][count_batched:]]
    # 2. the loss on the whole batch, and its gradient with respect to the embeddings
    loss = loss_fn(*features, *extras)
    loss.backward()
    # 3. re-run each micro-batch with a graph and push the cached gradients through it
    start = 0
    for i, piece in enumerate(pieces):
        out = encode(model, piece)
        size = len(out[0])
        surrogate = sum((o * f.grad[start : start + size]).sum() for o, f in zip(out, features))
        if i == 0:  # a shared scalar's gradient is counted once
            shared = zip(out[count_batched:], extras)
            surrogate = surrogate + sum((o * e.grad).sum() for o, e in shared)
        surrogate.backward()
        start += size
    gradient = flat_gradient(model)
    model.zero_grad(set_to_none=True)
    return loss.detach(), gradient


def relative_difference(gradient: torch.Tensor, reference: torch.Tensor) -> float:
    """``‖gradient − reference‖ / ‖reference‖``: 0 for the same gradient."""
    if not isinstance(gradient, torch.Tensor) or not isinstance(reference, torch.Tensor):
        raise TypeError("gradient and reference must be tensors")
    if gradient.shape != reference.shape:
        raise ValueError(f"shapes differ: {tuple(gradient.shape)} and {tuple(reference.shape)}")
    return float((gradient - reference).norm() / reference.norm().clamp_min(1e-30))
