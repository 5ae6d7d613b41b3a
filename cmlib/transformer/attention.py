"""Attention from scratch: the scaled dot product, and multi-head attention around it.

:func:`scaled_dot_product_attention` is ``softmax(q kᵀ / √D) v`` written with a matmul and a
softmax, so that every step can be printed and its weights drawn. :class:`MultiHeadAttention`
projects queries, keys and values, cuts them into heads (:func:`split_heads`), attends, and
glues the heads back (:func:`merge_heads`). The tests check both against PyTorch's
``F.scaled_dot_product_attention`` and ``nn.MultiheadAttention``; :func:`load_from_torch` and
:func:`load_into_torch` copy the weights between the two.

Masks, everywhere in :mod:`cmlib.transformer`, are **bool tensors where True means "blocked"**:

* ``key_padding_mask`` ``(B, Lk)``: True marks a key that is padding;
* ``attn_mask`` ``(Lq, Lk)``, ``(B, Lq, Lk)`` or ``(B, H, Lq, Lk)``: True marks a
  (query, key) pair that may not attend.

True means what it means in ``nn.MultiheadAttention``'s bool masks, though the shapes differ:
its 3-D ``attn_mask`` is ``(B·H, Lq, Lk)``, one per head, while ours is ``(B, Lq, Lk)``, one per
example, shared by its heads (pass ``(B, H, Lq, Lk)`` for one per head). It is the *opposite* of
``F.scaled_dot_product_attention``'s, where True means "takes part": pass ``~mask`` there.

A query whose every key is blocked (a padded question with no words, say) has nothing to
average: it gets zero weights and a zero output, never NaN, and no NaN gradient either.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..validate import check_int, check_number, check_positive_ints, check_tensor, describe


# ---------------------------------------------------------------- checks
def check_mask(name: str, mask, shapes: list[tuple[int, ...]]) -> torch.Tensor:
    """Check a bool mask whose shape is one of ``shapes``; return it.

    Raises:
        TypeError: if ``mask`` is not a bool tensor.
        ValueError: if its shape is none of ``shapes``.
    """
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a bool torch.Tensor, got {describe(mask)}")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"{name} must be a bool tensor (True = blocked), got dtype {mask.dtype}; "
            f"a float mask is not accepted"
        )
    if tuple(mask.shape) not in shapes:
        wanted = " or ".join(str(s) for s in shapes)
        raise ValueError(f"expected {name} of shape {wanted}, got {tuple(mask.shape)}")
    return mask


def _check_qkv(q, k, v) -> None:
    check_tensor("q", q, ("B", "H", "Lq", "D"), floating=True)
    check_tensor("k", k, ("B", "H", "Lk", "D"), floating=True)
    check_tensor("v", v, ("B", "H", "Lk", "Dv"), floating=True)
    shapes = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
    if q.shape[:2] != k.shape[:2] or k.shape[:2] != v.shape[:2]:
        raise ValueError(f"q, k and v must share (B, H), got {shapes}")
    if q.shape[3] != k.shape[3]:
        raise ValueError(f"q and k must have the same head size D, got {shapes}")
    if k.shape[2] != v.shape[2]:
        raise ValueError(f"k and v must have the same length Lk, got {shapes}")
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k and v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")


def blocked_pairs(
    batch: int,
    heads: int,
    lq: int,
    lk: int,
    key_padding_mask: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """The two masks checked and combined into one that broadcasts to ``(B, H, Lq, Lk)``.

    Returns:
        A bool tensor, True where a query may not attend to a key, or ``None`` if no mask came.
    """
    blocked = None
    if key_padding_mask is not None:
        check_mask("key_padding_mask", key_padding_mask, [(batch, lk)])
        blocked = key_padding_mask[:, None, None, :]  # the same keys for every head and query
    if attn_mask is not None:
        check_mask("attn_mask", attn_mask, [(lq, lk), (batch, lq, lk), (batch, heads, lq, lk)])
        if attn_mask.ndim == 3:
            attn_mask = attn_mask[:, None]  # one mask per example, shared by its heads
        blocked = attn_mask if blocked is None else blocked | attn_mask
    return blocked


# ---------------------------------------------------------------- attention
def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_padding_mask: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    training: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q kᵀ / √D) v``, with masks, written out step by step.

    Args:
        q: queries ``(B, H, Lq, D)``.
        k: keys ``(B, H, Lk, D)``.
        v: values ``(B, H, Lk, Dv)``.
        key_padding_mask: bool ``(B, Lk)``, True for a key that is padding (ignored).
        attn_mask: bool ``(Lq, Lk)``, ``(B, Lq, Lk)`` or ``(B, H, Lq, Lk)``, True where a query
            may *not* attend to a key (a causal mask is ``torch.ones(L, L).triu(1).bool()``).
            Note: ``F.scaled_dot_product_attention`` reads a bool mask the other way round.
        dropout_p: probability of dropping an attention weight (only when ``training``).
        training: apply dropout.

    Returns:
        ``(out, weights)``: ``out`` ``(B, H, Lq, Dv)``, and the softmax weights
        ``(B, H, Lq, Lk)`` *before* dropout (what the model chose to look at); every row
        sums to 1, except a row whose keys are all blocked, which is all zeros, as is its
        output.

    Raises:
        TypeError: if an input is not a float tensor, or a mask is not bool.
        ValueError: if the shapes disagree.

    Shapes:
        ``(B, H, Lq, D), (B, H, Lk, D), (B, H, Lk, Dv)`` → ``(B, H, Lq, Dv), (B, H, Lq, Lk)``.
    """
    _check_qkv(q, k, v)
    check_number("dropout_p", dropout_p, 0.0, 1.0, high_open=True)
    batch, heads, lq, d = q.shape
    blocked = blocked_pairs(batch, heads, lq, k.shape[2], key_padding_mask, attn_mask)
    # dividing by √D keeps the scores' variance near 1, so the softmax does not saturate
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(d)
    if blocked is None:
        weights = torch.softmax(scores, dim=-1)
    else:
        scores = scores.masked_fill(blocked, float("-inf"))
        # a row of only -inf would softmax to NaN (0 / 0): give it finite scores instead,
        # then zero its weights; its gradient is then exactly zero, not NaN
        empty = blocked.all(dim=-1, keepdim=True)
        scores = scores.masked_fill(empty, 0.0)
        weights = torch.softmax(scores, dim=-1).masked_fill(empty, 0.0)
    dropped = F.dropout(weights, dropout_p, training) if dropout_p > 0 else weights
    return dropped @ v, weights


