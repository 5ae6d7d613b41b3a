"""Fusing vision and language: feature-level fusion modules, VQA, late fusion, adversarial alignment.

Every fusion module has one interface::

    fused = fusion(vision, language)        # (B, out_dim)

``language`` is a sentence vector ``(B, language_dim)``. ``vision`` is a pooled
image vector ``(B, vision_dim)``, or, for the *spatial* fusions
(``fusion.spatial is True``: FiLM and cross-attention), the CNN's feature grid
``(B, vision_dim, h, w)``.

* The article's three (§2.3.1): :class:`AdditiveFusion`,
  :class:`MultiplicativeFusion`, :class:`ConcatFusion`.
* What practitioners also use: :class:`GatedFusion`,
  :class:`LowRankBilinearFusion`, :class:`FiLMFusion`, :class:`CrossAttentionFusion`.
* Baselines that drop a modality: :class:`ImageOnly`, :class:`QuestionOnly`.

:class:`VQAModel` wraps a text encoder, a fusion module and an answer
classifier. Model-level fusion (§2.3.2): :func:`late_fusion` /
:class:`LateFusionEnsemble`, and adversarial alignment with
:func:`grad_reverse` and a :class:`ModalityDiscriminator`
(:class:`AdversarialAligner`, trained by :func:`train_adversarial_alignment`
and checked with a fresh :func:`modality_probe`). :class:`ArticleFeatureFusion` and
:class:`ArticleAdversarialFusion` are the article's listings as printed, kept
for the errata.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from .sequence import TextEncoder
from .train import History, fit
from .vision import ConvEncoder, coordinate_grid


# ---------------------------------------------------------------- checks
def check_features(vision: torch.Tensor, language: torch.Tensor, vision_dim: int,
                   language_dim: int, spatial: bool = False) -> None:
    """Raise ValueError unless ``vision``/``language`` have the sizes a fusion module expects.

    Args:
        vision: ``(B, vision_dim)``, or ``(B, vision_dim, h, w)`` when ``spatial``.
        language: ``(B, language_dim)``.
        vision_dim: expected vision feature size (channels for a grid).
        language_dim: expected language feature size.
        spatial: whether ``vision`` is a feature grid.
    """
    for name, x in (("vision", vision), ("language", language)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} features must be a torch.Tensor, got {type(x).__name__}")
    want_v = f"(B, {vision_dim}, h, w)" if spatial else f"(B, {vision_dim})"
    got = f"vision {tuple(vision.shape)} and language {tuple(language.shape)}"
    if vision.ndim != (4 if spatial else 2) or vision.shape[1] != vision_dim:
        raise ValueError(f"expected vision features {want_v} and language (B, {language_dim}), "
                         f"got {got}")
    if language.ndim != 2 or language.shape[1] != language_dim:
        raise ValueError(f"expected vision features {want_v} and language (B, {language_dim}), "
                         f"got {got}")
    if vision.shape[0] != language.shape[0]:
        raise ValueError(f"vision and language batch sizes differ: {got}")


def _positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


class Fusion(nn.Module):
    """Base class: vision feature + language feature → fused feature ``(B, out_dim)``.

    Args:
        vision_dim: size of the vision feature (channels of the grid for spatial fusions).
        language_dim: size of the language feature.
        out_dim: size of the fused feature.
    """

    spatial = False

    def __init__(self, vision_dim: int, language_dim: int, out_dim: int):
        super().__init__()
        _positive(vision_dim=vision_dim, language_dim=language_dim, out_dim=out_dim)
        self.vision_dim, self.language_dim, self.out_dim = vision_dim, language_dim, out_dim

    def forward(self, vision: torch.Tensor, language: torch.Tensor) -> torch.Tensor:
        check_features(vision, language, self.vision_dim, self.language_dim, self.spatial)
        return self.fuse(vision, language)

    def fuse(self, vision: torch.Tensor, language: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


# ---------------------------------------------------------------- the article's three
class AdditiveFusion(Fusion):
    """Additive fusion (加法融合): project both to ``out_dim``, then add.

    ``z = ReLU(W_v v + W_l l)``. The projections are needed because the two
    features live in spaces of different sizes; the fusion itself is ``+``.
    """

    def __init__(self, vision_dim: int, language_dim: int, out_dim: int = 128):
        super().__init__(vision_dim, language_dim, out_dim)
        self.vision_proj = nn.Linear(vision_dim, out_dim)
        self.language_proj = nn.Linear(language_dim, out_dim)

    def fuse(self, vision, language):
        return F.relu(self.vision_proj(vision) + self.language_proj(language))


class MultiplicativeFusion(Fusion):
    """Multiplicative fusion (乘法融合): element-wise product of the projections.

    ``z = tanh(W_v v) ⊙ tanh(W_l l)``: each language unit scales a vision unit,
    so the question can switch image features on and off.
    """

    def __init__(self, vision_dim: int, language_dim: int, out_dim: int = 128):
        super().__init__(vision_dim, language_dim, out_dim)
        self.vision_proj = nn.Linear(vision_dim, out_dim)
        self.language_proj = nn.Linear(language_dim, out_dim)

    def fuse(self, vision, language):
        return torch.tanh(self.vision_proj(vision)) * torch.tanh(self.language_proj(language))


class ConcatFusion(Fusion):
    """Concatenation fusion (拼接融合): ``z = ReLU(W [v; l])``."""

    def __init__(self, vision_dim: int, language_dim: int, out_dim: int = 128):
        super().__init__(vision_dim, language_dim, out_dim)
        self.proj = nn.Linear(vision_dim + language_dim, out_dim)

    def fuse(self, vision, language):
        return F.relu(self.proj(torch.cat([vision, language], dim=1)))


# ---------------------------------------------------------------- beyond the article
class GatedFusion(Fusion):
    """Gated fusion (门控融合): a learned sigmoid gate mixes the two modalities per unit.

    ``g = σ(W_g [v; l])``, ``z = g ⊙ tanh(W_v v) + (1 − g) ⊙ tanh(W_l l)``.
    """

    def __init__(self, vision_dim: int, language_dim: int, out_dim: int = 128):
        super().__init__(vision_dim, language_dim, out_dim)
        self.vision_proj = nn.Linear(vision_dim, out_dim)
        self.language_proj = nn.Linear(language_dim, out_dim)
        self.gate = nn.Linear(vision_dim + language_dim, out_dim)

    def gate_values(self, vision: torch.Tensor, language: torch.Tensor) -> torch.Tensor:
        """The gate ``g`` in (0, 1), ``(B, out_dim)``: 1 means "listen to the image"."""
        check_features(vision, language, self.vision_dim, self.language_dim)
        return torch.sigmoid(self.gate(torch.cat([vision, language], dim=1)))

    def fuse(self, vision, language):
        g = torch.sigmoid(self.gate(torch.cat([vision, language], dim=1)))
        return g * torch.tanh(self.vision_proj(vision)) + (1 - g) * torch.tanh(self.language_proj(language))


class LowRankBilinearFusion(Fusion):
    """Low-rank bilinear fusion (低秩双线性融合, MLB — Kim et al., 2017).

    A full bilinear map ``z_k = vᵀ W_k l`` needs ``out_dim × vision_dim × language_dim``
    weights. Factorising each ``W_k`` with rank ``rank`` gives
    ``z = Pᵀ (tanh(U v) ⊙ tanh(V l))``: every output mixes every pair of input units.

    Args:
        rank: size of the joint space ``U v`` and ``V l``.
    """

    def __init__(self, vision_dim: int, language_dim: int, out_dim: int = 128, rank: int = 256):
        super().__init__(vision_dim, language_dim, out_dim)
        _positive(rank=rank)
        self.rank = rank
        self.vision_factor = nn.Linear(vision_dim, rank)
        self.language_factor = nn.Linear(language_dim, rank)
        self.out = nn.Linear(rank, out_dim)

    def fuse(self, vision, language):
        joint = torch.tanh(self.vision_factor(vision)) * torch.tanh(self.language_factor(language))
        return F.relu(self.out(joint))


class FiLMFusion(Fusion):
    """FiLM (特征线性调制, Perez et al., 2018): the question scales and shifts CNN channels.

    The grid (plus two coordinate channels) goes through ``num_blocks`` 3×3 conv
    blocks; in each, the language vector gives per-channel ``γ`` and ``β`` and
    the block computes ``ReLU(γ ⊙ norm(conv(x)) + β)`` (blocks after the first
    are residual). The result is flattened — keeping *where* — and projected to
    ``out_dim``.

    Args:
        vision_dim: channels of the grid ``(B, vision_dim, h, w)``.
        grid_size: ``h`` (= ``w``) of the grid.
        channels: channels of the modulated layers.
        num_blocks: FiLM-ed conv blocks.
    """

    spatial = True

    def __init__(self, vision_dim: int, language_dim: int, out_dim: int = 128, grid_size: int = 4,
                 channels: int = 64, num_blocks: int = 2):
        super().__init__(vision_dim, language_dim, out_dim)
        _positive(grid_size=grid_size, channels=channels, num_blocks=num_blocks)
        self.grid_size, self.channels, self.num_blocks = grid_size, channels, num_blocks
        self.convs = nn.ModuleList(
            nn.Conv2d((vision_dim if i == 0 else channels) + 2, channels, 3, padding=1)
            for i in range(num_blocks))
        # FiLM supplies the affine part of each normalisation
        self.norms = nn.ModuleList(nn.BatchNorm2d(channels, affine=False) for _ in range(num_blocks))
        self.film = nn.Linear(language_dim, 2 * channels * num_blocks)
        self.out = nn.Linear(channels * grid_size * grid_size, out_dim)

    def modulation(self, language: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(γ, β)``, each ``(B, num_blocks, channels)``; ``γ`` is centred on 1."""
        gamma, beta = self.film(language).view(-1, self.num_blocks, 2, self.channels).unbind(2)
        return 1 + gamma, beta

    def fuse(self, vision, language):
        b, _, h, w = vision.shape
        if (h, w) != (self.grid_size, self.grid_size):
            raise ValueError(f"expected a {self.grid_size}x{self.grid_size} grid, got vision "
                             f"{tuple(vision.shape)}")
        coords = coordinate_grid(b, h, w, vision.device)
        gamma, beta = self.modulation(language)
        x = vision
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            y = norm(conv(torch.cat([x, coords], 1)))
            y = F.relu(gamma[:, i, :, None, None] * y + beta[:, i, :, None, None])
            x = y if i == 0 else x + y
        return F.relu(self.out(x.flatten(1)))


