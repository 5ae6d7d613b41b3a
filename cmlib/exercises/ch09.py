"""Chapter 09 exercise: one rank's share of the contrastive loss over the global batch."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import Exercise, register


# ---------------------------------------------------------------- 9.1 one rank's loss
def rank_clip_loss(image_features, text_features, all_images, all_texts, rank, logit_scale):
    """CLIP's loss for this rank's B pairs against all N·B gathered features.

    Rows are this rank's images (texts); columns are every rank's texts (images); the positive
    of local row i is global column rank·B + i.
    """
    batch = image_features.shape[0]
    labels = torch.arange(batch) + rank * batch
    logits_per_image = logit_scale * image_features @ all_texts.T
    logits_per_text = logit_scale * text_features @ all_images.T
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
    mine = slice(rank * batch, (rank + 1) * batch)
    return all_images[mine], all_texts[mine], all_images, all_texts, rank, float(rng.uniform(5, 20))


def _unshifted(image, text, all_images, all_texts, rank, scale):  # labels 0…B−1 on every rank
    labels = torch.arange(image.shape[0])
    return (
        F.cross_entropy(scale * image @ all_texts.T, labels)
        + F.cross_entropy(scale * text @ all_images.T, labels)
    ) / 2


def _local_only(image, text, all_images, all_texts, rank, scale):  # B − 1 negatives, no gather
    labels = torch.arange(image.shape[0])
    return (
        F.cross_entropy(scale * image @ text.T, labels)
        + F.cross_entropy(scale * text @ image.T, labels)
    ) / 2


def _one_direction(image, text, all_images, all_texts, rank, scale):  # images → texts only
    labels = torch.arange(image.shape[0]) + rank * image.shape[0]
    return F.cross_entropy(scale * image @ all_texts.T, labels)


def _gathered_detached(image, text, all_images, all_texts, rank, scale):  # all_gather's copy
    # the right value, but no gradient reaches the other ranks' features: what a plain
    # all_gather gives (the chapter's gather keeps the gradient)
    return rank_clip_loss(image, text, all_images.detach(), all_texts.detach(), rank, scale)


register(
    Exercise(
        id="9.1",
        title="one rank's contrastive loss over the gathered batch",
        hint="logits of this rank's images against all texts and of its texts against all "
        "images; the positive of local row i is column rank * B + i; average the two "
        "cross-entropies; detach nothing (the gathered features carry the other ranks' "
        "gradients)",
        reference=rank_clip_loss,
        make_inputs=_gathered,
        wrong_answers=(_unshifted, _local_only, _one_direction, _gathered_detached),
        gradients=True,
    )
)
