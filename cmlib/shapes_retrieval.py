"""Chapter 07's ShapesWorld retrieval task as a library: data, the dual encoder, its metric.

Chapter 07 trains this model and measures it in both directions; chapter 10 trains it with
several processes, and the launcher script, the studio and the tests build it too, so it lives
here instead of in a notebook. Scenes have one object; each caption
names its shape, colour, size and position, in five paraphrases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    """A split: images ``(N, 3, S, S)``, caption ids ``(N, V, T)``, lengths ``(N, V)``, attrs,
    and the captions as text (``N`` lists of ``V`` paraphrases; the first is the canonical one)."""

    images: torch.Tensor
    ids: torch.Tensor
    lengths: torch.Tensor
    attrs: dict[str, torch.Tensor]
    captions: list[list[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


def load_split(split: str, size: int, image_size: int = 32, seed: int = 0) -> CaptionedSplit:
    """``size`` one-object scenes of ``split`` with all their caption variants, tokenised."""
    check_int("size", size)
    data = ShapesWorld(split, size=size, num_objects=1, image_size=image_size, seed=seed)
    images, attrs = data.tensors()
    captions = [data.captions(i) for i in range(size)]
    ids, lengths = caption_tensors(shapes_vocab(), captions)
    return CaptionedSplit(images, ids, lengths, attrs, captions)


def make_dual_encoder(
    image_size: int = 32, cnn_width: int = 16, embed_dim: int = 128, pool: str = "mean"
) -> DualEncoder:
    """Chapter 07's model: ConvEncoder (chapter 01) and a GRU (chapter 02) into one space.

    ``pool`` is the image tower's (:class:`cmlib.vision.ConvEncoder`): ``"mean"`` in part 1,
    ``"flatten"`` (keep the layout) in part 2's two-object scenes.

    Shapes:
        ``encode_image``: ``(B, 3, image_size, image_size)`` → ``(B, embed_dim)``;
        ``encode_text(ids, lengths)``: ``(B, T), (B,)`` → ``(B, embed_dim)``.
    """
    vocab = shapes_vocab()
    image_tower = ConvEncoder(
        3, image_size=image_size, width=cnn_width, embed_dim=embed_dim, pool=pool
    )
    text_tower = TextEncoder(len(vocab), embed_dim=64, hidden_dim=128, cell="gru")
    return DualEncoder(
        image_tower,
        text_tower,
        image_dim=embed_dim,
        text_dim=text_tower.out_dim,
        embed_dim=embed_dim,
    )


@torch.no_grad()
def embed_split(
    model: DualEncoder,
    split: CaptionedSplit,
    device: torch.device,
    variant: int = 0,
    batch_size: int = 500,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The split's image embeddings ``(N, D)`` and caption embeddings ``(N, D)`` on the CPU.

    Args:
        variant: which paraphrase of each caption (0, the canonical one, to ``V - 1``).
    """
    check_int("variant", variant, minimum=0, maximum=split.ids.shape[1] - 1)
    check_int("batch_size", batch_size)
    was_training = model.training
    model.eval()
    images = torch.cat(
        [model.encode_image(x.to(device)).cpu() for x in split.images.split(batch_size)]
    )
    texts = torch.cat(
        [
            model.encode_text(ids.to(device), lengths.to(device)).cpu()
            for ids, lengths in zip(
                split.ids[:, variant].split(batch_size), split.lengths[:, variant].split(batch_size)
            )
        ]
    )
    model.train(was_training)
    return images, texts


def split_metrics(
    model: DualEncoder, split: CaptionedSplit, device: torch.device, batch_size: int = 500
) -> dict[str, dict[str, float]]:
    """Attribute R@1, R@5, R@10 and median rank in both directions: ``{"t2i": …, "i2t": …}``.

    Canonical captions query the split's images (``t2i``) and images query the captions
    (``i2t``). An item is relevant when it agrees with the query on every key in :data:`KEYS`.
    """
    images, texts = embed_split(model, split, device, batch_size=batch_size)
    relevant = attribute_relevance(split.attrs, split.attrs, KEYS)
    scores = texts.float() @ images.float().T  # (caption queries, images)
    return {
        "t2i": retrieval_metrics(scores, relevant),
        "i2t": retrieval_metrics(scores.T, relevant.T),
    }


def text_to_image_metrics(
    model: DualEncoder, split: CaptionedSplit, device: torch.device, batch_size: int = 500
) -> dict[str, float]:
    """Canonical captions as queries over the split's images: attribute R@1, R@5, R@10, median rank.

    An image counts as relevant when it agrees with the caption on every key in :data:`KEYS`.
    """
    return split_metrics(model, split, device, batch_size)["t2i"]