class CrossAttentionFusion(Fusion):
    """Cross-attention (交叉注意力): the question attends over image regions.

    The ``h × w`` grid cells are the regions; each carries its x, y coordinates
    and a learned position embedding. Each of ``num_heads`` heads turns the question into a query,
    scores every region with a scaled dot product, and takes the softmax-weighted
    sum of the regions' values. The heads' outputs and the question are projected
    to ``out_dim``. Several heads let one question look at two objects (for
    "is A left of B?"). :meth:`attention` returns the weights for plotting.

    Args:
        vision_dim: channels of the grid.
        grid_size: ``h`` (= ``w``) of the grid.
        num_heads: attention heads (glimpses).
        head_dim: size of each head's queries, keys and values.
    """

    spatial = True

    def __init__(self, vision_dim: int, language_dim: int, out_dim: int = 128, grid_size: int = 4,
                 num_heads: int = 2, head_dim: int = 32):
        super().__init__(vision_dim, language_dim, out_dim)
        _positive(grid_size=grid_size, num_heads=num_heads, head_dim=head_dim)
        self.grid_size, self.num_heads, self.head_dim = grid_size, num_heads, head_dim
        self.position = nn.Parameter(torch.zeros(grid_size * grid_size, vision_dim + 2))
        self.query = nn.Linear(language_dim, num_heads * head_dim)
        self.key = nn.Linear(vision_dim + 2, num_heads * head_dim)
        self.value = nn.Linear(vision_dim + 2, num_heads * head_dim)
        self.out = nn.Linear(num_heads * head_dim + language_dim, out_dim)

    def _regions(self, vision: torch.Tensor) -> torch.Tensor:
        b, c, h, w = vision.shape
        if (h, w) != (self.grid_size, self.grid_size):
            raise ValueError(f"expected a {self.grid_size}x{self.grid_size} grid, got vision "
                             f"{tuple(vision.shape)}")
        grid = torch.cat([vision, coordinate_grid(b, h, w, vision.device)], dim=1)
        return grid.flatten(2).transpose(1, 2) + self.position  # (B, N, C + 2)

    def _attend(self, vision, language):
        regions = self._regions(vision)
        b, n, _ = regions.shape
        q = self.query(language).view(b, self.num_heads, 1, self.head_dim)
        k = self.key(regions).view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.value(regions).view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        weights = torch.softmax((q @ k.transpose(2, 3)) / math.sqrt(self.head_dim), dim=-1)
        attended = (weights @ v).reshape(b, self.num_heads * self.head_dim)
        return attended, weights.squeeze(2)  # (B, heads * head_dim), (B, heads, N)

    def attention(self, vision: torch.Tensor, language: torch.Tensor) -> torch.Tensor:
        """Attention weights ``(B, num_heads, h, w)``; each head's map sums to 1."""
        check_features(vision, language, self.vision_dim, self.language_dim, spatial=True)
        _, weights = self._attend(vision, language)
        return weights.view(-1, self.num_heads, self.grid_size, self.grid_size)

    def fuse(self, vision, language):
        attended, _ = self._attend(vision, language)
        return F.relu(self.out(torch.cat([attended, language], dim=1)))


