"""Multimodal transformers that answer questions about images, built from the blocks.

An image becomes a sequence of patch tokens (:class:`PatchEmbedding`, as in ViT), a question a
sequence of word tokens (:class:`TokenEmbedding`); two ways of letting them meet:

* :class:`SingleStreamTransformer` — both streams go into a single encoder (ViLT, VisualBERT):
  ``[CLS] + patches + words``, each marked with a learned type (modality) embedding; every
  token attends to every other, and the answer is read from ``[CLS]``.
* :class:`CrossAttentionTransformer` — two streams (as in the decoder of a captioner, or
  LXMERT's cross layers): the patches encode themselves with self-attention; the words attend
  to each other and *cross-attend to the patches*; the answer is read from the mean of the words.

Question padding (``padding_idx``, 0 by default) is masked out of every attention, so padding a
question further never changes its answer. Both models keep the attention weights of their last
forward pass: :meth:`attention_maps` per layer, :meth:`patch_attention` as one map over the image
grid per head, for drawing which patches a question looked at.

The defaults (48 × 48 images like :class:`~cmlib.data.reasoning.ReasoningDataset`'s, 8 × 8
patches in a 6 × 6 grid, ``dim=64``, two layers) train on a CPU in minutes.
"""

from __future__ import annotations

import torch
from torch import nn

from ..validate import check_int, check_positive_ints, check_tensor
from .blocks import TransformerEncoder


# ---------------------------------------------------------------- embeddings
class PatchEmbedding(nn.Module):
    """Cut an image into ``patch_size`` squares and embed each one (ViT's patchify).

    A ``Conv2d`` whose kernel and stride are both ``patch_size`` applies one linear map to each
    non-overlapping patch: the same as flattening the patches and multiplying by a matrix. A
    learned position embedding per patch tells the transformer, which sees a set, where each
    patch was.

    Args:
        image_size: height and width of the (square) images.
        patch_size: height and width of a patch; must divide ``image_size``.
        channels: image channels.
        dim: the token feature size.

    Attributes:
        grid_size: patches per side, ``image_size // patch_size``.
        num_patches: ``grid_size ** 2``; patch ``i`` is row ``i // grid_size``, column
            ``i % grid_size``.

    Shapes:
        ``(B, channels, image_size, image_size)`` → ``(B, num_patches, dim)``.
    """

    def __init__(self, image_size: int = 48, patch_size: int = 8, channels: int = 3, dim: int = 64):
        super().__init__()
        check_positive_ints(
            image_size=image_size, patch_size=patch_size, channels=channels, dim=dim
        )
        if image_size % patch_size:
            raise ValueError(
                f"image_size must be divisible by patch_size, got image_size={image_size} "
                f"and patch_size={patch_size}"
            )
        self.image_size, self.patch_size, self.channels, self.dim = (
            image_size,
            patch_size,
            channels,
            dim,
        )
        self.grid_size = image_size // patch_size
        self.num_patches = self.grid_size**2
        self.proj = nn.Conv2d(channels, dim, kernel_size=patch_size, stride=patch_size)
        self.position = nn.Parameter(torch.zeros(1, self.num_patches, dim))
        nn.init.trunc_normal_(self.position, std=0.02)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = self.image_size
        check_tensor("images", images, ("B", self.channels, size, size), floating=True)
        # (B, dim, g, g) → (B, g·g, dim): row-major patch order, one token per patch
        return self.proj(images).flatten(2).transpose(1, 2) + self.position


class TokenEmbedding(nn.Module):
    """Embed question tokens and add a learned position embedding.

    Args:
        vocab_size: number of token ids.
        dim: the token feature size.
        max_len: the longest question, in tokens.
        padding_idx: the id of padding; its embedding is zero and stays zero.

    Shapes:
        ``(B, L)`` int64 or int32 ids, ``L <= max_len`` → ``(B, L, dim)``.
    """

    def __init__(self, vocab_size: int, dim: int = 64, max_len: int = 20, padding_idx: int = 0):
        super().__init__()
        check_positive_ints(vocab_size=vocab_size, dim=dim, max_len=max_len)
        check_int("padding_idx", padding_idx, minimum=0, maximum=vocab_size - 1)
        self.vocab_size, self.dim, self.max_len = vocab_size, dim, max_len
        self.padding_idx = padding_idx
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=padding_idx)
        self.position = nn.Parameter(torch.zeros(1, max_len, dim))
        nn.init.trunc_normal_(self.position, std=0.02)

    def padding_mask(self, tokens: torch.Tensor) -> torch.Tensor:
        """Bool ``(B, L)``, True where ``tokens`` is padding (the key_padding_mask convention)."""
        return tokens == self.padding_idx

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        check_tensor("question tokens", tokens, ("B", "L"))
        if tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"question tokens must be int64 or int32 ids, got dtype {tokens.dtype}")
        if tokens.shape[1] > self.max_len:
            raise ValueError(
                f"questions may have at most max_len={self.max_len} tokens, got shape "
                f"{tuple(tokens.shape)}"
            )
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise ValueError(
                f"token ids must lie in [0, {self.vocab_size - 1}], got ids from "
                f"{int(tokens.min())} to {int(tokens.max())}"
            )
        return self.embed(tokens) + self.position[:, : tokens.shape[1]]


