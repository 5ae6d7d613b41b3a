"""Chapter 09: what a contrastive model's optimisation turns on, beyond its architecture.

The temperature τ divides every similarity before the softmax of CLIP's loss
(:func:`cmlib.retrieval.clip_loss`, whose ``logit_scale`` is 1/τ). It decides how the loss
spreads its push over the negatives. This module measures what it did:

* :func:`learnable_clip_loss` — CLIP's loss with τ learned as a log, clamped, as CLIP does;
  :func:`temperature_step` trains a dual encoder with it (or with a reader's own, exercise
  9.1);
* :func:`negative_weights` — the share of the loss's push that each candidate gets at a given
  τ: the softmax of similarities over τ (the gradient of the cross-entropy with respect to a
  negative's similarity is its softmax probability over τ);
* :func:`similarity_spread` — how far the true pairs' similarities stand above the rest, once
  a model is trained;
* :func:`hardest_negatives`, :func:`mine_hard_negatives` and
  :class:`CaptionsWithMinedNegatives` — each image's hardest wrong caption in the whole
  training set, re-mined every epoch, as one more negative; :func:`negative_kinds` — what the
  mined captions are.

The models are chapter 07 part 2's (:func:`cmlib.relation_retrieval.train_relation_model`),
with τ fixed or learned (:meth:`cmlib.retrieval.DualEncoder.set_temperature`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch.utils.data import Dataset

from .relation_retrieval import RelationSplit
from .retrieval import DualEncoder, clip_loss
from .shapes_retrieval import embed_split
from .validate import check_int, check_number, check_tensor


def learnable_clip_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    log_logit_scale: torch.Tensor,
    max_logit_scale: float = 100.0,
) -> torch.Tensor:
    """CLIP's symmetric loss with a learnable temperature, clamped.

    The model learns ``log(1/τ)``, not τ: the exponential keeps the scale positive, and a step
    changes τ by a ratio, the same at 0.07 as at 0.01. The log is clamped to
    ``[0, log(max_logit_scale)]``: τ between ``1/max_logit_scale`` (CLIP: 0.01) and 1. Without
    the upper clamp, τ keeps falling on a batch the model already separates, and the loss turns
    into a hard maximum over the negatives. Past either end the clamp passes no gradient.

    Args:
        image_features, text_features: ``(N, D)`` L2-normalised, row ``i`` a pair.
        log_logit_scale: a scalar tensor, the learnable ``log(1/τ)``.
        max_logit_scale: the clamp's upper end (CLIP: 100).
    """
    check_tensor("log_logit_scale", log_logit_scale, (), floating=True)
    check_number("max_logit_scale", max_logit_scale, low=1.0)
    scale = log_logit_scale.clamp(0.0, math.log(max_logit_scale)).exp()
    return clip_loss(image_features, text_features, scale)


def temperature_step(
    model: DualEncoder,
    batch: Sequence[torch.Tensor],
    loss_fn: Callable[..., torch.Tensor] = learnable_clip_loss,
) -> torch.Tensor:
    """A ``step_fn`` for :func:`cmlib.relation_retrieval.train_relation_model`: the batch's
    image and caption features and the model's own ``log_logit_scale`` go to ``loss_fn``
    (:func:`learnable_clip_loss`'s arguments; a reader's own with ``functools.partial``).
    With the temperature frozen, the loss's gradient still reaches every other weight."""
    images, ids, lengths, *_ = batch
    image_features, text_features, _ = model(images, ids, lengths)
    return loss_fn(image_features, text_features, model.log_logit_scale, model.max_logit_scale)


