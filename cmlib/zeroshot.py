"""Zero-shot classification with prompt templates (提示词模板), as CLIP and open_clip do it.

A class becomes a sentence — "an emoji of {}" filled with its name — and the sentence's
embedding in the shared space is the class's classifier weight:

* :func:`apply_templates` — every template filled with every class name;
* :func:`zero_shot_classifier` — one unit vector per class, the normalised mean over its
  templates (a *template ensemble*, like open_clip's ``build_zero_shot_classifier``);
* :func:`ensemble_embeddings` and :func:`template_table` — each template alone against their
  ensemble, as top-k accuracy. Chapter 07, section 5.
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
def template_table(
    image_embeddings: torch.Tensor,
    labels: torch.Tensor,
    encode_text: Callable[[list[str]], torch.Tensor],
    classnames: Sequence[str],
    templates: Sequence[str],
    ks: Sequence[int] = (1, 10),
) -> list[dict]:
    """Zero-shot top-k accuracy for each template alone and for their ensemble.

    Args:
        image_embeddings: ``(N, D)`` images in the shared space.
        labels: ``(N,)`` index of each image's class in ``classnames``.
        encode_text: ``list[str] → (M, D)``.
        classnames: C names.
        templates: T templates.
        ks: top-k cut-offs.

    Returns:
        T + 1 rows ``{"template": ..., "top1": ..., "top10": ...}``, the ensemble last.
    """
    check_tensor("image_embeddings", image_embeddings, ("N", "D"), floating=True)
    if labels.shape != image_embeddings.shape[:1]:
        raise ValueError(f"labels must be ({len(image_embeddings)},), got {tuple(labels.shape)}")
    texts = apply_templates(classnames, templates)
    emb = F.normalize(encode_text(texts).float(), dim=-1)
    per_template = emb.reshape(len(classnames), len(templates), -1).transpose(0, 1)
    images = F.normalize(image_embeddings.float(), dim=-1)
    relevant = labels[:, None] == torch.arange(len(classnames))[None, :]
    rows = []
    candidates = [(t, per_template[i]) for i, t in enumerate(templates)]
    candidates.append(("ensemble of all", ensemble_embeddings(per_template)))
    for name, classes in candidates:
        ranks = first_relevant_rank(images @ classes.T, relevant)
        rows.append({"template": name, **{f"top{k}": recall_at_k(ranks, k) for k in ks}})
    return rows
