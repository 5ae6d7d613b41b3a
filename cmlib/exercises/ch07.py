"""Chapter 07 exercises: the InfoNCE loss, recall@K with attribute relevance, template
ensembling; part 2: the loss with hard negatives."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..relation_retrieval import hard_negative_clip_loss
from ..retrieval import clip_loss, first_relevant_rank
from ..zeroshot import ensemble_embeddings
from . import Exercise, register, register_prediction


# ---------------------------------------------------------------- 7.1 InfoNCE
def info_nce(
    image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor | float
) -> torch.Tensor:
    """Symmetric InfoNCE of a batch of N normalised pairs (row i of each is a pair)."""
    return clip_loss(image_features, text_features, logit_scale)


def _pairs(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n, d = int(rng.integers(4, 12)), int(rng.integers(8, 32))
    image = F.normalize(torch.from_numpy(rng.normal(size=(n, d))).float(), dim=1)
    # texts correlated with their images, so the loss is neither trivial nor symmetric by chance
    text = F.normalize(image + torch.from_numpy(rng.normal(size=(n, d))).float(), dim=1)
    # a scalar tensor, as the model's learnable inverse temperature is: its gradient is checked
    return image, text, torch.tensor(float(rng.uniform(5.0, 30.0)))


def _one_direction(image, text, scale):
    logits = scale * image @ text.T
    return F.cross_entropy(logits, torch.arange(len(image)))


def _no_scale(image, text, scale):
    logits = image @ text.T
    labels = torch.arange(len(image))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def _temperature_detached(image, text, scale):  # right value; the temperature never learns
    return clip_loss(image, text, scale.detach())


def _sum_not_mean(image, text, scale):
    logits = scale * image @ text.T
    labels = torch.arange(len(image))
    return F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)


register(
    Exercise(
        id="7.1",
        title="the symmetric InfoNCE loss",
        hint="logits = logit_scale * image @ text.T; the targets are arange(N) on the features' "
        "device; average the "
        "cross-entropy of the rows (image→text) and of the columns (text→image, logits.T); use "
        "logit_scale as it comes (no .item() or .detach()), so the temperature can learn",
        reference=info_nce,
        make_inputs=_pairs,
        wrong_answers=(_one_direction, _no_scale, _sum_not_mean, _temperature_detached),
        trials=5,
        gradients=True,
    )
)


# ---------------------------------------------------------------- 7.2 recall@K
def recall_at_k_relevant(scores: torch.Tensor, relevant: torch.Tensor, k: int) -> float:
    """Share of queries with at least one relevant item among their k best-scored items."""
    return (first_relevant_rank(scores, relevant) <= k).float().mean().item()


def _scores_and_relevance(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, int]:
    q, g = int(rng.integers(6, 16)), int(rng.integers(20, 40))
    scores = torch.from_numpy(rng.normal(size=(q, g))).float()
    labels_q = torch.from_numpy(rng.integers(0, 4, size=q))
    labels_g = torch.from_numpy(rng.integers(0, 4, size=g))
    labels_g[:4] = torch.arange(4)  # every label occurs in the gallery
    relevant = labels_q[:, None] == labels_g[None, :]
    return scores, relevant, int(rng.integers(2, 6))


def _exact_pair_only(scores, relevant, k):  # treats only item i as relevant to query i
    top = scores.topk(k, dim=1).indices
    return (top == torch.arange(len(scores))[:, None]).any(dim=1).float().mean().item()


def _off_by_one(scores, relevant, k):  # counts rank < k instead of rank <= k
    return (first_relevant_rank(scores, relevant) < k).float().mean().item()


def _precision_at_k(scores, relevant, k):  # the share of the top k that is relevant
    top = scores.topk(k, dim=1).indices
    return torch.gather(relevant, 1, top).float().mean().item()


register(
    Exercise(
        id="7.2",
        title="recall@K with attribute-defined relevance",
        hint="for each query take the indices of its k highest scores (topk) and ask whether ANY "
        "of them is relevant; average over queries",
        reference=recall_at_k_relevant,
        make_inputs=_scores_and_relevance,
        wrong_answers=(_exact_pair_only, _off_by_one, _precision_at_k),
        trials=8,
    )
)


# ---------------------------------------------------------------- 7.4 template ensemble
def template_ensemble(per_template: torch.Tensor) -> torch.Tensor:
    """``(T, C, D)`` text embeddings of C classes under T templates → ``(C, D)`` unit vectors."""
    return ensemble_embeddings(per_template)


def _per_template(rng: np.random.Generator) -> tuple[torch.Tensor]:
    t, c, d = int(rng.integers(2, 6)), int(rng.integers(3, 8)), int(rng.integers(8, 24))
    x = torch.from_numpy(rng.normal(size=(t, c, d))).float()
    norms = torch.from_numpy(rng.uniform(0.2, 5.0, size=(t, c, 1))).float()
    return (x * norms,)  # unequal lengths: normalising first matters


register(
    Exercise(
        id="7.4",
        title="a template ensemble",
        hint="normalise every embedding (dim=-1), average over the templates (dim=0), "
        "then normalise the average again",
        reference=template_ensemble,
        make_inputs=_per_template,
        wrong_answers=(
            lambda x: F.normalize(x.mean(dim=0), dim=-1),  # no normalisation before averaging
            lambda x: F.normalize(x, dim=-1).mean(dim=0),  # no normalisation after
            lambda x: F.normalize(F.normalize(x, dim=-1).mean(dim=1), dim=-1),  # averages classes
        ),
        trials=5,
    )
)


# ---------------------------------------------------------------- 7.7 hard negatives
def hard_negative_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    negative_features: torch.Tensor,
    logit_scale: torch.Tensor | float,
) -> torch.Tensor:
    """CLIP's loss with row ``i`` of ``negative_features`` one more caption image ``i`` rejects."""
    return hard_negative_clip_loss(image_features, text_features, negative_features, logit_scale)