def negative_weights(similarities: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(similarities / τ): the weight of each candidate in one row of the loss.

    For a row whose true candidate is ``k``, the cross-entropy's gradient with respect to
    candidate ``j``'s similarity is ``(p_j - [j = k]) / τ``: every wrong candidate is pushed
    down in proportion to its probability ``p_j``.

    Args:
        similarities: ``(..., C)`` cosine similarities of one query to C candidates.
        temperature: τ > 0.

    Returns:
        ``(..., C)``, each row summing to 1.
    """
    check_tensor("similarities", similarities, floating=True)
    check_number("temperature", temperature, low=0.0, low_open=True)
    return torch.softmax(similarities / temperature, dim=-1)


@torch.no_grad()
def similarity_spread(
    image_embeddings: torch.Tensor, text_embeddings: torch.Tensor, relevant: torch.Tensor
) -> dict[str, float]:
    """How far the true pairs' cosine similarities stand above the wrong pairs'.

    Args:
        image_embeddings: ``(N, D)`` unit-length.
        text_embeddings: ``(M, D)`` unit-length.
        relevant: ``(M, N)`` bool, True where text ``m`` describes image ``n``.

    Returns:
        ``"true mean"`` and ``"wrong mean"`` (the mean cosine of true and wrong pairs),
        ``"wrong std"``, ``"separation"``: (true mean − wrong mean) / wrong std, and
        ``"hardest wrong mean"``: the mean over texts of the highest cosine among their wrong
        images (what a text's true image must beat to rank first).
    """
    check_tensor("image_embeddings", image_embeddings, ("N", "D"), floating=True)
    check_tensor(
        "text_embeddings", text_embeddings, ("M", image_embeddings.shape[1]), floating=True
    )
    check_tensor("relevant", relevant, (len(text_embeddings), len(image_embeddings)))
    relevant = relevant.bool()
    if not bool(relevant.any(dim=1).all()) or bool(relevant.all(dim=1).any()):
        raise ValueError("relevant needs a true and a wrong image for every text")
    scores = text_embeddings.float() @ image_embeddings.float().T
    true, wrong = scores[relevant], scores[~relevant]
    return {
        "true mean": true.mean().item(),
        "wrong mean": wrong.mean().item(),
        "wrong std": wrong.std().item(),
        "separation": ((true.mean() - wrong.mean()) / wrong.std()).item(),
        "hardest wrong mean": scores.masked_fill(relevant, -2.0).max(dim=1).values.mean().item(),
    }


def hardest_negatives(
    scores: torch.Tensor, row_scenes: torch.Tensor, column_scenes: torch.Tensor
) -> torch.Tensor:
    """For each row, the column with the highest score among the columns of *another* scene.

    Args:
        scores: ``(R, C)`` similarities of R queries (images) to C candidates (captions).
        row_scenes: ``(R,)`` the scene of each query.
        column_scenes: ``(C,)`` the scene of each candidate.

    Returns:
        ``(R,)`` column indices (int64).
    """
    check_tensor("scores", scores, ("R", "C"), floating=True)
    check_tensor("row_scenes", row_scenes, (scores.shape[0],), floating=False)
    check_tensor("column_scenes", column_scenes, (scores.shape[1],), floating=False)
    same = row_scenes[:, None] == column_scenes[None, :]
    if bool(same.all(dim=1).any()):
        raise ValueError("every row needs at least one column of another scene")
    return scores.masked_fill(same, float("-inf")).argmax(dim=1)


@torch.no_grad()
def mine_hard_negatives(
    model: DualEncoder, split: RelationSplit, device: torch.device, batch_size: int = 500
) -> torch.Tensor:
    """For every image of ``split``, the scene whose canonical caption the model scores highest
    among the captions of *other* scenes: its hardest negative in the whole training set.

    Captions of the same scene (``split.scene_ids``) are never mined: they are correct matches,
    and pushing them away would teach the model to separate what should stay together.

    Returns:
        ``(N,)`` indices into ``split``.
    """
    if not isinstance(split, RelationSplit):
        raise TypeError(f"expected a RelationSplit, got {type(split).__name__}")
    check_int("batch_size", batch_size)
    if len(split.scene_ids.unique()) < 2:
        raise ValueError("mining needs at least two different scenes")
    images, texts = embed_split(model, split, device, batch_size=batch_size)
    mined = []
    for rows in torch.arange(len(split)).split(batch_size):
        scores = images[rows].float() @ texts.float().T  # (rows, N)
        mined.append(hardest_negatives(scores, split.scene_ids[rows], split.scene_ids))
    return torch.cat(mined)


NEGATIVE_KINDS = (
    "the mirrored scene",
    "the same words, another scene",
    "one attribute or the relation changed",
    "two or more changed",
)


def _mirrored(key: tuple) -> tuple:
    """The scene key with the two objects exchanged (:func:`~cmlib.relation_retrieval.scene_key`
    puts the first object's shape, colour, size, then the relation, then the second's)."""
    return (*key[4:], key[3], *key[:3])


def negative_kinds(split: RelationSplit, negatives: torch.Tensor) -> dict[str, float]:
    """What each image's negative is, relative to its own scene: the share of each kind.

    The kinds (:data:`NEGATIVE_KINDS`, first match wins): the mirrored scene (the two objects
    exchanged); another scene whose canonical caption has the same words (colours swapped
    between the objects, say); one attribute of one object, or the relation, changed; two or
    more changed.

    Args:
        split: the scenes, with their ``scene_keys``.
        negatives: ``(N,)`` indices into ``split``, each of another scene.
    """
    if not isinstance(split, RelationSplit):
        raise TypeError(f"expected a RelationSplit, got {type(split).__name__}")
    check_tensor("negatives", negatives, (len(split),), floating=False)
    if len(negatives) == 0:
        raise ValueError("negatives is empty")
    if negatives.min() < 0 or negatives.max() >= len(split):
        raise ValueError(f"negatives must index the split's {len(split)} scenes")
    if bool((split.scene_ids[negatives] == split.scene_ids).any()):
        raise ValueError("a negative shows its image's own scene")
    counts = dict.fromkeys(NEGATIVE_KINDS, 0)
    keys, captions = split.scene_keys, split.captions
    for i, j in enumerate(negatives.tolist()):
        if keys[j] == _mirrored(keys[i]):
            kind = NEGATIVE_KINDS[0]
        elif sorted(captions[i][0].split()) == sorted(captions[j][0].split()):
            kind = NEGATIVE_KINDS[1]
        elif sum(a != b for a, b in zip(keys[i], keys[j])) == 1:
            kind = NEGATIVE_KINDS[2]
        else:
            kind = NEGATIVE_KINDS[3]
        counts[kind] += 1
    return {kind: count / len(negatives) for kind, count in counts.items()}


class CaptionsWithMinedNegatives(Dataset):
    """Items ``(image, ids, length, negative_ids, negative_length)`` for
    :func:`cmlib.relation_retrieval.hard_negative_step`: a random paraphrase of the scene's
    caption and, as the extra caption to reject, the canonical caption of the scene
    ``negatives[i]`` (from :func:`mine_hard_negatives`)."""

    def __init__(self, split: RelationSplit, negatives: torch.Tensor):
        if not isinstance(split, RelationSplit):
            raise TypeError(f"expected a RelationSplit, got {type(split).__name__}")
        check_tensor("negatives", negatives, (len(split),), floating=False)
        if len(negatives) and (negatives.min() < 0 or negatives.max() >= len(split)):
            raise ValueError(f"negatives must index the split's {len(split)} scenes")
        self.split, self.negatives = split, negatives

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        s, negative = self.split, int(self.negatives[index])
        variant = int(torch.randint(s.ids.shape[1], ()))
        return (
            s.images[index],
            s.ids[index, variant],
            s.lengths[index, variant],
            s.ids[negative, 0],
            s.lengths[negative, 0],
        )