# ---------------------------------------------------------------- the two models
class _ImageQuestionModel(nn.Module):
    """What both models share: the two embeddings, the answer head, and the input checks."""

    def __init__(
        self,
        vocab_size,
        num_answers,
        image_size,
        patch_size,
        channels,
        dim,
        max_question_len,
        padding_idx,
    ):
        super().__init__()
        check_positive_ints(num_answers=num_answers)
        self.num_answers = num_answers
        self.patches = PatchEmbedding(image_size, patch_size, channels, dim)
        self.tokens = TokenEmbedding(vocab_size, dim, max_question_len, padding_idx)
        self.head = nn.Linear(dim, num_answers)
        self._last_padding: torch.Tensor | None = None  # the questions' padding, for plots

    def _embed(self, images, questions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        patches, words = self.patches(images), self.tokens(questions)  # each checks its input
        if images.shape[0] != questions.shape[0]:
            raise ValueError(
                f"images and questions must have the same batch size, got images "
                f"{tuple(images.shape)} and questions {tuple(questions.shape)}"
            )
        padding = self.tokens.padding_mask(questions)
        self._last_padding = padding.detach()
        return patches, words, padding

    def _grid(self, weights: torch.Tensor) -> torch.Tensor:
        g = self.patches.grid_size
        return weights.reshape(*weights.shape[:2], g, g)


class SingleStreamTransformer(_ImageQuestionModel):
    """One encoder over ``[CLS] + patches + question``; the answer is read from ``[CLS]``.

    Every layer lets every token attend to every other, so image and question mix from the first
    layer on. A learned type embedding is added to the patch tokens and another to the question
    tokens: both carry position embeddings, and without the type the model could not tell patch
    3 from word 3. ``[CLS]`` is a learned token of its own.

    Args:
        vocab_size: question vocabulary size.
        num_answers: answer classes.
        image_size, patch_size, channels: as in :class:`PatchEmbedding`.
        dim: the token feature size.
        depth: encoder layers.
        num_heads: attention heads; must divide ``dim``.
        mlp_ratio: the feed-forward's hidden width over ``dim``.
        dropout: dropout in every block.
        max_question_len: the longest question, in tokens.
        padding_idx: the id of question padding, masked out of attention.

    Shapes:
        ``forward(images (B, C, S, S), questions (B, L))`` → logits ``(B, num_answers)``.
        ``attention_maps()`` → ``{"self": depth × (B, H, T, T)}``, ``T = 1 + N + L`` in the
        order ``[CLS]``, the ``N`` patches, the ``L`` question tokens.
        ``patch_attention(layer)`` → ``(B, H, g, g)``: ``[CLS]``'s weights on each patch.
    """

    def __init__(
        self,
        vocab_size: int,
        num_answers: int,
        image_size: int = 48,
        patch_size: int = 8,
        channels: int = 3,
        dim: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.1,
        max_question_len: int = 20,
        padding_idx: int = 0,
    ):
        super().__init__(
            vocab_size,
            num_answers,
            image_size,
            patch_size,
            channels,
            dim,
            max_question_len,
            padding_idx,
        )
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.types = nn.Parameter(torch.zeros(2, dim))  # row 0: image, row 1: question
        nn.init.trunc_normal_(self.cls, std=0.02)
        nn.init.trunc_normal_(self.types, std=0.02)
        self.encoder = TransformerEncoder(dim, depth, num_heads, mlp_ratio, dropout)

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        patches, words, padding = self._embed(images, questions)
        batch = patches.shape[0]
        x = torch.cat(
            [self.cls.expand(batch, -1, -1), patches + self.types[0], words + self.types[1]],
            dim=1,
        )
        # [CLS] and the patches are never padding; only question tokens can be
        present = torch.zeros(batch, 1 + patches.shape[1], dtype=torch.bool, device=x.device)
        x = self.encoder(x, key_padding_mask=torch.cat([present, padding], dim=1))
        return self.head(x[:, 0])

    def attention_maps(self) -> dict[str, list[torch.Tensor]]:
        """The last forward pass's attention weights: ``{"self": [(B, H, T, T) per layer]}``.

        Raises:
            RuntimeError: before the first forward pass.
        """
        return {"self": self.encoder.attention_maps()}

    def patch_attention(self, layer: int = -1) -> torch.Tensor:
        """``[CLS]``'s attention on each patch in ``layer``, as a grid ``(B, H, g, g)``.

        The rest of ``[CLS]``'s weight (it sums to 1) went to itself and the question tokens.
        """
        maps = self.encoder.attention_maps()
        n = self.patches.num_patches
        return self._grid(maps[layer][:, :, 0, 1 : 1 + n])


class CrossAttentionTransformer(_ImageQuestionModel):
    """Patches encode themselves; question tokens attend to each other and cross-attend to them.

    The image stream is a :class:`TransformerEncoder` over the patches. The question stream is a
    stack of blocks with self-attention (question padding masked), cross-attention from each
    question token to every patch, and a feed-forward. The answer head reads the mean of the
    question tokens that are not padding.

    Args:
        vocab_size: question vocabulary size.
        num_answers: answer classes.
        image_size, patch_size, channels: as in :class:`PatchEmbedding`.
        dim: the token feature size of both streams.
        image_depth: self-attention layers over the patches.
        question_depth: self- plus cross-attention layers over the question.
        num_heads: attention heads; must divide ``dim``.
        mlp_ratio: the feed-forward's hidden width over ``dim``.
        dropout: dropout in every block.
        max_question_len: the longest question, in tokens.
        padding_idx: the id of question padding, masked out of attention and of the mean.

    Shapes:
        ``forward(images (B, C, S, S), questions (B, L))`` → logits ``(B, num_answers)``.
        ``attention_maps()`` → ``{"image": image_depth × (B, H, N, N),
        "question": question_depth × (B, H, L, L), "cross": question_depth × (B, H, L, N)}``;
        a padding token's rows are its own (nothing reads them).
        ``patch_attention(layer)`` → ``(B, H, g, g)``: cross-attention in ``layer`` averaged
        over the question's real tokens; each head's map sums to 1.
    """

    def __init__(
        self,
        vocab_size: int,
        num_answers: int,
        image_size: int = 48,
        patch_size: int = 8,
        channels: int = 3,
        dim: int = 64,
        image_depth: int = 2,
        question_depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.1,
        max_question_len: int = 20,
        padding_idx: int = 0,
    ):
        super().__init__(
            vocab_size,
            num_answers,
            image_size,
            patch_size,
            channels,
            dim,
            max_question_len,
            padding_idx,
        )
        self.image_encoder = TransformerEncoder(dim, image_depth, num_heads, mlp_ratio, dropout)
        self.question_encoder = TransformerEncoder(
            dim, question_depth, num_heads, mlp_ratio, dropout, cross=True
        )

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        patches, words, padding = self._embed(images, questions)
        memory = self.image_encoder(patches)
        x = self.question_encoder(words, key_padding_mask=padding, memory=memory)
        real = (~padding).unsqueeze(-1).to(x.dtype)
        # the mean over real tokens; clamp so that an all-padding question pools to zeros
        pooled = (x * real).sum(dim=1) / real.sum(dim=1).clamp(min=1.0)
        return self.head(pooled)

    def attention_maps(self) -> dict[str, list[torch.Tensor]]:
        """The last forward pass's attention weights per layer, keyed by stream (see Shapes).

        Raises:
            RuntimeError: before the first forward pass.
        """
        return {
            "image": self.image_encoder.attention_maps(),
            "question": self.question_encoder.attention_maps(),
            "cross": self.question_encoder.cross_attention_maps(),
        }

    def patch_attention(self, layer: int = -1) -> torch.Tensor:
        """Cross-attention on each patch in ``layer``, averaged over the question's real tokens,
        as a grid ``(B, H, g, g)``."""
        cross = self.question_encoder.cross_attention_maps()[layer]  # (B, H, L, N)
        real = (~self._last_padding)[:, None, :, None].to(cross.dtype)
        mean = (cross * real).sum(dim=2) / real.sum(dim=2).clamp(min=1.0)
        return self._grid(mean)
