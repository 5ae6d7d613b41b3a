"""A multimodal transformer from scratch (cross-modal reasoning): attention up to VQA models.

* :mod:`.attention` — :func:`scaled_dot_product_attention` (matmul and softmax, masks with
  True = blocked), :class:`MultiHeadAttention`, :func:`split_heads` / :func:`merge_heads`, and
  weight copies to and from ``nn.MultiheadAttention``;
* :mod:`.blocks` — :class:`FeedForward`, the pre-norm :class:`TransformerBlock` (optionally
  with cross-attention), :class:`TransformerEncoder`;
* :mod:`.multimodal` — :class:`PatchEmbedding`, :class:`TokenEmbedding`, and two ways to answer
  questions about images: :class:`SingleStreamTransformer` (one encoder over patches and words)
  and :class:`CrossAttentionTransformer` (words cross-attend to patches).
"""

from .attention import (
    MultiHeadAttention,
    load_from_torch,
    load_into_torch,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from .blocks import FeedForward, TransformerBlock, TransformerEncoder
from .multimodal import (
    CrossAttentionTransformer,
    PatchEmbedding,
    SingleStreamTransformer,
    TokenEmbedding,
)

__all__ = [
    "CrossAttentionTransformer",
    "FeedForward",
    "MultiHeadAttention",
    "PatchEmbedding",
    "SingleStreamTransformer",
    "TokenEmbedding",
    "TransformerBlock",
    "TransformerEncoder",
    "load_from_torch",
    "load_into_torch",
    "merge_heads",
    "scaled_dot_product_attention",
    "split_heads",
]
