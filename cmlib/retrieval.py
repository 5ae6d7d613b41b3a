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
* :class:`CrossModalSearch` — text→image and image→text search over a gallery,
  the engine behind :mod:`cmlib.widgets.retrieval`.

Zero-shot classification with prompt templates is in :mod:`cmlib.zeroshot`; exact and
approximate nearest-neighbour indexes, and what search costs at scale, in :mod:`cmlib.indexing`.

Bad input: an empty query raises ``ValueError``. A ``k`` larger than the
gallery is **clamped to the gallery size with a** ``UserWarning`` (a search
box over a small gallery should still answer); ``k < 1`` raises ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from .indexing import ExactIndex
from .validate import check_number, check_tensor

#: CLIP's initial temperature is 0.07, so the logit scale starts at 1 / 0.07 ≈ 14.3.
INIT_LOGIT_SCALE = 1 / 0.07
#: CLIP clips the logit scale at 100 so that training cannot make the softmax arbitrarily sharp.
MAX_LOGIT_SCALE = 100.0


# ---------------------------------------------------------------- loss
def clip_loss(
    image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor | float
) -> torch.Tensor:
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
    check_tensor("image_features", image_features, ("N", "D"), floating=True)
    check_tensor("text_features", text_features, ("N", image_features.shape[1]), floating=True)
    if text_features.shape[0] != image_features.shape[0]:
        raise ValueError(
            f"need as many texts as images, got {text_features.shape[0]} and "
            f"{image_features.shape[0]}"
        )
    if image_features.shape[0] < 2:
        raise ValueError("a contrastive batch needs at least 2 pairs (each needs a negative)")
    logits_per_image = logit_scale * image_features @ text_features.T
    labels = torch.arange(image_features.shape[0], device=image_features.device)
    return (
        F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_image.T, labels)
    ) / 2


# ---------------------------------------------------------------- model
def projection_head(
    in_dim: int,
    out_dim: int,
    kind: str = "linear",
    hidden_dim: int = 512,
    dropout: float = 0.0,
    hidden_dropout: float | None = None,
) -> nn.Module:
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
            raise ValueError(
                f"an identity head needs in_dim == out_dim, got {in_dim} and {out_dim}"
            )
        return nn.Identity()
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "mlp":
        hidden_dropout = dropout if hidden_dropout is None else hidden_dropout
        return nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(in_dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(hidden_dropout),
            nn.Linear(hidden_dim, out_dim),
        )
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

    def __init__(
        self,
        image_tower: nn.Module,
        text_tower: nn.Module,
        image_dim: int,
        text_dim: int,
        embed_dim: int = 128,
        image_head: str = "linear",
        text_head: str = "linear",
        hidden_dim: int = 512,
        dropout: float = 0.0,
        hidden_dropout: float | None = None,
        init_logit_scale: float = INIT_LOGIT_SCALE,
        max_logit_scale: float = MAX_LOGIT_SCALE,
    ):
        super().__init__()
        if not 1.0 <= init_logit_scale <= max_logit_scale:
            raise ValueError(
                f"need 1 <= init_logit_scale <= max_logit_scale, got "
                f"{init_logit_scale} and {max_logit_scale}"
            )
        self.image_tower, self.text_tower = image_tower, text_tower
        self.image_head = projection_head(
            image_dim, embed_dim, image_head, hidden_dim, dropout, hidden_dropout
        )
        self.text_head = projection_head(
            text_dim, embed_dim, text_head, hidden_dim, dropout, hidden_dropout
        )
        self.embed_dim, self.max_logit_scale = embed_dim, max_logit_scale
        # Learned in log space, as CLIP does: exp keeps it positive.
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(init_logit_scale)))

    @property
    def logit_scale(self) -> torch.Tensor:
        """``exp(log_logit_scale)`` clamped to ``[1, max_logit_scale]``."""
        return self.log_logit_scale.clamp(0.0, math.log(self.max_logit_scale)).exp()

    def set_temperature(self, temperature: float, learnable: bool = True) -> None:
        """Start the temperature τ (the inverse of ``logit_scale``) at ``temperature``; with
        ``learnable=False`` it stays there (a fixed τ, as before CLIP learned it)."""
        check_number("temperature", temperature, low=1.0 / self.max_logit_scale, high=1.0)
        with torch.no_grad():
            self.log_logit_scale.fill_(math.log(1.0 / temperature))
        self.log_logit_scale.requires_grad_(bool(learnable))

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        z = self.image_head(self.image_tower(images))
        return F.normalize(z, dim=-1) if normalize else z

    def encode_text(self, *text_inputs: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        z = self.text_head(self.text_tower(*text_inputs))
        return F.normalize(z, dim=-1) if normalize else z

    def forward(self, images: torch.Tensor, *text_inputs: torch.Tensor):
        return self.encode_image(images), self.encode_text(*text_inputs), self.logit_scale


def contrastive_step(
    model: DualEncoder,
    batch: Sequence[torch.Tensor],
    loss_fn: Callable[..., torch.Tensor] = clip_loss,
) -> torch.Tensor:
    """A ``step_fn`` for :func:`cmlib.train.fit`: batch ``(images, *text_inputs)`` → CLIP loss.

    ``loss_fn`` takes :func:`clip_loss`'s arguments, the model's learnable ``logit_scale``
    included; a reader's own (exercise 7.1) goes in with
    ``functools.partial(contrastive_step, loss_fn=...)``.
    """
    images, *text_inputs = batch
    return loss_fn(*model(images, *text_inputs))


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

    def __init__(
        self, images: torch.Tensor, texts: torch.Tensor, lengths: torch.Tensor | None = None
    ):
        if texts.ndim < 3:
            raise ValueError(
                f"expected texts (N, V, ...) with V variants, got {tuple(texts.shape)}"
            )
        if lengths is not None and lengths.shape != texts.shape[:2]:
            raise ValueError(
                f"expected lengths {tuple(texts.shape[:2])}, got {tuple(lengths.shape)}"
            )
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
def attribute_relevance(
    query_attributes: dict[str, torch.Tensor],
    gallery_attributes: dict[str, torch.Tensor],
    keys: Sequence[str],
) -> torch.Tensor:
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
            raise ValueError(
                f"attribute {key!r} missing; queries have {sorted(query_attributes)}, "
                f"gallery has {sorted(gallery_attributes)}"
            )
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
    check_tensor("scores", scores, ("Q", "G"), floating=True)
    if relevant.shape != scores.shape or relevant.dtype != torch.bool:
        raise ValueError(
            f"relevant must be a bool tensor of shape {tuple(scores.shape)}, got "
            f"{relevant.dtype} {tuple(relevant.shape)}"
        )
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


def retrieval_metrics(
    scores: torch.Tensor, relevant: torch.Tensor, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
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


# ---------------------------------------------------------------- search
class CrossModalSearch:
    """Search a gallery of images by text, and a gallery of texts by image.

    Args:
        encode_text: ``list[str] → (N, D)`` embeddings in the shared space.
        image_embeddings: ``(N, D)`` gallery images in the same space.
        text_embeddings: ``(M, D)`` gallery texts (for image→text), optional.
        texts: the M gallery texts.
    """

    def __init__(
        self,
        encode_text: Callable[[list[str]], torch.Tensor],
        image_embeddings: torch.Tensor,
        text_embeddings: torch.Tensor | None = None,
        texts: Sequence[str] | None = None,
    ):
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