# ---------------------------------------------------------------- baselines
class ImageOnly(Fusion):
    """A baseline that ignores the question: ``z = ReLU(W v)``."""

    def __init__(self, vision_dim: int, language_dim: int, out_dim: int = 128):
        super().__init__(vision_dim, language_dim, out_dim)
        self.proj = nn.Linear(vision_dim, out_dim)

    def fuse(self, vision, language):
        return F.relu(self.proj(vision))


class QuestionOnly(Fusion):
    """A baseline that ignores the image: ``z = ReLU(W l)``; it can only learn answer priors."""

    def __init__(self, vision_dim: int, language_dim: int, out_dim: int = 128):
        super().__init__(vision_dim, language_dim, out_dim)
        self.proj = nn.Linear(language_dim, out_dim)

    def fuse(self, vision, language):
        return F.relu(self.proj(language))


FUSIONS: dict[str, type[Fusion]] = {
    "image only": ImageOnly,
    "question only": QuestionOnly,
    "add": AdditiveFusion,
    "mul": MultiplicativeFusion,
    "concat": ConcatFusion,
    "gated": GatedFusion,
    "bilinear": LowRankBilinearFusion,
    "film": FiLMFusion,
    "attention": CrossAttentionFusion,
}


def make_fusion(name: str, vision_dim: int, language_dim: int, out_dim: int = 128,
                **kwargs) -> Fusion:
    """Build the fusion module called ``name`` (a key of :data:`FUSIONS`)."""
    if name not in FUSIONS:
        raise ValueError(f"unknown fusion {name!r}; choose one of {list(FUSIONS)}")
    return FUSIONS[name](vision_dim, language_dim, out_dim, **kwargs)


