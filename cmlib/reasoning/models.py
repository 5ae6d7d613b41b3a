"""Neural reasoners: each reads the frozen scene tagger's feature grid and a question, and
answers with one word.

Every model here has the same call, ``model(grid, questions) -> logits``, with ``grid`` the
tagger encoder's ``(B, C, g, g)`` features and ``questions`` token ids ``(B, L)`` padded with 0
(:func:`~cmlib.data.reasoning.encode_question`):

* :class:`VQAReasoner` — chapter 03's :class:`~cmlib.vqa.VQAModel` (a GRU question encoder, a
  fusion, a classifier) behind that call: FiLM, and the question-only and image-only baselines;
* :class:`RelationNetwork` — Santoro et al. (2017): every *pair* of cells, with the question,
  through one MLP ``g``; the sum of all pairs through another, ``f``. The pair is built into the
  architecture, so relations need not be discovered;
* the transformers of :mod:`cmlib.transformer`, whose :class:`~cmlib.transformer.PatchEmbedding`
  takes the grid as an image of ``C`` channels cut into patches of ``patch_size`` × ``patch_size``
  cells (ViT's "hybrid" input: CNN features, not pixels).

:func:`make_reasoner` builds any of them by name, at the course's sizes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..sequence import TextEncoder
from ..transformer import CrossAttentionTransformer, SingleStreamTransformer
from ..validate import check_choice, check_positive_ints, check_tensor
from ..vision import coordinate_grid
from ..vqa import VQAModel, make_vqa_model


def question_lengths(questions: torch.Tensor) -> torch.Tensor:
    """Tokens before the padding in each question ``(B, L)`` → ``(B,)`` (at least 1)."""
    check_tensor("questions", questions, ("B", "L"), floating=False, nonempty=True)
    return (questions != 0).sum(dim=1).clamp(min=1)


class VQAReasoner(nn.Module):
    """A :class:`~cmlib.vqa.VQAModel` called as ``model(grid, questions)``.

    Shapes:
        ``(B, C, g, g)``, ``(B, L)`` → ``(B, num_answers)``.
    """

    def __init__(self, vqa: VQAModel):
        super().__init__()
        if not isinstance(vqa, VQAModel):
            raise TypeError(f"vqa must be a VQAModel, got {type(vqa).__name__}")
        self.vqa = vqa

    def forward(self, grid: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        return self.vqa(grid, questions, question_lengths(questions))


class RelationNetwork(nn.Module):
    """A Relation Network: ``f(Σ_ij g(o_i, o_j, q))`` over the cells ``o`` of a pooled grid.

    Each cell, with its x and y, is an "object". ``g``'s first layer is linear, so it is
    computed per cell and per question and then summed for each pair (``W[o_i, o_j, q] =
    W_a o_i + W_b o_j + W_q q``): the same function as concatenating every pair, without
    building the ``N² × (2C + Q)`` tensor. The grid is max-pooled by ``pool`` first, because
    the pairs grow with the fourth power of its side: 144 cells make 20,736 pairs, 36 make 1,296.

    Args:
        vocab_size: question vocabulary size.
        num_answers: answer classes.
        channels: the grid's channels.
        pool: max-pool the grid by this factor first (1: keep it).
        hidden: the width of ``g`` and ``f``.
        embed_dim, question_dim: the GRU question encoder's sizes.

    Shapes:
        ``forward(grid (B, C, g, g), questions (B, L))`` → ``(B, num_answers)``.
    """

    def __init__(
        self,
        vocab_size: int,
        num_answers: int,
        channels: int = 64,
        pool: int = 2,
        hidden: int = 128,
        embed_dim: int = 32,
        question_dim: int = 64,
    ):
        super().__init__()
        check_positive_ints(
            vocab_size=vocab_size,
            num_answers=num_answers,
            channels=channels,
            pool=pool,
            hidden=hidden,
            embed_dim=embed_dim,
            question_dim=question_dim,
        )
        self.channels, self.pool = channels, pool
        self.question = TextEncoder(vocab_size, embed_dim, question_dim)
        self.first = nn.Linear(channels + 2, hidden)  # W_a
        self.second = nn.Linear(channels + 2, hidden, bias=False)  # W_b
        self.ask = nn.Linear(question_dim, hidden, bias=False)  # W_q
        self.g = nn.Sequential(
            nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.f = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_answers))

    def objects(self, grid: torch.Tensor) -> torch.Tensor:
        """The pooled cells with their coordinates: ``(B, N, C + 2)``."""
        check_tensor("grid", grid, ("B", self.channels, "g", "g"), floating=True)
        if self.pool > 1:
            grid = F.max_pool2d(grid, self.pool)
        b, _, h, w = grid.shape
        cells = torch.cat([grid, coordinate_grid(b, h, w, grid.device)], dim=1)
        return cells.flatten(2).transpose(1, 2)

    def forward(self, grid: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        objects = self.objects(grid)
        if questions.shape[0] != objects.shape[0]:
            raise ValueError(
                f"grid and questions must have the same batch size, got {objects.shape[0]} "
                f"and {questions.shape[0]}"
            )
        q = self.ask(self.question(questions, question_lengths(questions)))  # (B, H)
        # every pair (i, j): W_a o_i + W_b o_j + W_q q, as (B, N, N, H) by broadcasting
        pairs = self.first(objects)[:, :, None] + self.second(objects)[:, None] + q[:, None, None]
        return self.f(self.g(pairs).sum(dim=(1, 2)))


#: The reasoners that cut the grid into patches (``patch_size``).
TRANSFORMERS = ("single_stream", "cross_attention")
#: The reasoners :func:`make_reasoner` builds.
REASONERS = (
    "question_only",
    "image_only",
    "film",
    "relation_network",
    "single_stream",
    "cross_attention",
)


def make_reasoner(
    name: str,
    vocab_size: int,
    num_answers: int,
    grid_channels: int = 64,
    grid_size: int = 12,
    dim: int = 64,
    depth: int = 2,
    patch_size: int = 1,
    pool: int | None = None,
) -> nn.Module:
    """A reasoner of :data:`REASONERS` at the course's sizes, called ``model(grid, questions)``.

    Args:
        name: which model.
        vocab_size: question vocabulary size.
        num_answers: answer classes.
        grid_channels, grid_size: the feature grid's channels and side.
        dim, depth: the transformers' token size and layers (per stream for cross-attention).
        patch_size: the transformers' patches, in grid cells: 2 makes one token of each 2 × 2
            cells, four times fewer tokens (and steps about three times faster on a CPU) while
            an object, about two cells wide at 48 pixels, still spans at most two tokens along
            each axis.
            Only the transformers have patches; the other models need 1.
        pool: the Relation Network's max-pool factor (``None``: its default, 2). Its pairs grow
            with the fourth power of the pooled side: 3 makes a 12-cell grid 4 × 4, 256 pairs
            instead of 1,296, and a step about six times faster on a CPU. Only it pools.

    Raises:
        ValueError: for an unknown name, patches on a model without them, or a pool on a model
            other than the Relation Network.
    """
    check_choice("name", name, REASONERS)
    check_positive_ints(
        grid_channels=grid_channels,
        grid_size=grid_size,
        dim=dim,
        depth=depth,
        patch_size=patch_size,
    )
    if patch_size != 1 and name not in TRANSFORMERS:
        raise ValueError(f"only {TRANSFORMERS} take patch_size > 1, got {patch_size} for {name!r}")
    if pool is not None:
        if name != "relation_network":
            raise ValueError(
                f"only 'relation_network' pools its grid, got pool={pool} for {name!r}"
            )
        check_positive_ints(pool=pool)
        if grid_size % pool:
            raise ValueError(f"pool must divide the grid's side {grid_size}, got {pool}")
    grid = dict(image_size=grid_size, patch_size=patch_size, channels=grid_channels, dim=dim)
    if name == "relation_network":
        return RelationNetwork(vocab_size, num_answers, grid_channels, pool=pool or 2)
    if name == "single_stream":
        return SingleStreamTransformer(vocab_size, num_answers, depth=depth, dropout=0.0, **grid)
    if name == "cross_attention":
        return CrossAttentionTransformer(
            vocab_size, num_answers, image_depth=depth, question_depth=depth, dropout=0.0, **grid
        )
    fusion = name.replace("_", " ")  # chapter 03's names: "question only", "image only", "film"
    vqa = make_vqa_model(fusion, vocab_size, num_answers, grid_channels, grid_size=grid_size)
    return VQAReasoner(vqa)