# ---------------------------------------------------------------- heads
def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Cut the features of each token into ``num_heads`` heads.

    Args:
        x: ``(B, L, E)``, with ``E`` divisible by ``num_heads``.
        num_heads: the number of heads ``H``.

    Returns:
        ``(B, H, L, E / H)``: head ``h`` holds features ``h·E/H`` to ``(h+1)·E/H − 1``.

    Shapes:
        ``(B, L, E)`` → ``(B, H, L, E / H)``.
    """
    check_tensor("x", x, ("B", "L", "E"))
    check_int("num_heads", num_heads)
    b, length, e = x.shape
    if e % num_heads:
        raise ValueError(f"the feature size {e} is not divisible by num_heads={num_heads}")
    # view keeps each token's features together; transpose brings the heads before the tokens
    return x.view(b, length, num_heads, e // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """Undo :func:`split_heads`: put the heads of each token side by side again.

    Shapes:
        ``(B, H, L, D)`` → ``(B, L, H · D)``.
    """
    check_tensor("x", x, ("B", "H", "L", "D"))
    b, h, length, d = x.shape
    # transpose makes the tensor non-contiguous, hence reshape rather than view
    return x.transpose(1, 2).reshape(b, length, h * d)


class MultiHeadAttention(nn.Module):
    """Multi-head attention (多头注意力), batch first, on :func:`scaled_dot_product_attention`.

    ``out = W_o · merge(attention(split(W_q query), split(W_k key), split(W_v value)))``.
    Each head attends in its own ``embed_dim / num_heads``-sized subspace, so one head can
    follow colour while another follows position. Self-attention passes the same tensor three
    times; cross-attention passes the other stream as ``key`` and ``value``.

    Args:
        embed_dim: the feature size ``E`` of queries, keys, values and output.
        num_heads: the number of heads ``H``; must divide ``embed_dim``.
        dropout: dropout on the attention weights during training.
        bias: whether the four projections have biases.

    Shapes:
        ``forward(query (B, Lq, E), key (B, Lk, E), value (B, Lk, E))`` →
        ``(out (B, Lq, E), weights (B, H, Lq, Lk) or None)``. The weights are per head (average
        them over dim 1 for ``nn.MultiheadAttention``'s default) and taken before dropout.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        check_positive_ints(embed_dim=embed_dim, num_heads=num_heads)
        check_number("dropout", dropout, 0.0, 1.0, high_open=True)
        if embed_dim % num_heads:
            raise ValueError(
                f"embed_dim must be divisible by num_heads, got embed_dim={embed_dim} "
                f"and num_heads={num_heads}"
            )
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim = embed_dim // num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        # nn.MultiheadAttention's initialisation. It applies Xavier to q, k and v stacked in one
        # (3E, E) matrix, so each gets the bound √(6 / (E + 3E)), not a (E, E) matrix's
        # √(6 / 2E); out_proj keeps nn.Linear's default, as there; every bias starts at zero.
        bound = math.sqrt(6.0 / (embed_dim + 3 * embed_dim))
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            nn.init.uniform_(proj.weight, -bound, bound)
        for proj in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            if proj.bias is not None:
                nn.init.zeros_(proj.bias)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        need_weights: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        e = self.embed_dim
        check_tensor("query", query, ("B", "Lq", e), floating=True)
        check_tensor("key", key, ("B", "Lk", e), floating=True)
        check_tensor("value", value, ("B", "Lk", e), floating=True)
        if not query.shape[0] == key.shape[0] == value.shape[0] or key.shape[1] != value.shape[1]:
            raise ValueError(
                f"expected query (B, Lq, {e}) and key, value (B, Lk, {e}), got query "
                f"{tuple(query.shape)}, key {tuple(key.shape)}, value {tuple(value.shape)}"
            )
        q = split_heads(self.q_proj(query), self.num_heads)
        k = split_heads(self.k_proj(key), self.num_heads)
        v = split_heads(self.v_proj(value), self.num_heads)
        out, weights = scaled_dot_product_attention(
            q, k, v, key_padding_mask, attn_mask, self.dropout, self.training
        )
        return self.out_proj(merge_heads(out)), (weights if need_weights else None)


# ---------------------------------------------------------------- PyTorch's layer
def _check_compatible(mha: MultiHeadAttention, torch_mha: nn.MultiheadAttention) -> None:
    if not isinstance(mha, MultiHeadAttention):
        raise TypeError(f"mha must be a MultiHeadAttention, got {describe(mha)}")
    if not isinstance(torch_mha, nn.MultiheadAttention):
        raise TypeError(f"torch_mha must be an nn.MultiheadAttention, got {describe(torch_mha)}")
    ours = (mha.embed_dim, mha.num_heads, mha.q_proj.bias is not None)
    theirs = (torch_mha.embed_dim, torch_mha.num_heads, torch_mha.in_proj_bias is not None)
    if ours != theirs:
        raise ValueError(
            f"the layers differ: (embed_dim, num_heads, bias) is {ours} here and {theirs} there"
        )
    if not torch_mha._qkv_same_embed_dim or torch_mha.bias_k is not None:
        raise ValueError("torch_mha must have kdim = vdim = embed_dim and no add_bias_kv")


@torch.no_grad()
def load_from_torch(mha: MultiHeadAttention, torch_mha: nn.MultiheadAttention) -> None:
    """Copy ``nn.MultiheadAttention``'s weights into ``mha``, so that both compute the same.

    PyTorch stacks the three input projections in one ``in_proj_weight`` ``(3E, E)``, in the
    order q, k, v; here they are three layers.

    Raises:
        TypeError: if an argument is not the layer it should be.
        ValueError: if the two differ in size, heads or biases.
    """
    _check_compatible(mha, torch_mha)
    weights = torch_mha.in_proj_weight.chunk(3)
    biases = torch_mha.in_proj_bias.chunk(3) if torch_mha.in_proj_bias is not None else [None] * 3
    for proj, w, b in zip((mha.q_proj, mha.k_proj, mha.v_proj), weights, biases):
        proj.weight.copy_(w)
        if b is not None:
            proj.bias.copy_(b)
    mha.out_proj.weight.copy_(torch_mha.out_proj.weight)
    if torch_mha.out_proj.bias is not None:
        mha.out_proj.bias.copy_(torch_mha.out_proj.bias)


@torch.no_grad()
def load_into_torch(mha: MultiHeadAttention, torch_mha: nn.MultiheadAttention) -> None:
    """Copy ``mha``'s weights into ``nn.MultiheadAttention``: the reverse of
    :func:`load_from_torch`."""
    _check_compatible(mha, torch_mha)
    projections = (mha.q_proj, mha.k_proj, mha.v_proj)
    torch_mha.in_proj_weight.copy_(torch.cat([p.weight for p in projections]))
    if torch_mha.in_proj_bias is not None:
        torch_mha.in_proj_bias.copy_(torch.cat([p.bias for p in projections]))
    torch_mha.out_proj.weight.copy_(mha.out_proj.weight)
    if torch_mha.out_proj.bias is not None:
        torch_mha.out_proj.bias.copy_(mha.out_proj.bias)