# ---------------------------------------------------------------- VQA
class VQAModel(nn.Module):
    """Visual question answering: image grid + question → answer logits.

    The image arrives as a CNN feature grid (computed once by a frozen
    :class:`~cmlib.vision.ConvEncoder`, see :func:`grid_features`). Vector
    fusions get the grid average-pooled to ``(B, C)``; spatial ones the grid.
    The question goes through a :class:`~cmlib.sequence.TextEncoder`.

    Args:
        fusion: the fusion module; its ``vision_dim`` is the grid's channels and its
            ``language_dim`` the text encoder's ``out_dim``.
        text_encoder: the question encoder.
        num_answers: number of answer classes.
        hidden_dim: width of the answer classifier's hidden layer.

    Shapes:
        ``forward(grid (B, C, h, w), ids (B, T), lengths (B,))`` → ``(B, num_answers)``.
    """

    def __init__(self, fusion: Fusion, text_encoder: TextEncoder, num_answers: int,
                 hidden_dim: int = 128):
        super().__init__()
        if not isinstance(fusion, Fusion):
            raise TypeError(f"fusion must be a cmlib.fusion.Fusion, got {type(fusion).__name__}")
        if fusion.language_dim != text_encoder.out_dim:
            raise ValueError(f"fusion expects language features of size {fusion.language_dim}, "
                             f"the text encoder gives {text_encoder.out_dim}")
        _positive(num_answers=num_answers, hidden_dim=hidden_dim)
        self.fusion, self.text_encoder = fusion, text_encoder
        self.classifier = nn.Sequential(nn.Linear(fusion.out_dim, hidden_dim), nn.ReLU(),
                                        nn.Linear(hidden_dim, num_answers))

    def fused(self, grid: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The fused feature ``(B, fusion.out_dim)``."""
        if not isinstance(grid, torch.Tensor) or grid.ndim != 4:
            raise ValueError(f"expected a feature grid (B, C, h, w), got "
                             f"{getattr(grid, 'shape', type(grid).__name__)}")
        vision = grid if self.fusion.spatial else grid.mean(dim=(2, 3))
        return self.fusion(vision, self.text_encoder(ids, lengths))

    def forward(self, grid: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.fused(grid, ids, lengths))


def make_vqa_model(name: str, vocab_size: int, num_answers: int, grid_channels: int,
                   grid_size: int = 4, embed_dim: int = 32, text_dim: int = 64,
                   fused_dim: int = 128) -> VQAModel:
    """A :class:`VQAModel` with fusion ``name`` and the course's default sizes."""
    extra = {"grid_size": grid_size} if FUSIONS.get(name, Fusion).spatial else {}
    fusion = make_fusion(name, grid_channels, text_dim, fused_dim, **extra)
    return VQAModel(fusion, TextEncoder(vocab_size, embed_dim, text_dim), num_answers)


class GridTagger(nn.Module):
    """Pretraining head for the VQA backbone: tag each grid cell with the objects it shows.

    A 1×1 conv on :meth:`ConvEncoder.feature_map` gives, per cell, one logit per
    label ((colour, shape) pairs and background) — the detector-style "what is
    where" supervision that VQA backbones are pretrained with. Train it with
    ``cross_entropy`` against :func:`cmlib.data.vqa.cell_labels`.

    Args:
        encoder: the CNN to pretrain.
        num_labels: labels per cell.

    Shapes:
        ``(B, 3, S, S)`` → ``(B, num_labels, S / 8, S / 8)`` logits.
    """

    def __init__(self, encoder: ConvEncoder, num_labels: int):
        super().__init__()
        if not isinstance(encoder, ConvEncoder):
            raise TypeError(f"encoder must be a ConvEncoder, got {type(encoder).__name__}")
        _positive(num_labels=num_labels)
        self.encoder = encoder
        self.tag = nn.Conv2d(encoder.out_channels, num_labels, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.tag(self.encoder.feature_map(images))


@torch.no_grad()
def grid_features(encoder: ConvEncoder, images: torch.Tensor, device: torch.device,
                  batch_size: int = 512) -> torch.Tensor:
    """``encoder.feature_map`` of every image, in eval mode, on the CPU: ``(N, C, h, w)``."""
    if not isinstance(encoder, ConvEncoder):
        raise TypeError(f"encoder must be a ConvEncoder, got {type(encoder).__name__}")
    encoder.eval().to(device)
    return torch.cat([encoder.feature_map(images[i:i + batch_size].to(device)).cpu()
                      for i in range(0, len(images), batch_size)])


@torch.no_grad()
def accuracy_by_kind(model: VQAModel, grids: torch.Tensor, ids: torch.Tensor,
                     lengths: torch.Tensor, answers: torch.Tensor, kinds: torch.Tensor,
                     kind_names: Sequence[str], device: torch.device,
                     batch_size: int = 1024) -> dict[str, float]:
    """Accuracy overall and for each question kind.

    Args:
        grids: ``(Q, C, h, w)`` — the grid of each question's image.
        ids, lengths, answers, kinds: ``(Q, T)``, ``(Q,)``, ``(Q,)``, ``(Q,)``.
        kind_names: the name of each kind id.
    """
    n = len(answers)
    if not (len(grids) == len(ids) == len(lengths) == len(kinds) == n):
        raise ValueError(f"expected Q rows everywhere, got grids {len(grids)}, ids {len(ids)}, "
                         f"lengths {len(lengths)}, answers {n}, kinds {len(kinds)}")
    model.eval().to(device)
    preds = torch.cat([
        model(grids[i:i + batch_size].to(device), ids[i:i + batch_size].to(device),
              lengths[i:i + batch_size].to(device)).argmax(1).cpu()
        for i in range(0, n, batch_size)])
    correct = (preds == answers).float()
    out = {"overall": correct.mean().item()}
    for k, name in enumerate(kind_names):
        mask = kinds == k
        if mask.any():
            out[name] = correct[mask].mean().item()
    return out


# ---------------------------------------------------------------- model-level fusion: ensembles
def late_fusion(logits: Sequence[torch.Tensor], weights: Sequence[float] | None = None,
                log_prior: torch.Tensor | None = None) -> torch.Tensor:
    """Combine the members' predictions: a weighted sum of their log-probabilities.

    With ``log_prior`` (the log class frequencies), the prior counted once per extra
    member is taken off: ``Σ w_i log p_i(y|x_i) − (Σ w_i − 1) log p(y)`` — the
    product-of-experts rule for members that see independent evidence.

    Args:
        logits: ``M`` tensors ``(B, C)``.
        weights: ``M`` non-negative weights (default all 1).
        log_prior: ``(C,)``.

    Returns:
        ``(B, C)`` combined scores (argmax = the ensemble's answer).
    """
    if len(logits) == 0:
        raise ValueError("late_fusion needs at least one member's logits")
    shape = logits[0].shape
    if len(shape) != 2 or any(t.shape != shape for t in logits):
        raise ValueError(f"every member's logits must be (B, C) of one shape, got "
                         f"{[tuple(t.shape) for t in logits]}")
    weights = [1.0] * len(logits) if weights is None else list(weights)
    if len(weights) != len(logits) or any(w < 0 for w in weights):
        raise ValueError(f"expected {len(logits)} non-negative weights, got {weights}")
    score = sum(w * F.log_softmax(t, dim=1) for w, t in zip(weights, logits))
    if log_prior is not None:
        if log_prior.shape != shape[1:]:
            raise ValueError(f"log_prior must be ({shape[1]},), got {tuple(log_prior.shape)}")
        score = score - (sum(weights) - 1) * log_prior
    return score


class LateFusionEnsemble(nn.Module):
    """Model-level fusion (模型融合): each member sees its own modality; :func:`late_fusion` combines.

    Args:
        members: the unimodal models; member ``i`` is called on ``inputs[i]``.
        weights: one weight per member (default all 1).
        log_prior: ``(C,)`` log class frequencies to correct for (optional).

    Shapes:
        ``forward(inputs)`` with ``inputs[i]`` a tuple of member ``i``'s arguments → ``(B, C)``.
    """

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float] | None = None,
                 log_prior: torch.Tensor | None = None):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.weights = None if weights is None else list(weights)
        self.register_buffer("log_prior", log_prior)

    def forward(self, inputs: Sequence[tuple[torch.Tensor, ...]]) -> torch.Tensor:
        if len(inputs) != len(self.members):
            raise ValueError(f"expected one input tuple per member ({len(self.members)}), "
                             f"got {len(inputs)}")
        logits = [m(*x) for m, x in zip(self.members, inputs)]
        return late_fusion(logits, self.weights, self.log_prior)


