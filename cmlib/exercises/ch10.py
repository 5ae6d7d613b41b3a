"""Chapter 10 exercises: one rank's share of the contrastive loss over the global batch (10.1, its
gradients checked too); a "predict, then run" question, the two ranks' gathered loss against one
process's (10.2).

Exercise 10.1 takes the gathered features only, ``(all_images, all_texts, rank, world_size,
logit_scale)``: this rank's own pairs are rows ``rank·B … rank·B + B − 1`` of both. Its check
compares the gradient with respect to each argument on its own; were this rank's features a
separate argument as well, an answer that takes its rows from the gathered matrices (slicing the
rows of the (N·B, N·B) logits: right in DDP, where the gather's backward sends the local slice's
gradient home) would put that gradient on the other copy and be rejected. With one copy of each
feature, every correct way of writing the loss has the same gradients.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import Exercise, register, register_prediction


# ---------------------------------------------------------------- 10.1 one rank's loss
def rank_clip_loss(all_images, all_texts, rank, world_size, logit_scale):
    """CLIP's loss for this rank's B pairs against all N·B gathered features.

    ``all_images`` and ``all_texts`` are every rank's ``(B, D)`` features gathered in rank order,
    ``(N·B, D)`` with N = ``world_size``; this rank's are rows ``rank·B … rank·B + B − 1``. Rows
    of the logits are this rank's images (texts); columns are every rank's texts (images); the
    positive of local row i is global column rank·B + i. Each cross-entropy is the mean over
    this rank's B rows, so that the mean of the N ranks' losses is CLIP's loss on the N·B pairs.
    """
    batch = all_images.shape[0] // world_size
    mine = slice(rank * batch, (rank + 1) * batch)
    labels = torch.arange(batch, device=all_images.device) + rank * batch
    logits_per_image = logit_scale * all_images[mine] @ all_texts.T  # (B, N·B)
    logits_per_text = logit_scale * all_texts[mine] @ all_images.T  # (B, N·B)
    return (
        F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)
    ) / 2


def _gathered(rng: np.random.Generator):
    world, batch, dim = int(rng.integers(2, 5)), int(rng.integers(2, 6)), 8
    rank = int(rng.integers(1, world))  # not rank 0, where an unshifted label would pass
    all_images = F.normalize(torch.from_numpy(rng.normal(size=(world * batch, dim))).float(), dim=1)
    all_texts = F.normalize(
        all_images + 0.5 * torch.from_numpy(rng.normal(size=all_images.shape)).float(), dim=1
    )
    return all_images, all_texts, rank, world, float(rng.uniform(5, 20))


def _mine(all_images, rank, world):
    batch = all_images.shape[0] // world
    return slice(rank * batch, (rank + 1) * batch), batch


def _unshifted(all_images, all_texts, rank, world, scale):  # labels 0…B−1 on every rank
    mine, batch = _mine(all_images, rank, world)
    labels = torch.arange(batch)
    return (
        F.cross_entropy(scale * all_images[mine] @ all_texts.T, labels)
        + F.cross_entropy(scale * all_texts[mine] @ all_images.T, labels)
    ) / 2


def _local_only(all_images, all_texts, rank, world, scale):  # B − 1 negatives: no gather
    mine, batch = _mine(all_images, rank, world)
    image, text, labels = all_images[mine], all_texts[mine], torch.arange(batch)
    return (
        F.cross_entropy(scale * image @ text.T, labels)
        + F.cross_entropy(scale * text @ image.T, labels)
    ) / 2


def _one_direction(all_images, all_texts, rank, world, scale):  # images → texts only
    mine, batch = _mine(all_images, rank, world)
    labels = torch.arange(batch) + rank * batch
    return F.cross_entropy(scale * all_images[mine] @ all_texts.T, labels)


def _whole_batch(all_images, all_texts, rank, world, scale):  # every rank's rows, not this one's
    logits = scale * all_images @ all_texts.T
    labels = torch.arange(len(logits))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def _over_global_batch(all_images, all_texts, rank, world, scale):  # B rows summed, ÷ N·B
    mine, batch = _mine(all_images, rank, world)
    labels = torch.arange(batch) + rank * batch
    return (
        F.cross_entropy(scale * all_images[mine] @ all_texts.T, labels, reduction="sum")
        + F.cross_entropy(scale * all_texts[mine] @ all_images.T, labels, reduction="sum")
    ) / (2 * len(all_images))


def _gathered_detached(all_images, all_texts, rank, world, scale):  # all_gather's copy
    # the right value, but the columns (every rank's features) are constants: what a plain
    # all_gather gives, where only the local rows keep their history; no feature learns from
    # being another rank's negative (the chapter's gather keeps the gradient)
    mine, batch = _mine(all_images, rank, world)
    labels = torch.arange(batch) + rank * batch
    return (
        F.cross_entropy(scale * all_images[mine] @ all_texts.detach().T, labels)
        + F.cross_entropy(scale * all_texts[mine] @ all_images.detach().T, labels)
    ) / 2


#: The mistakes exercise 10.1's check must reject, by name (the tests use the names).
RANK_LOSS_MISTAKES = {
    "labels not shifted by rank·B": _unshifted,
    "this rank's pairs only, no gathered negatives": _local_only,
    "images → texts only": _one_direction,
    "the whole global batch's loss, not this rank's share": _whole_batch,
    "this rank's rows summed and divided by N·B": _over_global_batch,
    "the gathered columns detached": _gathered_detached,
}

register(
    Exercise(
        id="10.1",
        title="one rank's contrastive loss over the gathered batch",
        hint="B = len(all_images) // world_size; this rank's rows are rank * B … rank * B + B − 1 "
        "of all_images and all_texts; score them against every gathered text (image): logits "
        "of shape (B, N·B); the positive of local row i is column rank * B + i; each "
        "cross-entropy is the mean over these B rows (F.cross_entropy's default), and the loss "
        "is the average of the two; detach nothing (the gathered features carry the other "
        "ranks' gradients)",
        reference=rank_clip_loss,
        make_inputs=_gathered,
        wrong_answers=tuple(RANK_LOSS_MISTAKES.values()),
        gradients=True,
    )
)


# ---------------------------------------------------------------- predict, then run
register_prediction(
    "10.2",
    "the mean of two gathering ranks' losses (32 pairs each) against one process's loss on all 64",
    {
        "a": "lower than one process's loss",
        "b": "the same, within 1e-5",
        "c": "higher than one process's loss",
    },
    "b",
)
