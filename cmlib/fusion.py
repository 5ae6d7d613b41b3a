"""Feature fusion (特征融合): one vision feature and one language feature become one.

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

Chapter 03 puts them to work in :mod:`cmlib.vqa` (visual question answering). Model-level
fusion (§2.3.2) is in :mod:`cmlib.ensembles` (late fusion) and :mod:`cmlib.alignment`
(adversarial alignment); the article's listings as printed are in :mod:`cmlib.errata`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .validate import check_positive_ints, check_tensor
from .vision import coordinate_grid


# ---------------------------------------------------------------- checks
def check_features(
    vision: torch.Tensor,
    language: torch.Tensor,
    vision_dim: int,
    language_dim: int,
    spatial: bool = False,
) -> None:
    """Raise ValueError unless ``vision``/``language`` have the sizes a fusion module expects.

    Args:
        vision: ``(B, vision_dim)``, or ``(B, vision_dim, h, w)`` when ``spatial``.
        language: ``(B, language_dim)``.
        vision_dim: expected vision feature size (channels for a grid).
        language_dim: expected language feature size.
        spatial: whether ``vision`` is a feature grid.
    """
    check_tensor("vision features", vision)
    check_tensor("language features", language)
    want_v = f"(B, {vision_dim}, h, w)" if spatial else f"(B, {vision_dim})"
    got = f"vision {tuple(vision.shape)} and language {tuple(language.shape)}"
    if vision.ndim != (4 if spatial else 2) or vision.shape[1] != vision_dim:
        raise ValueError(
            f"expected vision features {want_v} and language (B, {language_dim}), got {got}"
        )
    if language.ndim != 2 or language.shape[1] != language_dim:
        raise ValueError(
            f"expected vision features {want_v} and language (B, {language_dim}), got {got}"
        )
    if vision.shape[0] != language.shape[0]:
        raise ValueError(f"vision and language batch sizes differ: {got}")


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
        check_positive_ints(vision_dim=vision_dim, language_dim=language_dim, out_dim=out_dim)
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
        return g * torch.tanh(self.vision_proj(vision)) + (1 - g) * torch.tanh(
            self.language_proj(language)
        )


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
        check_positive_ints(rank=rank)
        self.rank = rank
        self.vision_factor = nn.Linear(vision_dim, rank)
        self.language_factor = nn.Linear(language_dim, rank)
        self.out = nn.Linear(rank, out_dim)

    def fuse(self, vision, language):
        return low_rank_bilinear(
            vision, language, self.vision_factor, self.language_factor, self.out
        )


def low_rank_bilinear(
    vision: torch.Tensor,
    language: torch.Tensor,
    vision_factor: nn.Module,
    language_factor: nn.Module,
    out: nn.Module,
) -> torch.Tensor:
    """The rule of :class:`LowRankBilinearFusion`: ``ReLU(P(tanh(U v) ⊙ tanh(V l)))``.

    Args:
        vision: ``(B, vision_dim)``.
        language: ``(B, language_dim)``.
        vision_factor: ``U``, a layer ``vision_dim → rank``.
        language_factor: ``V``, a layer ``language_dim → rank``.
        out: ``P``, a layer ``rank → out_dim``.

    Returns:
        ``(B, out_dim)``.
    """
    joint = torch.tanh(vision_factor(vision)) * torch.tanh(language_factor(language))
    return F.relu(out(joint))


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

    def __init__(
        self,
        vision_dim: int,
        language_dim: int,
        out_dim: int = 128,
        grid_size: int = 4,
        channels: int = 64,
        num_blocks: int = 2,
    ):
        super().__init__(vision_dim, language_dim, out_dim)
        check_positive_ints(grid_size=grid_size, channels=channels, num_blocks=num_blocks)
        self.grid_size, self.channels, self.num_blocks = grid_size, channels, num_blocks
        self.convs = nn.ModuleList(
            nn.Conv2d((vision_dim if i == 0 else channels) + 2, channels, 3, padding=1)
            for i in range(num_blocks)
        )
        # FiLM supplies the affine part of each normalisation
        self.norms = nn.ModuleList(
            nn.BatchNorm2d(channels, affine=False) for _ in range(num_blocks)
        )
        self.film = nn.Linear(language_dim, 2 * channels * num_blocks)
        self.out = nn.Linear(channels * grid_size * grid_size, out_dim)

    def modulation(self, language: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(γ, β)``, each ``(B, num_blocks, channels)``; ``γ`` is centred on 1."""
        gamma, beta = self.film(language).view(-1, self.num_blocks, 2, self.channels).unbind(2)
        return 1 + gamma, beta

    def fuse(self, vision, language):
        b, _, h, w = vision.shape
        if (h, w) != (self.grid_size, self.grid_size):
            raise ValueError(
                f"expected a {self.grid_size}x{self.grid_size} grid, got vision "
                f"{tuple(vision.shape)}"
            )
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

    def __init__(
        self,
        vision_dim: int,
        language_dim: int,
        out_dim: int = 128,
        grid_size: int = 4,
        num_heads: int = 2,
        head_dim: int = 32,
    ):
        super().__init__(vision_dim, language_dim, out_dim)
        check_positive_ints(grid_size=grid_size, num_heads=num_heads, head_dim=head_dim)
        self.grid_size, self.num_heads, self.head_dim = grid_size, num_heads, head_dim
        self.position = nn.Parameter(torch.zeros(grid_size * grid_size, vision_dim + 2))
        self.query = nn.Linear(language_dim, num_heads * head_dim)
        self.key = nn.Linear(vision_dim + 2, num_heads * head_dim)
        self.value = nn.Linear(vision_dim + 2, num_heads * head_dim)
        self.out = nn.Linear(num_heads * head_dim + language_dim, out_dim)

    def _regions(self, vision: torch.Tensor) -> torch.Tensor:
        b, c, h, w = vision.shape
        if (h, w) != (self.grid_size, self.grid_size):
            raise ValueError(
                f"expected a {self.grid_size}x{self.grid_size} grid, got vision "
                f"{tuple(vision.shape)}"
            )
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


def make_fusion(
    name: str, vision_dim: int, language_dim: int, out_dim: int = 128, **kwargs
) -> Fusion:
    """Build the fusion module called ``name`` (a key of :data:`FUSIONS`)."""
    if name not in FUSIONS:
        raise ValueError(f"unknown fusion {name!r}; choose one of {list(FUSIONS)}")
    return FUSIONS[name](vision_dim, language_dim, out_dim, **kwargs)