# ---------------------------------------------------------------- adversarial alignment
class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, strength):
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.strength * grad, None


def grad_reverse(x: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """Gradient reversal (梯度反转, Ganin & Lempitsky, 2015): identity forward, ``−strength ×``
    gradient backward. Whatever minimises a loss *after* this layer, the layers *before* it
    maximise."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"grad_reverse expects a tensor, got {type(x).__name__}")
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    return _GradReverse.apply(x, float(strength))


def _check_embeddings(z: torch.Tensor, embed_dim: int, what: str = "embeddings") -> None:
    if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != embed_dim:
        raise ValueError(f"expected {what} (B, {embed_dim}), got "
                         f"{getattr(z, 'shape', type(z).__name__)}")


class ModalityDiscriminator(nn.Module):
    """Tells image embeddings (label 1) from text embeddings (label 0): one logit per embedding.

    Args:
        embed_dim: size of the embeddings.
        hidden_dim: width of the hidden layer; ``None`` for a linear (logistic) discriminator.

    Shapes:
        ``(B, embed_dim)`` → ``(B,)`` logits.
    """

    def __init__(self, embed_dim: int, hidden_dim: int | None = 64):
        super().__init__()
        _positive(embed_dim=embed_dim)
        self.embed_dim, self.hidden_dim = embed_dim, hidden_dim
        if hidden_dim is None:
            self.net = nn.Sequential(nn.Linear(embed_dim, 1))
        else:
            _positive(hidden_dim=hidden_dim)
            self.net = nn.Sequential(nn.Linear(embed_dim, hidden_dim), nn.ReLU(),
                                     nn.Linear(hidden_dim, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_embeddings(z, self.embed_dim)
        return self.net(z).squeeze(1)


def modality_loss(discriminator: ModalityDiscriminator, z_image: torch.Tensor,
                  z_text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's loss and accuracy on a batch of each modality.

    Args:
        discriminator: scores an embedding; > 0 means "image".
        z_image: ``(B_i, embed_dim)`` image embeddings (label 1).
        z_text: ``(B_t, embed_dim)`` text embeddings (label 0).

    Returns:
        ``(loss, accuracy)``: binary cross-entropy over all ``B_i + B_t`` embeddings, and the
        share it labels correctly.
    """
    if not isinstance(discriminator, ModalityDiscriminator):
        raise TypeError(f"discriminator must be a ModalityDiscriminator, got "
                        f"{type(discriminator).__name__}")
    for name, z in (("image", z_image), ("text", z_text)):
        _check_embeddings(z, discriminator.embed_dim, f"{name} embeddings")
    logits = discriminator(torch.cat([z_image, z_text]))
    modality = torch.cat([torch.ones(len(z_image)), torch.zeros(len(z_text))]).to(logits)
    loss = F.binary_cross_entropy_with_logits(logits, modality)
    return loss, ((logits > 0).to(modality) == modality).float().mean()


class CosineClassifier(nn.Module):
    """Cosine classifier (余弦分类器): ``logits = scale · cos(z, w_c)`` for each class ``c``.

    Only directions count, so embeddings on the unit sphere suffice, and every class is a
    direction ``w_c`` that both modalities are pulled towards. ``scale`` is the inverse
    temperature: the logits lie in ``[−scale, scale]``.

    Args:
        embed_dim: size of the embeddings.
        num_classes: number of classes.
        scale: inverse temperature.

    Shapes:
        ``(B, embed_dim)`` → ``(B, num_classes)``.
    """

    def __init__(self, embed_dim: int, num_classes: int, scale: float = 20.0):
        super().__init__()
        _positive(embed_dim=embed_dim, num_classes=num_classes)
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        self.embed_dim, self.scale = embed_dim, float(scale)
        self.weight = nn.Parameter(torch.randn(num_classes, embed_dim) / math.sqrt(embed_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_embeddings(z, self.embed_dim)
        return self.scale * F.normalize(z, dim=1) @ F.normalize(self.weight, dim=1).T


class AdversarialAligner(nn.Module):
    """Adversarial alignment (对抗对齐) of an image and a text encoder in one embedding space.

    Both encoders feed one shared classifier (the task), and a
    :class:`ModalityDiscriminator` tries to tell which modality an embedding
    came from. The discriminator sees the embeddings through
    :func:`grad_reverse`, so one backward pass trains it to tell them apart and
    the encoders to make that impossible. Train it with
    :func:`train_adversarial_alignment`.

    With ``scale`` (the default) the embeddings are L2-normalised — both modalities live on
    the unit sphere, so neither can escape the discriminator by growing its norm — and the
    classifier is a :class:`CosineClassifier`. With ``scale=None`` they are raw and the
    classifier is linear.

    Args:
        image_encoder: image input → ``(B, embed_dim)``.
        text_encoder: text input → ``(B, embed_dim)``.
        embed_dim: the shared embedding size.
        num_classes: classes of the shared task.
        disc_hidden: hidden width of the discriminator (``None``: linear).
        scale: inverse temperature of the cosine classifier; ``None`` for raw embeddings and a
            linear classifier.
    """

    def __init__(self, image_encoder: nn.Module, text_encoder: nn.Module, embed_dim: int,
                 num_classes: int, disc_hidden: int | None = None, scale: float | None = 20.0):
        super().__init__()
        _positive(embed_dim=embed_dim, num_classes=num_classes)
        for name, module in (("image_encoder", image_encoder), ("text_encoder", text_encoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be an nn.Module, got {type(module).__name__}")
        self.image_encoder, self.text_encoder = image_encoder, text_encoder
        self.embed_dim, self.normalize = embed_dim, scale is not None
        self.classifier = (nn.Linear(embed_dim, num_classes) if scale is None
                           else CosineClassifier(embed_dim, num_classes, scale))
        self.discriminator = ModalityDiscriminator(embed_dim, disc_hidden)

    def embed(self, image_input: Sequence[torch.Tensor],
              text_input: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z_image, z_text)``, each ``(B, embed_dim)`` (unit length unless ``scale=None``).

        Args:
            image_input: tuple of the image encoder's arguments.
            text_input: tuple of the text encoder's arguments.
        """
        z_img = self.image_encoder(*image_input)
        z_txt = self.text_encoder(*text_input)
        for name, z in (("image", z_img), ("text", z_txt)):
            if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.embed_dim:
                raise ValueError(f"the {name} encoder must give (B, {self.embed_dim}), "
                                 f"got {tuple(getattr(z, 'shape', ()))}")
        if self.normalize:
            z_img, z_txt = F.normalize(z_img, dim=1), F.normalize(z_txt, dim=1)
        return z_img, z_txt

    def embedding_losses(self, z_image: torch.Tensor, z_text: torch.Tensor, labels: torch.Tensor,
                         strength: float = 1.0) -> dict[str, torch.Tensor]:
        """:meth:`losses` for embeddings already computed by :meth:`embed`."""
        if not isinstance(labels, torch.Tensor) or labels.shape != (len(z_image),) \
                or len(z_text) != len(z_image):
            raise ValueError(f"expected labels (B,) for B images and B texts, got labels "
                             f"{getattr(labels, 'shape', type(labels).__name__)}, "
                             f"{len(z_image)} images and {len(z_text)} texts")
        y = torch.cat([labels, labels])
        task_logits = self.classifier(torch.cat([z_image, z_text]))
        disc, disc_acc = modality_loss(self.discriminator, grad_reverse(z_image, strength),
                                       grad_reverse(z_text, strength))
        return {"task": F.cross_entropy(task_logits, y), "disc": disc,
                "task_acc": (task_logits.argmax(1) == y).float().mean(), "disc_acc": disc_acc}

    def losses(self, image_input: Sequence[torch.Tensor], text_input: Sequence[torch.Tensor],
               labels: torch.Tensor, strength: float = 1.0) -> dict[str, torch.Tensor]:
        """Task and discriminator losses and accuracies for one batch.

        Args:
            image_input: tuple of the image encoder's arguments.
            text_input: tuple of the text encoder's arguments.
            labels: ``(B,)`` task classes (the same for the image and its text).
            strength: gradient-reversal strength; 0 trains the discriminator without
                pushing back on the encoders.

        Returns:
            ``task``, ``disc`` (losses; minimise ``task + disc``), ``task_acc``, ``disc_acc``.
        """
        z_img, z_txt = self.embed(image_input, text_input)
        return self.embedding_losses(z_img, z_txt, labels, strength)


def train_adversarial_alignment(
    aligner: AdversarialAligner,
    train_loader: DataLoader,
    warmup_epochs: int,
    adversarial_epochs: int,
    device: torch.device,
    strength: float = 1.0,
    disc_steps: int = 10,
    encoder_lr: float = 1e-3,
    final_encoder_lr: float | None = 1e-4,
    disc_lr: float = 1e-2,
    disc_weight_decay: float = 0.2,
    num_image_inputs: int = 1,
    eval_fn: Callable[[AdversarialAligner], dict[str, float]] | None = None,
    progress: bool = True,
) -> History:
    """Train an :class:`AdversarialAligner`: a warm-up with ``λ = 0``, then the adversarial game.

    Each batch is ``(*image_input, *text_input, labels)``; its first ``num_image_inputs``
    tensors are the image encoder's arguments. Per batch the discriminator first takes
    ``disc_steps − 1`` steps of its own on the batch's (frozen) embeddings, then one joint
    step on ``task + disc`` trains everyone, the encoders through :func:`grad_reverse` with
    ``λ = strength`` (``λ = 0`` during the warm-up). Three choices keep the game from circling:

    * the discriminator is the faster player (``disc_steps``, ``disc_lr > encoder_lr``), so
      it is near its best response and its accuracy measures overlap, not lag;
    * weight decay pulls its weights to zero, so once the modalities overlap the best
      discriminator is *no* discriminator and the reversed gradient fades out, instead of
      pushing the two clouds through each other;
    * the encoders' learning rate falls along a cosine from ``encoder_lr`` to
      ``final_encoder_lr`` over the adversarial epochs, so they end with small steps that the
      discriminator can follow, not with a jump it has not seen yet.

    Args:
        aligner: the model; it is moved to ``device``.
        train_loader: yields ``(*image_input, *text_input, labels)`` batches and has a length
            (a ``DataLoader``).
        warmup_epochs: epochs with ``λ = 0`` (the discriminator learns, the encoders ignore it).
        adversarial_epochs: epochs with ``λ = strength``.
        device: where to train.
        strength: the gradient-reversal strength ``λ``.
        disc_steps: discriminator steps per encoder step.
        encoder_lr: Adam learning rate of the encoders and the classifier.
        final_encoder_lr: their learning rate in the last epoch (cosine schedule, set once per
            epoch); ``None`` keeps ``encoder_lr`` throughout.
        disc_lr: Adam learning rate of the discriminator.
        disc_weight_decay: L2 weight decay of the discriminator.
        num_image_inputs: how many leading tensors of a batch go to the image encoder.
        eval_fn: called after each epoch, as :func:`cmlib.train.fit` does (eval mode, no
            gradients; :func:`modality_probe` switches them on for its own training); returns metrics.
        progress: show a progress bar.

    Returns:
        A :class:`cmlib.train.History` (loss = task + discriminator), warm-up epochs first.
    """
    if not isinstance(aligner, AdversarialAligner):
        raise TypeError(f"aligner must be an AdversarialAligner, got {type(aligner).__name__}")
    if not isinstance(warmup_epochs, int) or isinstance(warmup_epochs, bool) or warmup_epochs < 0:
        raise ValueError(f"warmup_epochs must be an int >= 0, got {warmup_epochs!r}")
    _positive(adversarial_epochs=adversarial_epochs, disc_steps=disc_steps,
              num_image_inputs=num_image_inputs)
    for name, value in (("strength", strength), ("disc_weight_decay", disc_weight_decay)):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
    for name, value in (("encoder_lr", encoder_lr), ("disc_lr", disc_lr)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    if final_encoder_lr is not None and not 0 < final_encoder_lr <= encoder_lr:
        raise ValueError(f"final_encoder_lr must lie in (0, encoder_lr={encoder_lr}], "
                         f"got {final_encoder_lr!r}")
    if not hasattr(train_loader, "__len__"):
        raise TypeError(f"train_loader must have a length (a DataLoader), got "
                        f"{type(train_loader).__name__}")
    if len(train_loader) == 0:
        raise ValueError("train_loader has no batches")
    disc_params = list(aligner.discriminator.parameters())
    disc_ids = {id(p) for p in disc_params}
    encoder_params = [p for p in aligner.parameters() if p.requires_grad and id(p) not in disc_ids]
    optimizer = torch.optim.Adam([
        {"params": encoder_params, "lr": encoder_lr},
        {"params": disc_params, "lr": disc_lr, "weight_decay": disc_weight_decay}])

    def game_step(lam: float) -> Callable[[AdversarialAligner, Sequence[torch.Tensor]], torch.Tensor]:
        def step(model: AdversarialAligner, batch: Sequence[torch.Tensor]) -> torch.Tensor:
            if len(batch) < num_image_inputs + 2:
                raise ValueError(f"a batch must be (*image_input, *text_input, labels) with "
                                 f"{num_image_inputs} image tensor(s), got {len(batch)} tensors")
            z_img, z_txt = model.embed(batch[:num_image_inputs], batch[num_image_inputs:-1])
            for _ in range(disc_steps - 1):  # the discriminator catches up on these embeddings
                optimizer.zero_grad(set_to_none=True)  # the encoders get no gradient: Adam skips them
                modality_loss(model.discriminator, z_img.detach(), z_txt.detach())[0].backward()
                optimizer.step()
            out = model.embedding_losses(z_img, z_txt, batch[-1], lam)
            return out["task"] + out["disc"]  # fit takes the joint step
        return step

    warmup = fit(aligner, train_loader, optimizer, warmup_epochs, device, step_fn=game_step(0.0),
                 eval_fn=eval_fn, progress=progress, desc="warm-up (λ = 0)") if warmup_epochs else History()
    scheduler = None
    if final_encoder_lr is not None:  # cosine over epochs; constant within an epoch
        steps_per_epoch = len(train_loader)
        ratio = final_encoder_lr / encoder_lr

        def encoder_factor(step: int) -> float:
            done = min(step // steps_per_epoch, adversarial_epochs - 1) / max(1, adversarial_epochs - 1)
            return ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * done))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, [encoder_factor, lambda step: 1.0])
    game = fit(aligner, train_loader, optimizer, adversarial_epochs, device,
               step_fn=game_step(strength), eval_fn=eval_fn, scheduler=scheduler,
               progress=progress, desc=f"adversarial (λ = {strength:g})")
    return History(warmup.train_loss + game.train_loss, warmup.metrics + game.metrics,
                   warmup.seconds + game.seconds)


@torch.no_grad()
def alignment_accuracies(aligner: AdversarialAligner, image_input: Sequence[torch.Tensor],
                         text_input: Sequence[torch.Tensor], labels: torch.Tensor,
                         device: torch.device | None = None) -> dict[str, float]:
    """The aligner's own task and discriminator accuracy on a (test) set, in eval mode.

    The aligner's train/eval mode is restored afterwards.

    Args:
        image_input, text_input: the encoders' arguments for all ``N`` examples (CPU is fine).
        labels: ``(N,)`` classes.
        device: where to compute (default: where the aligner is).

    Returns:
        ``{"task_acc": ..., "disc_acc": ...}``: the shared classifier's accuracy over all ``2N``
        embeddings, and the game's discriminator's accuracy at telling their modality.
    """
    if not isinstance(aligner, AdversarialAligner):
        raise TypeError(f"aligner must be an AdversarialAligner, got {type(aligner).__name__}")
    device = device or next(aligner.parameters()).device
    was_training = aligner.training
    aligner.eval().to(device)
    z_img, z_txt = aligner.embed([x.to(device) for x in image_input],
                                 [x.to(device) for x in text_input])
    out = aligner.embedding_losses(z_img, z_txt, labels.to(device), strength=0.0)
    aligner.train(was_training)
    return {"task_acc": out["task_acc"].item(), "disc_acc": out["disc_acc"].item()}


def modality_probe(aligner: AdversarialAligner,
                   train_inputs: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]],
                   test_inputs: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]],
                   hidden_dim: int | None = None, max_iter: int = 200, seed: int = 0,
                   device: torch.device | None = None) -> float:
    """Accuracy of a *fresh* discriminator trained on the aligner's frozen embeddings.

    The game's own discriminator can be behind: the encoders have just moved to where it is
    wrong. A probe (探针) trained from scratch to convergence — full-batch L-BFGS, no weight
    decay — on the training embeddings, and scored on the test embeddings, says whether the
    modalities can still be told apart by a discriminator of this kind. For the linear probe
    (logistic regression) the training problem is convex, so the answer does not depend on
    the initialisation. The global random state is left untouched.

    Args:
        aligner: the trained aligner (left unchanged).
        train_inputs: ``(image_input, text_input)`` for the probe's training set.
        test_inputs: ``(image_input, text_input)`` for its test set.
        hidden_dim: the probe's hidden width (``None``: linear).
        max_iter: L-BFGS iterations.
        seed: seeds the probe's initial weights.
        device: where to compute (default: where the aligner is).

    Returns:
        The probe's test accuracy at telling image (1) from text (0) embeddings; 0.5 is chance.
    """
    if not isinstance(aligner, AdversarialAligner):
        raise TypeError(f"aligner must be an AdversarialAligner, got {type(aligner).__name__}")
    for name, inputs in (("train_inputs", train_inputs), ("test_inputs", test_inputs)):
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            raise ValueError(f"{name} must be a pair (image_input, text_input)")
    _positive(max_iter=max_iter)
    device = device or next(aligner.parameters()).device
    was_training = aligner.training
    aligner.eval().to(device)
    with torch.no_grad():
        (tr_img, tr_txt), (te_img, te_txt) = (
            aligner.embed([x.to(device) for x in image_input], [x.to(device) for x in text_input])
            for image_input, text_input in (train_inputs, test_inputs))
    aligner.train(was_training)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = ModalityDiscriminator(aligner.embed_dim, hidden_dim).to(device)
    optimizer = torch.optim.LBFGS(probe.parameters(), lr=1.0, max_iter=max_iter,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = modality_loss(probe, tr_img, tr_txt)[0]
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    if not all(torch.isfinite(p).all() for p in probe.parameters()):
        raise RuntimeError("the probe's weights diverged; its accuracy would be meaningless")
    with torch.no_grad():
        return modality_loss(probe.eval(), te_img, te_txt)[1].item()


# ---------------------------------------------------------------- the article's listings (errata)
class ArticleFeatureFusion(nn.Module):
    """The article's §2.3.1 listing "加法融合模型伪代码", as printed (see the chapter's errata).

    Called additive, it concatenates and applies a linear layer.
    """

    def __init__(self, vis_dim, lang_dim):
        super(ArticleFeatureFusion, self).__init__()
        self.add = nn.Linear(vis_dim + lang_dim, vis_dim)

    def forward(self, vis_feature, lang_feature):
        fused_feature = self.add(torch.cat([vis_feature, lang_feature], dim=1))
        return fused_feature


class ArticleAdversarialFusion(nn.Module):
    """The article's §2.3.2 listing "对抗性训练模型伪代码", as printed (see the chapter's errata).

    ``vis_dim`` and ``lang_dim`` are undefined (NameError), and even with them
    defined there is no adversary: the "discriminator" sees both modalities
    concatenated, has nothing to tell apart, and no loss trains anything.
    """

    def __init__(self, vis_model, lang_model):
        super(ArticleAdversarialFusion, self).__init__()
        self.vis_model = vis_model
        self.lang_model = lang_model
        self.discriminator = nn.Sequential(
            nn.Linear(vis_dim + lang_dim, 1),  # noqa: F821 — undefined in the article too
            nn.Sigmoid()
        )

    def forward(self, vis_data, lang_data):
        vis_feature = self.vis_model(vis_data)
        lang_feature = self.lang_model(lang_data)
        fusion_feature = torch.cat([vis_feature, lang_feature], dim=1)
        discrimination = self.discriminator(fusion_feature)
        return discrimination