def _with_negatives(rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    image, text, scale = _pairs(rng)
    # negatives close to the true captions, as swapped captions are
    noise = torch.from_numpy(rng.normal(size=tuple(text.shape))).float()
    negative = F.normalize(text + 0.5 * noise, dim=1)
    return image, text, negative, scale


def _ignores_negatives(image, text, negative, scale):
    return clip_loss(image, text, scale)


def _negatives_on_both_sides(image, text, negative, scale):  # also makes captions pick negatives
    labels = torch.arange(len(image))
    texts = torch.cat([text, negative])
    per_image = scale * image @ texts.T
    per_text = scale * texts @ image.T
    return (
        F.cross_entropy(per_image, labels) + F.cross_entropy(per_text, torch.cat([labels, labels]))
    ) / 2


def _negatives_unscaled(image, text, negative, scale):
    labels = torch.arange(len(image))
    per_image = torch.cat([scale * image @ text.T, image @ negative.T], dim=1)
    return (
        F.cross_entropy(per_image, labels) + F.cross_entropy(scale * text @ image.T, labels)
    ) / 2


def _negatives_detached(image, text, negative, scale):  # the text tower never learns to reject
    return hard_negative_clip_loss(image, text, negative.detach(), scale)


register(
    Exercise(
        id="7.7",
        title="the contrastive loss with hard negatives",
        hint="stack the N captions and the N negatives into 2N texts; image i's logits are "
        "logit_scale * image @ texts.T and its target is still i (arange(N) on the features' "
        "device); the caption side is CLIP's "
        "(each caption picks its image among the N images); average the two cross-entropies; "
        "detach nothing: the negatives' gradient teaches the text tower to reject them",
        reference=hard_negative_loss,
        make_inputs=_with_negatives,
        wrong_answers=(
            _ignores_negatives,
            _negatives_on_both_sides,
            _negatives_unscaled,
            _negatives_detached,
        ),
        trials=5,
        gradients=True,
    )
)


# ---------------------------------------------------------------- predict, then run
register_prediction(
    "7.5",
    "will the template ensemble beat the template chosen on validation emoji?",
    {
        "a": "yes, clearly: by more than 0.02 of top-1",
        "b": "about the same: within 0.02 either way",
        "c": "no, clearly worse: by more than 0.02",
    },
    "b",
)
register_prediction(
    "7.6",
    "part 1's model on the swap test",
    {
        "a": "close to a coin: a swap accuracy of 0.70 or less",
        "b": "between 0.70 and 0.90",
        "c": "above 0.90, as its one-object retrieval was",
    },
    "a",
)
register_prediction(
    "7.3",
    "text-to-image R@1 on colour-shape pairs never seen in training",
    {
        "a": "near chance: below 0.1",
        "b": "between 0.1 and 0.8",
        "c": "above 0.8",
    },
    "c",
)
