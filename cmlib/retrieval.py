"""Cross-modal retrieval (跨模态检索): dual encoders, the contrastive loss, metrics, search.

The pieces, in the order chapter 07 uses them:

* :class:`DualEncoder` — an image tower and a text tower, each followed by a
  projection head into one shared space, plus CLIP's learned temperature.
* :func:`clip_loss` — the symmetric InfoNCE loss, written like open_clip's
  ``ClipLoss`` (``loss.py``): cross-entropy over the image→text logits and over
  the text→image logits, averaged.
* Metrics — :func:`first_relevant_rank`, :func:`recall_at_k`, :func:`median_rank`
  and :func:`retrieval_metrics`, where *relevance* is a boolean matrix, e.g.
  :func:`attribute_relevance` ("same colour, shape, size and position").
* :class:`ExactIndex` — exact search with one matrix product and ``topk``.
* :func:`zero_shot_classifier` — class embeddings from prompt templates
  (提示词), and template ensembles (the mean of normalised text embeddings).
* :class:`CrossModalSearch` — text→image and image→text search over a gallery,
  the engine behind :mod:`cmlib.widgets_retrieval`.

Bad input: an empty query raises ``ValueError``. A ``k`` larger than the
gallery is **clamped to the gallery size with a** ``UserWarning`` (a search
box over a small gallery should still answer); ``k < 1`` raises ``ValueError``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

#: CLIP's initial temperature is 0.07, so the logit scale starts at 1 / 0.07 ≈ 14.3.
INIT_LOGIT_SCALE = 1 / 0.07
#: CLIP clips the logit scale at 100 so that training cannot make the softmax arbitrarily sharp.
MAX_LOGIT_SCALE = 100.0


# ---------------------------------------------------------------- checks
def _check_matrix(name: str, x, dim: int | None = None) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be a matrix (N, D), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, got dtype {x.dtype}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} columns, got {x.shape[1]}")


def check_k(k: int, gallery_size: int) -> int:
    """``k`` clamped to ``gallery_size`` with a warning; ``ValueError`` if ``k < 1``."""
    if not isinstance(k, int) or isinstance(k, bool):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if gallery_size < 1:
        raise ValueError("the gallery is empty: nothing to search")
    if k > gallery_size:
        warnings.warn(f"k={k} is larger than the gallery ({gallery_size} items); "
                      f"returning all {gallery_size}", UserWarning, stacklevel=3)
        return gallery_size
    return k


# ---------------------------------------------------------------- loss
def clip_loss(image_features: torch.Tensor, text_features: torch.Tensor,
              logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP's loss): pair ``i`` is the positive of row and column ``i``.

    As in open_clip's ``ClipLoss``::

        logits_per_image = logit_scale * image_features @ text_features.T
        logits_per_text  = logits_per_image.T
        loss = (cross_entropy(logits_per_image, arange(N)) +
                cross_entropy(logits_per_text,  arange(N))) / 2

    Args:
        image_features: ``(N, D)`` L2-normalised image embeddings.
        text_features: ``(N, D)`` L2-normalised text embeddings, row ``i`` paired with image ``i``.
        logit_scale: the inverse temperature (a scalar tensor or a float > 0).

    Returns:
        The scalar loss.
    """
    _check_matrix("image_features", image_features)
    _check_matrix("text_features", text_features, image_features.shape[1])
    if text_features.shape[0] != image_features.shape[0]:
        raise ValueError(f"need as many texts as images, got {text_features.shape[0]} and "
                         f"{image_features.shape[0]}")
    if image_features.shape[0] < 2:
        raise ValueError("a contrastive batch needs at least 2 pairs (each needs a negative)")
    logits_per_image = logit_scale * image_features @ text_features.T
    labels = torch.arange(image_features.shape[0], device=image_features.device)
    return (F.cross_entropy(logits_per_image, labels) +
            F.cross_entropy(logits_per_image.T, labels)) / 2


