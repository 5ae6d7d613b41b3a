"""Zero-shot classification with prompt templates (提示词模板), as CLIP and open_clip do it.

A class becomes a sentence — "an emoji of {}" filled with its name — and the sentence's
embedding in the shared space is the class's classifier weight:

* :func:`apply_templates` — every template filled with every class name;
* :func:`zero_shot_classifier` — one unit vector per class, the normalised mean over its
  templates (a *template ensemble*, like open_clip's ``build_zero_shot_classifier``);
* :func:`ensemble_embeddings`, :func:`template_ranks`, :func:`rank_table` and
  :func:`template_table` — each template alone against their ensemble, as top-k accuracy;
* :func:`validated_template_choice` — a single template chosen on validation images, against the
  ensemble on test images. Chapter 07, section 5.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .retrieval import first_relevant_rank, recall_at_k
from .validate import check_tensor


def apply_templates(classnames: Sequence[str], templates: Sequence[str]) -> list[str]:
    """Every template filled with every class name, class-major: ``C * T`` strings.

    Raises:
        ValueError: if a template has no ``{}`` slot, or a list is empty.
    """
    if isinstance(classnames, str) or isinstance(templates, str):
        raise TypeError("classnames and templates must be lists of strings, not one string")
    if not classnames or not templates:
        raise ValueError("need at least one class name and one template")
    for template in templates:
        if "{}" not in template:
            raise ValueError(f"template {template!r} has no '{{}}' slot for the class name")
    return [template.format(name) for name in classnames for template in templates]


@torch.no_grad()
def zero_shot_classifier(
    encode_text: Callable[[list[str]], torch.Tensor],
    classnames: Sequence[str],
    templates: Sequence[str],
) -> torch.Tensor:
    """One unit vector per class: the normalised mean of its normalised template embeddings.

    With one template this is just that prompt's embedding; with several it is
    a *template ensemble*, as in open_clip's ``build_zero_shot_classifier``.

    Args:
        encode_text: ``list[str] → (N, D)`` embeddings in the shared space.
        classnames: C class names.
        templates: T templates such as ``"an emoji of {}"``.

    Returns:
        ``(C, D)`` class embeddings.
    """
    texts = apply_templates(classnames, templates)
    emb = F.normalize(encode_text(texts).float(), dim=-1)
    emb = emb.reshape(len(classnames), len(templates), -1).mean(dim=1)
    return F.normalize(emb, dim=-1)


def ensemble_embeddings(per_template: torch.Tensor) -> torch.Tensor:
    """Template ensembling: ``(T, C, D)`` per-template class embeddings → ``(C, D)``.

    Normalise each embedding, average over templates, normalise again.
    """
    if per_template.ndim != 3:
        raise ValueError(f"expected (templates, classes, dim), got {tuple(per_template.shape)}")
    return F.normalize(F.normalize(per_template, dim=-1).mean(dim=0), dim=-1)


@torch.no_grad()
def template_ranks(
    image_embeddings: torch.Tensor,
    labels: torch.Tensor,
    encode_text: Callable[[list[str]], torch.Tensor],
    classnames: Sequence[str],
    templates: Sequence[str],
) -> tuple[list[str], torch.Tensor]:
    """The rank of each image's own class, under each template alone and under their ensemble.

    Args:
        image_embeddings: ``(N, D)`` images in the shared space.
        labels: ``(N,)`` index of each image's class in ``classnames``.
        encode_text: ``list[str] → (M, D)``.
        classnames: C names.
        templates: T templates.

    Returns:
        ``(names, ranks)``: the T templates then ``"ensemble of all"``, and ``(T + 1, N)``
        1-based ranks (1 means the image's own class scored highest).
    """
    check_tensor("image_embeddings", image_embeddings, ("N", "D"), floating=True)
    check_tensor("labels", labels, (len(image_embeddings),), floating=False)
    texts = apply_templates(classnames, templates)
    emb = F.normalize(encode_text(texts).float(), dim=-1)
    per_template = emb.reshape(len(classnames), len(templates), -1).transpose(0, 1)
    images = F.normalize(image_embeddings.float(), dim=-1)
    relevant = labels[:, None] == torch.arange(len(classnames))[None, :]
    classifiers = [*per_template, ensemble_embeddings(per_template)]
    ranks = torch.stack([first_relevant_rank(images @ c.T, relevant) for c in classifiers])
    return [*templates, "ensemble of all"], ranks


def rank_table(
    names: Sequence[str], ranks: torch.Tensor, ks: Sequence[int] = (1, 10)
) -> list[dict]:
    """Top-k accuracy rows ``{"template": ..., "top1": ..., "top10": ...}`` from
    :func:`template_ranks`' output."""
    check_tensor("ranks", ranks, (len(names), "N"))
    return [
        {"template": name, **{f"top{k}": recall_at_k(r, k) for k in ks}}
        for name, r in zip(names, ranks)
    ]


def template_table(
    image_embeddings: torch.Tensor,
    labels: torch.Tensor,
    encode_text: Callable[[list[str]], torch.Tensor],
    classnames: Sequence[str],
    templates: Sequence[str],
    ks: Sequence[int] = (1, 10),
) -> list[dict]:
    """Zero-shot top-k accuracy for each template alone and for their ensemble.

    Args: as :func:`template_ranks`, plus ``ks``, the top-k cut-offs.

    Returns:
        T + 1 rows ``{"template": ..., "top1": ..., "top10": ...}``, the ensemble last.
    """
    names, ranks = template_ranks(image_embeddings, labels, encode_text, classnames, templates)
    return rank_table(names, ranks, ks)


def validated_template_choice(
    ranks: torch.Tensor, num_splits: int, generator: torch.Generator
) -> dict:
    """Pick a single template on validation images and score it on test images, many times.

    Picking "the best template" on the images it is then scored on flatters it: it is the best of
    T noisy numbers. Here each split halves the images at random; the template with the best
    validation top-1 is chosen and scored, with the ensemble, on the other half only. Averaging
    over ``num_splits`` random halvings makes the comparison far less noisy than one split.

    Args:
        ranks: ``(T + 1, N)`` from :func:`template_ranks`, the ensemble last.
        num_splits: how many random halvings, at least 1.
        generator: draws the halvings.

    Returns:
        ``chosen_top1`` and ``ensemble_top1``: mean test top-1 over the splits; ``choices``: how
        often each template index was chosen (a length-T list).
    """
    check_tensor("ranks", ranks, ("T", "N"))
    if ranks.shape[0] < 2 or ranks.shape[1] < 2:
        raise ValueError(
            f"need at least one template plus the ensemble, and 2 images: "
            f"got ranks of shape {tuple(ranks.shape)}"
        )
    if isinstance(num_splits, bool) or not isinstance(num_splits, int) or num_splits < 1:
        raise ValueError(f"num_splits must be a positive int, got {num_splits!r}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    hits = (ranks == 1).float()
    n = hits.shape[1]
    chosen, ensemble, choices = [], [], [0] * (hits.shape[0] - 1)
    for _ in range(num_splits):
        order = torch.randperm(n, generator=generator)
        validation, test = order[: n // 2], order[n // 2 :]
        best = int(hits[:-1, validation].mean(dim=1).argmax())  # ties go to the first template
        choices[best] += 1
        chosen.append(hits[best, test].mean().item())
        ensemble.append(hits[-1, test].mean().item())
    return {
        "chosen_top1": sum(chosen) / num_splits,
        "ensemble_top1": sum(ensemble) / num_splits,
        "choices": choices,
    }
