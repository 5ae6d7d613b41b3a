"""Chapter 07's ShapesWorld retrieval task as a library: data, the dual encoder, its metric.

Chapter 09 trains this model with several processes, and the launcher script and the tests
build it too, so it lives here instead of in a notebook. Scenes have one object; each caption
names its shape, colour, size and position, in five paraphrases.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .data.shapes import ShapesWorld
from .data.shapes.text import shapes_vocab
from .retrieval import DualEncoder, attribute_relevance, caption_tensors, retrieval_metrics
from .sequence import TextEncoder
from .validate import check_int
from .vision import ConvEncoder

#: What a canonical caption says, so what makes two scenes "the same" for retrieval.
KEYS = ("shape", "color", "size", "position")


@dataclass
class CaptionedSplit:
    """A split: images ``(N, 3, S, S)``, caption ids ``(N, V, T)``, lengths ``(N, V)``, attrs."""

    images: torch.Tensor
    ids: torch.Tensor
    lengths: torch.Tensor
    attrs: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return len(self.images)


def load_split(split: str, size: int, image_size: int = 32, seed: int = 0) -> CaptionedSplit:
    """``size`` one-object scenes of ``split`` with all their caption variants, tokenised."""
    check_int("size", size)
    data = ShapesWorld(split, size=size, num_objects=1, image_size=image_size, seed=seed)
    images, attrs = data.tensors()
    ids, lengths = caption_tensors(shapes_vocab(), [data.captions(i) for i in range(size)])
    return CaptionedSplit(images, ids, lengths, attrs)


def make_dual_encoder(
    image_size: int = 32, cnn_width: int = 16, embed_dim: int = 128
) -> DualEncoder:
    """Chapter 07's model: ConvEncoder (chapter 01) and a GRU (chapter 02) into one space.

    Shapes:
        ``encode_image``: ``(B, 3, image_size, image_size)`` → ``(B, embed_dim)``;
        ``encode_text(ids, lengths)``: ``(B, T), (B,)`` → ``(B, embed_dim)``.
    """
    vocab = shapes_vocab()
    image_tower = ConvEncoder(3, image_size=image_size, width=cnn_width, embed_dim=embed_dim)
    text_tower = TextEncoder(len(vocab), embed_dim=64, hidden_dim=128, cell="gru")
    return DualEncoder(
        image_tower,
        text_tower,
        image_dim=embed_dim,
        text_dim=text_tower.out_dim,
        embed_dim=embed_dim,
    )


@torch.no_grad()
def text_to_image_metrics(
    model: DualEncoder, split: CaptionedSplit, device: torch.device, batch_size: int = 500
) -> dict[str, float]:
    """Canonical captions as queries over the split's images: attribute R@1, R@5, R@10, median rank.

    An image counts as relevant when it agrees with the caption on every key in :data:`KEYS`.
    """
    was_training = model.training
    model.eval()
    images = torch.cat(
        [model.encode_image(x.to(device)).cpu() for x in split.images.split(batch_size)]
    )
    texts = torch.cat(
        [
            model.encode_text(ids.to(device), lengths.to(device)).cpu()
            for ids, lengths in zip(
                split.ids[:, 0].split(batch_size), split.lengths[:, 0].split(batch_size)
            )
        ]
    )
    model.train(was_training)
    relevant = attribute_relevance(split.attrs, split.attrs, KEYS)
    return retrieval_metrics(texts.float() @ images.float().T, relevant)