# ---------------------------------------------------------------- model
def projection_head(in_dim: int, out_dim: int, kind: str = "linear", hidden_dim: int = 512,
                    dropout: float = 0.0, hidden_dropout: float | None = None) -> nn.Module:
    """A projection into the shared space.

    Args:
        in_dim: size of the tower's output.
        out_dim: size of the shared space.
        kind: ``"identity"`` (needs ``in_dim == out_dim``), ``"linear"`` or ``"mlp"``
            (dropout → linear → GELU → dropout → linear).
        hidden_dim: width of the MLP's hidden layer.
        dropout: dropout probability on the MLP's input.
        hidden_dropout: dropout on its hidden layer (default: ``dropout``).
    """
    if kind == "identity":
        if in_dim != out_dim:
            raise ValueError(f"an identity head needs in_dim == out_dim, got {in_dim} and {out_dim}")
        return nn.Identity()
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "mlp":
        hidden_dropout = dropout if hidden_dropout is None else hidden_dropout
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, hidden_dim), nn.GELU(),
                             nn.Dropout(hidden_dropout), nn.Linear(hidden_dim, out_dim))
    raise ValueError(f"kind must be 'identity', 'linear' or 'mlp', got {kind!r}")


class DualEncoder(nn.Module):
    """Two towers and two heads into one shared, normalised embedding space (CLIP-style).

    Args:
        image_tower: maps images to ``(B, image_dim)``; ``nn.Identity()`` for precomputed features.
        text_tower: maps ``*text_inputs`` (e.g. ``ids, lengths``) to ``(B, text_dim)``.
        image_dim: output size of the image tower.
        text_dim: output size of the text tower.
        embed_dim: size of the shared space.
        image_head: kind of image projection (see :func:`projection_head`).
        text_head: kind of text projection.
        hidden_dim: hidden width of MLP heads.
        dropout: dropout on the input of MLP heads.
        hidden_dropout: dropout on their hidden layer (default: ``dropout``).
        init_logit_scale: the starting inverse temperature (CLIP: 1 / 0.07).
        max_logit_scale: the clamp (CLIP: 100).

    Shapes:
        ``encode_image(images)`` → ``(B, embed_dim)``; ``encode_text(*text_inputs)`` →
        ``(B, embed_dim)``, both unit length. ``forward(images, *text_inputs)`` →
        ``(image_embeddings, text_embeddings, logit_scale)``, ready for :func:`clip_loss`.
    """

    def __init__(self, image_tower: nn.Module, text_tower: nn.Module, image_dim: int,
                 text_dim: int, embed_dim: int = 128, image_head: str = "linear",
                 text_head: str = "linear", hidden_dim: int = 512, dropout: float = 0.0,
                 hidden_dropout: float | None = None,
                 init_logit_scale: float = INIT_LOGIT_SCALE,
                 max_logit_scale: float = MAX_LOGIT_SCALE):
        super().__init__()
        if not 1.0 <= init_logit_scale <= max_logit_scale:
            raise ValueError(f"need 1 <= init_logit_scale <= max_logit_scale, got "
                             f"{init_logit_scale} and {max_logit_scale}")
        self.image_tower, self.text_tower = image_tower, text_tower
        self.image_head = projection_head(image_dim, embed_dim, image_head, hidden_dim, dropout,
                                          hidden_dropout)
        self.text_head = projection_head(text_dim, embed_dim, text_head, hidden_dim, dropout,
                                         hidden_dropout)
        self.embed_dim, self.max_logit_scale = embed_dim, max_logit_scale
        # Learned in log space, as CLIP does: exp keeps it positive.
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(init_logit_scale)))

    @property
    def logit_scale(self) -> torch.Tensor:
        """``exp(log_logit_scale)`` clamped to ``[1, max_logit_scale]``."""
        return self.log_logit_scale.clamp(0.0, math.log(self.max_logit_scale)).exp()

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        z = self.image_head(self.image_tower(images))
        return F.normalize(z, dim=-1) if normalize else z

    def encode_text(self, *text_inputs: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        z = self.text_head(self.text_tower(*text_inputs))
        return F.normalize(z, dim=-1) if normalize else z

    def forward(self, images: torch.Tensor, *text_inputs: torch.Tensor):
        return self.encode_image(images), self.encode_text(*text_inputs), self.logit_scale


def contrastive_step(model: DualEncoder, batch: Sequence[torch.Tensor]) -> torch.Tensor:
    """A ``step_fn`` for :func:`cmlib.train.fit`: batch ``(images, *text_inputs)`` → CLIP loss."""
    images, *text_inputs = batch
    return clip_loss(*model(images, *text_inputs))


class CaptionedImages(Dataset):
    """Images with several captions each; every access draws one caption variant at random.

    Drawing a fresh paraphrase (or prompt template) each time is text
    augmentation: the model cannot memorise one wording.

    Args:
        images: ``(N, C, H, W)`` float images, or ``(N, F)`` precomputed features.
        texts: ``(N, V, ...)`` V variants per image: token ids ``(N, V, T)`` or text features
            ``(N, V, D)``.
        lengths: ``(N, V)`` true lengths of token ids; ``None`` for text features.

    Items are ``(image, text)`` or, with lengths, ``(image, ids, length)``.
    """

    def __init__(self, images: torch.Tensor, texts: torch.Tensor,
                 lengths: torch.Tensor | None = None):
        if texts.ndim < 3:
            raise ValueError(f"expected texts (N, V, ...) with V variants, got {tuple(texts.shape)}")
        if lengths is not None and lengths.shape != texts.shape[:2]:
            raise ValueError(f"expected lengths {tuple(texts.shape[:2])}, got {tuple(lengths.shape)}")
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} caption sets")
        self.images, self.texts, self.lengths = images, texts, lengths

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        variant = int(torch.randint(self.texts.shape[1], ()))
        if self.lengths is None:
            return self.images[index], self.texts[index, variant]
        return self.images[index], self.texts[index, variant], self.lengths[index, variant]


