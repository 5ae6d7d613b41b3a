"""Transformer blocks: the feed-forward layer, the pre-norm block, and a stack of blocks.

A block is two (or three) residual sub-layers, each reading a layer-normalised copy of the
stream and adding its result back::

    x = x + self_attention(LN(x))                  # tokens exchange information
    x = x + cross_attention(LN(x), memory)         # only when cross=True: read the other stream
    x = x + feed_forward(LN(x))                    # each token thinks on its own

Normalising *before* each sub-layer (pre-norm, as in GPT-2 and ViT) leaves the residual path
untouched from input to output, which is what lets small transformers train without a
learning-rate warm-up. Each block keeps the attention weights of its last forward pass
(``last_attention``, ``last_cross_attention``) so that a chapter can draw them.

Masks follow :mod:`cmlib.transformer.attention`: bool, True = blocked.
"""

from __future__ import annotations

import torch
from torch import nn

from ..validate import check_number, check_positive_ints, check_tensor
from .attention import MultiHeadAttention


class FeedForward(nn.Module):
    """The position-wise MLP of a transformer: Linear → GELU → Linear, with dropout.

    Args:
        dim: the token feature size.
        hidden_dim: the hidden width (4 × ``dim`` in most transformers).
        dropout: dropout after the activation and after the output.

    Shapes:
        ``(B, L, dim)`` → ``(B, L, dim)`` (any leading dimensions work: it acts per token).
    """

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        check_positive_ints(dim=dim, hidden_dim=hidden_dim)
        check_number("dropout", dropout, 0.0, 1.0, high_open=True)
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TransformerBlock(nn.Module):
    """A pre-norm transformer block, optionally with a cross-attention sub-layer.

    Args:
        dim: the token feature size ``E``.
        num_heads: attention heads; must divide ``dim``.
        mlp_ratio: the feed-forward's hidden width is ``round(mlp_ratio * dim)``.
        dropout: dropout on attention weights and on every sub-layer's output.
        cross: add ``x + cross_attention(LN(x), memory)`` between self-attention and the
            feed-forward; ``forward`` then needs ``memory``.

    Attributes:
        last_attention: the self-attention weights of the last forward pass, ``(B, H, L, L)``,
            detached (``None`` before the first).
        last_cross_attention: the cross-attention weights ``(B, H, L, M)`` (``None`` before the
            first forward, and always without ``cross``).

    Shapes:
        ``forward(x (B, L, E), memory (B, M, E) when cross)`` → ``(B, L, E)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        cross: bool = False,
    ):
        super().__init__()
        check_positive_ints(dim=dim, num_heads=num_heads)
        check_number("mlp_ratio", mlp_ratio, 0.0, low_open=True)
        self.dim, self.cross = dim, bool(cross)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads, dropout)
        if self.cross:
            self.norm_cross = nn.LayerNorm(dim)
            self.cross_attn = MultiHeadAttention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, max(1, round(mlp_ratio * dim)), dropout)
        self.drop = nn.Dropout(dropout)
        self.last_attention: torch.Tensor | None = None
        self.last_cross_attention: torch.Tensor | None = None

    def forward(
        self,
        x: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One block.

        Args:
            x: the token stream ``(B, L, E)``.
            key_padding_mask: bool ``(B, L)``, True for padding tokens of ``x``.
            attn_mask: bool ``(L, L)``, ``(B, L, L)`` or ``(B, H, L, L)``, True = may not attend.
            memory: the other stream ``(B, M, E)``, read by cross-attention as it is (a
                :class:`TransformerEncoder`'s output is already normalised).
            memory_padding_mask: bool ``(B, M)``, True for padding tokens of ``memory``.
        """
        check_tensor("x", x, ("B", "L", self.dim), floating=True)
        if self.cross and memory is None:
            raise ValueError("this block was built with cross=True: pass memory (B, M, E)")
        if not self.cross and (memory is not None or memory_padding_mask is not None):
            raise ValueError("this block has no cross-attention (cross=False): got a memory")
        h = self.norm1(x)
        out, weights = self.attn(h, h, h, key_padding_mask, attn_mask)
        x = x + self.drop(out)
        # kept for plotting only: detached so that holding it keeps no graph alive
        self.last_attention = weights.detach()
        if self.cross:
            check_tensor("memory", memory, (x.shape[0], "M", self.dim), floating=True)
            out, weights = self.cross_attn(
                self.norm_cross(x), memory, memory, key_padding_mask=memory_padding_mask
            )
            x = x + self.drop(out)
            self.last_cross_attention = weights.detach()
        return x + self.ff(self.norm2(x))


class TransformerEncoder(nn.Module):
    """A stack of :class:`TransformerBlock` s and a final LayerNorm.

    With pre-norm blocks the stream itself is never normalised, so the stack ends with one
    LayerNorm to hand a well-scaled output to the head (or to the other stream's cross-attention).

    Args:
        dim: the token feature size ``E``.
        depth: the number of blocks.
        num_heads: attention heads per block.
        mlp_ratio: the feed-forward's hidden width over ``dim``.
        dropout: dropout in every block.
        cross: every block also cross-attends to a ``memory``.

    Shapes:
        ``forward(x (B, L, E), memory (B, M, E) when cross)`` → ``(B, L, E)``.
        ``attention_maps()`` → ``depth`` tensors ``(B, H, L, L)``;
        ``cross_attention_maps()`` → ``depth`` tensors ``(B, H, L, M)``.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        cross: bool = False,
    ):
        super().__init__()
        check_positive_ints(depth=depth)
        self.dim, self.depth, self.cross = dim, depth, bool(cross)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, num_heads, mlp_ratio, dropout, cross) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        x: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run every block (arguments as in :meth:`TransformerBlock.forward`), then normalise."""
        for block in self.blocks:
            x = block(x, key_padding_mask, attn_mask, memory, memory_padding_mask)
        return self.norm(x)

    def attention_maps(self) -> list[torch.Tensor]:
        """Each block's self-attention weights ``(B, H, L, L)`` from the last forward pass.

        Raises:
            RuntimeError: before the first forward pass.
        """
        return _collect([b.last_attention for b in self.blocks], "attention")

    def cross_attention_maps(self) -> list[torch.Tensor]:
        """Each block's cross-attention weights ``(B, H, L, M)`` from the last forward pass.

        Raises:
            ValueError: if the encoder has no cross-attention.
            RuntimeError: before the first forward pass.
        """
        if not self.cross:
            raise ValueError("this encoder has no cross-attention (built with cross=False)")
        return _collect([b.last_cross_attention for b in self.blocks], "cross-attention")


def _collect(maps: list[torch.Tensor | None], what: str) -> list[torch.Tensor]:
    if any(m is None for m in maps):
        raise RuntimeError(f"no {what} weights yet: run a forward pass first")
    return list(maps)