def caption_tensors(vocab, captions: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenise N lists of V captions into ids ``(N, V, T)`` and lengths ``(N, V)``.

    Args:
        vocab: a :class:`cmlib.text.Vocab`.
        captions: N lists, each with the same number V of caption strings.
    """
    if not captions:
        raise ValueError("caption_tensors needs at least one caption list")
    variants = len(captions[0])
    if variants == 0 or any(len(c) != variants for c in captions):
        raise ValueError("every item needs the same, non-zero number of captions")
    ids, lengths = vocab.encode_batch([c for group in captions for c in group])
    return ids.view(len(captions), variants, -1), lengths.view(len(captions), variants)


# ---------------------------------------------------------------- metrics
def attribute_relevance(query_attributes: dict[str, torch.Tensor],
                        gallery_attributes: dict[str, torch.Tensor],
                        keys: Sequence[str]) -> torch.Tensor:
    """``relevant[q, g]`` is True where query ``q`` and gallery item ``g`` agree on every key.

    Args:
        query_attributes: attribute name → ``(Q,)`` integer labels.
        gallery_attributes: attribute name → ``(G,)`` integer labels.
        keys: the attributes that define "the same meaning", e.g. ``("shape", "color")``.

    Returns:
        ``(Q, G)`` bool tensor.
    """
    if not keys:
        raise ValueError("attribute_relevance needs at least one attribute key")
    relevant = None
    for key in keys:
        if key not in query_attributes or key not in gallery_attributes:
            raise ValueError(f"attribute {key!r} missing; queries have {sorted(query_attributes)}, "
                             f"gallery has {sorted(gallery_attributes)}")
        same = query_attributes[key][:, None] == gallery_attributes[key][None, :]
        relevant = same if relevant is None else relevant & same
    return relevant


def first_relevant_rank(scores: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """The 1-based rank of the best-scored relevant item for each query.

    ``rank = 1 + (number of items scored strictly higher than every relevant item)``.

    Args:
        scores: ``(Q, G)`` similarities, higher is better.
        relevant: ``(Q, G)`` bool; every query needs at least one relevant item.

    Returns:
        ``(Q,)`` long tensor of ranks in ``1..G``.
    """
    _check_matrix("scores", scores)
    if relevant.shape != scores.shape or relevant.dtype != torch.bool:
        raise ValueError(f"relevant must be a bool tensor of shape {tuple(scores.shape)}, got "
                         f"{relevant.dtype} {tuple(relevant.shape)}")
    if scores.shape[0] == 0:
        raise ValueError("no queries: scores has 0 rows")
    has = relevant.any(dim=1)
    if not bool(has.all()):
        bad = int((~has).nonzero()[0])
        raise ValueError(f"query {bad} has no relevant gallery item; every query needs one")
    best_relevant = scores.masked_fill(~relevant, float("-inf")).max(dim=1).values
    return (scores > best_relevant[:, None]).sum(dim=1) + 1


def recall_at_k(ranks: torch.Tensor, k: int) -> float:
    """Share of queries whose first relevant item is in the top ``k`` (R@K)."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if ranks.numel() == 0:
        raise ValueError("recall_at_k needs at least one rank")
    return (ranks <= k).float().mean().item()


def median_rank(ranks: torch.Tensor) -> float:
    """The median of the first-relevant ranks (1 is perfect)."""
    if ranks.numel() == 0:
        raise ValueError("median_rank needs at least one rank")
    return ranks.float().median().item()


def chance_recall_at_k(relevant: torch.Tensor, k: int) -> float:
    """Expected R@K of a random ranking: ``1 - C(G - r, k) / C(G, k)``, averaged over queries."""
    if relevant.ndim != 2:
        raise ValueError(f"relevant must be (Q, G), got shape {tuple(relevant.shape)}")
    gallery = relevant.shape[1]
    k = min(k, gallery)
    r = relevant.sum(dim=1).double()
    miss = torch.ones_like(r)
    for i in range(k):  # probability that the first k draws are all irrelevant
        miss = miss * ((gallery - r - i).clamp(min=0) / (gallery - i))
    return (1 - miss).mean().item()


def retrieval_metrics(scores: torch.Tensor, relevant: torch.Tensor,
                      ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """R@K for each ``k`` in ``ks`` and the median rank.

    Args:
        scores: ``(Q, G)`` similarities of each query to each gallery item.
        relevant: ``(Q, G)`` bool relevance.
        ks: the cut-offs.

    Returns:
        ``{"R@1": ..., "R@5": ..., "R@10": ..., "median_rank": ...}``.
    """
    ranks = first_relevant_rank(scores, relevant)
    out = {f"R@{k}": recall_at_k(ranks, k) for k in ks}
    out["median_rank"] = median_rank(ranks)
    return out


def cosine_scores(queries: torch.Tensor, gallery: torch.Tensor) -> torch.Tensor:
    """``(Q, G)`` cosine similarities (rows are normalised first)."""
    _check_matrix("queries", queries)
    _check_matrix("gallery", gallery, queries.shape[1])
    return F.normalize(queries, dim=1) @ F.normalize(gallery, dim=1).T


# ---------------------------------------------------------------- search
class ExactIndex:
    """Exact nearest-neighbour search by inner product: one matrix product, then ``topk``.

    Args:
        vectors: ``(N, D)`` gallery embeddings.
        normalize: L2-normalise gallery and queries, so scores are cosines.
        device: where the matrix product runs (default: the vectors' device).
        chunk_size: queries per matrix product (bounds memory for big galleries).
    """

    def __init__(self, vectors: torch.Tensor, normalize: bool = True,
                 device: torch.device | str | None = None, chunk_size: int = 1024):
        _check_matrix("vectors", vectors)
        if len(vectors) == 0:
            raise ValueError("cannot index an empty gallery")
        self.normalize, self.chunk_size = normalize, chunk_size
        vectors = vectors.to(device) if device is not None else vectors
        self.vectors = F.normalize(vectors, dim=1) if normalize else vectors

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @torch.no_grad()
    def search(self, queries: torch.Tensor, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` best gallery items for each query.

        Args:
            queries: ``(Q, D)`` or one ``(D,)`` vector.
            k: how many results; more than the gallery is clamped with a ``UserWarning``.

        Returns:
            ``(scores, indices)``, each ``(Q, k)``, best first.
        """
        if isinstance(queries, torch.Tensor) and queries.ndim == 1:
            queries = queries[None]
        _check_matrix("queries", queries, self.dim)
        if len(queries) == 0:
            raise ValueError("no queries to search (0 rows)")
        k = check_k(k, len(self))
        queries = queries.to(self.vectors.device, self.vectors.dtype)
        if self.normalize:
            queries = F.normalize(queries, dim=1)
        scores, indices = [], []
        for start in range(0, len(queries), self.chunk_size):
            s, i = torch.topk(queries[start:start + self.chunk_size] @ self.vectors.T, k, dim=1)
            scores.append(s)
            indices.append(i)
        return torch.cat(scores), torch.cat(indices)


def random_unit_vectors(n: int, dim: int, generator: torch.Generator | None = None,
                        device: torch.device | str = "cpu") -> torch.Tensor:
    """``(n, dim)`` float32 vectors drawn uniformly on the unit sphere."""
    if n < 1 or dim < 1:
        raise ValueError(f"n and dim must be positive, got {n} and {dim}")
    x = torch.randn(n, dim, generator=generator, device=device)
    return F.normalize(x, dim=1)


def exact_search_cost(sizes: Sequence[int], dim: int = 128, num_queries: int = 64, k: int = 10,
                      device: torch.device | str = "cpu", repeats: int = 3,
                      seed: int = 0) -> dict[int, float]:
    """Seconds per query of :class:`ExactIndex` on random unit vectors, for each gallery size.

    The best of ``repeats`` timings is kept (the least disturbed by other work).
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    queries = random_unit_vectors(num_queries, dim, generator).to(device)
    out = {}
    for n in sizes:
        index = ExactIndex(random_unit_vectors(n, dim, generator).to(device), normalize=False)
        best = float("inf")
        for _ in range(repeats):
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            index.search(queries, k)
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        out[int(n)] = best / num_queries
        del index
    return out


def recall_against_exact(approx_indices: torch.Tensor, exact_indices: torch.Tensor) -> float:
    """Recall@k of an approximate search: the share of the exact top-k it also returns."""
    approx, exact = torch.as_tensor(approx_indices), torch.as_tensor(exact_indices)
    if approx.shape != exact.shape or approx.ndim != 2:
        raise ValueError(f"expected two (Q, k) index tensors, got {tuple(approx.shape)} and "
                         f"{tuple(exact.shape)}")
    hits = (approx[:, :, None] == exact[:, None, :]).any(dim=2).sum()
    return hits.item() / exact.numel()


def faiss_tradeoff(vectors: torch.Tensor, queries: torch.Tensor, k: int = 10,
                   ef_search: Sequence[int] = (16, 32, 64, 128), hnsw_m: int = 32,
                   ef_construction: int = 40) -> list[dict]:
    """Exact (faiss ``IndexFlatIP``) against approximate (``IndexHNSWFlat``) search.

    Args:
        vectors: ``(N, D)`` unit gallery vectors.
        queries: ``(Q, D)`` unit queries.
        k: results per query.
        ef_search: HNSW's search breadth values to try (bigger: slower, more accurate).
        hnsw_m: HNSW's links per node.
        ef_construction: HNSW's build breadth.

    Returns:
        One row per index: ``{"index", "recall@k", "queries_per_s", "build_s"}``; the flat
        index's recall is 1 by definition (it is the reference).
    """
    import faiss

    _check_matrix("vectors", vectors)
    _check_matrix("queries", queries, vectors.shape[1])
    k = check_k(k, len(vectors))
    x = np.ascontiguousarray(vectors.detach().cpu().numpy(), dtype=np.float32)
    q = np.ascontiguousarray(queries.detach().cpu().numpy(), dtype=np.float32)
    rows = []
    start = time.perf_counter()
    flat = faiss.IndexFlatIP(x.shape[1])
    flat.add(x)
    build = time.perf_counter() - start
    start = time.perf_counter()
    _, exact = flat.search(q, k)
    seconds = time.perf_counter() - start
    rows.append({"index": "flat (exact)", "recall@k": 1.0, "queries_per_s": len(q) / seconds,
                 "build_s": build})
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(x.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = ef_construction
    hnsw.add(x)
    build = time.perf_counter() - start
    for ef in ef_search:
        hnsw.hnsw.efSearch = int(ef)
        start = time.perf_counter()
        _, approx = hnsw.search(q, k)
        seconds = time.perf_counter() - start
        rows.append({"index": f"HNSW M={hnsw_m} efSearch={ef}",
                     "recall@k": recall_against_exact(torch.from_numpy(approx),
                                                      torch.from_numpy(exact)),
                     "queries_per_s": len(q) / seconds, "build_s": build})
    return rows


# ---------------------------------------------------------------- prompts and zero-shot
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
def zero_shot_classifier(encode_text: Callable[[list[str]], torch.Tensor],
                         classnames: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
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
def template_table(image_embeddings: torch.Tensor, labels: torch.Tensor,
                   encode_text: Callable[[list[str]], torch.Tensor], classnames: Sequence[str],
                   templates: Sequence[str], ks: Sequence[int] = (1, 10)) -> list[dict]:
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
    _check_matrix("image_embeddings", image_embeddings)
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


class CrossModalSearch:
    """Search a gallery of images by text, and a gallery of texts by image.

    Args:
        encode_text: ``list[str] → (N, D)`` embeddings in the shared space.
        image_embeddings: ``(N, D)`` gallery images in the same space.
        text_embeddings: ``(M, D)`` gallery texts (for image→text), optional.
        texts: the M gallery texts.
    """

    def __init__(self, encode_text: Callable[[list[str]], torch.Tensor],
                 image_embeddings: torch.Tensor, text_embeddings: torch.Tensor | None = None,
                 texts: Sequence[str] | None = None):
        self.encode_text = encode_text
        self.images = ExactIndex(image_embeddings)
        if (text_embeddings is None) != (texts is None):
            raise ValueError("give both text_embeddings and texts, or neither")
        if texts is not None and len(texts) != len(text_embeddings):
            raise ValueError(f"{len(texts)} texts but {len(text_embeddings)} text embeddings")
        self.texts = list(texts) if texts is not None else None
        self.text_index = ExactIndex(text_embeddings) if text_embeddings is not None else None

    def text_to_image(self, query: str, k: int = 5) -> list[tuple[int, float]]:
        """The ``k`` gallery images closest to ``query``: ``[(index, cosine), ...]``, best first.

        Raises:
            ValueError: if the query is empty or only spaces.
        """
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        if not query.strip():
            raise ValueError("the query is empty: type a few words to search for")
        scores, indices = self.images.search(self.encode_text([query.strip()]), k)
        return [(int(i), float(s)) for s, i in zip(scores[0], indices[0])]

    def image_to_text(self, image_embedding: torch.Tensor, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` gallery texts closest to one image embedding ``(D,)``."""
        if self.text_index is None:
            raise ValueError("this search has no text gallery (pass text_embeddings and texts)")
        scores, indices = self.text_index.search(image_embedding, k)
        return [(self.texts[int(i)], float(s)) for s, i in zip(scores[0], indices[0])]
