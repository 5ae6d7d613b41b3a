"""ShapesWorld tasks: the data each chapter builds from ShapesWorld, beyond plain images.

* :func:`left_object_data` — chapter 02's word-order task (who is on the left?);
* :func:`load_partial_views` — chapter 03's partly informative views, for late fusion and
  adversarial alignment;
* :func:`one_object_photos` and :func:`judge_training_set` — chapter 04's generation data.

Chapter 03's visual question answering has a module of its own, :mod:`cmlib.data.shapes.vqa`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...validate import check_int, check_number
from .dataset import ShapesWorld
from .text import canonical_caption, shapes_vocab
from .world import ALL_PAIRS, pair_label


# ---------------------------------------------------------------- chapter 02: word order
def left_object_data(
    split: str = "train", num_scenes: int = 2000, seed: int = 0
) -> tuple[list[str], torch.Tensor]:
    """The word-order task: from a two-object caption, name the object on the left.

    Only scenes whose relation is "left of" or "right of" are used (for "above"
    and "below" no object is on the left). Every caption variant of a scene is
    one example, so a scene appears as "a red circle left of a blue square" and
    as "a blue square to the right of a red circle". The label is the left
    object's (colour, shape) class, :func:`cmlib.data.shapes.world.pair_label`.

    The two orders of the same words — "a red circle left of a blue square" and
    "a blue square left of a red circle" — have opposite answers and are equally
    likely, so any model that ignores word order is right at most half the time.

    Args:
        split: the ShapesWorld split.
        num_scenes: two-object scenes drawn (about half are kept).
        seed: the dataset seed.

    Returns:
        ``(captions, labels)``: N strings and an ``(N,)`` LongTensor.
    """
    check_int("num_scenes", num_scenes)
    data = ShapesWorld(split, size=num_scenes, num_objects=2, seed=seed)
    texts, labels = [], []
    for i in range(num_scenes):
        scene = data.scene(i)
        if scene.relation not in ("left of", "right of"):
            continue
        left = scene.objects[0] if scene.relation == "left of" else scene.objects[1]
        for caption in data.captions(i):
            texts.append(caption)
            labels.append(pair_label(left.color, left.shape))
    return texts, torch.tensor(labels, dtype=torch.long)


# ---------------------------------------------------------------- chapter 03: partial views
@dataclass
class PartialViews:
    """One-object scenes seen through two partial views, for late fusion and alignment.

    Attributes:
        images: ``(N, 3, H, W)`` degraded images (block-averaged, then noisy): colour survives,
            shape barely does.
        clean_images: ``(N, 3, H, W)`` the original images.
        captions: N partial captions: the colour word and the shape word are each left out
            with probability ``drop``.
        ids, lengths: the partial captions as ``(N, T)`` ids and ``(N,)`` lengths.
        full_ids, full_lengths: the canonical (complete) captions.
        labels: ``(N,)`` the object's (colour, shape) as an index into :data:`ALL_PAIRS`.
    """

    images: torch.Tensor
    clean_images: torch.Tensor
    captions: list[str]
    ids: torch.Tensor
    lengths: torch.Tensor
    full_ids: torch.Tensor
    full_lengths: torch.Tensor
    labels: torch.Tensor


def load_partial_views(
    split: str = "train",
    num_images: int = 1500,
    image_size: int = 32,
    block: int = 8,
    noise: float = 0.1,
    drop: float = 0.5,
    seed: int = 0,
) -> PartialViews:
    """A task where each modality is partly informative (see :class:`PartialViews`).

    Args:
        split: the ShapesWorld split (one-object scenes, dataset seed 0).
        num_images: number of scenes.
        image_size: image height and width.
        block: the image is averaged over ``block × block`` pixel blocks (1 = no blur).
        noise: standard deviation of the Gaussian pixel noise added after blurring.
        drop: probability of leaving each of the colour and the shape word out of a caption.
        seed: seeds the noise and the dropped words.
    """
    check_number("drop", drop, 0.0, 1.0)
    check_number("noise", noise, low=0.0)
    check_int("block", block)
    if image_size % block:
        raise ValueError(
            f"block must be a positive int dividing image_size={image_size}, got {block!r}"
        )
    dataset = ShapesWorld(split, size=num_images, image_size=image_size, num_objects=1, seed=0)
    clean, _ = dataset.tensors()
    gen = torch.Generator().manual_seed(seed)
    blurred = torch.nn.functional.avg_pool2d(clean, block)
    blurred = torch.nn.functional.interpolate(blurred, scale_factor=block, mode="nearest")
    images = (blurred + noise * torch.randn(clean.shape, generator=gen)).clamp_(0, 1)
    rng = np.random.default_rng(seed)
    captions, full, labels = [], [], []
    for i in range(num_images):
        scene = dataset.scene(i)
        obj = scene.objects[0]
        keep_color, keep_shape = rng.random(2) >= drop
        colour = f"{obj.color} " if keep_color else ""
        shape = obj.shape if keep_shape else "object"
        where = canonical_caption(scene).split(obj.shape, 1)[1].strip()
        captions.append(f"a {obj.size} {colour}{shape} {where}")
        full.append(canonical_caption(scene))
        labels.append(ALL_PAIRS.index((obj.color, obj.shape)))
    vocab = shapes_vocab()
    ids, lengths = vocab.encode_batch(captions)
    full_ids, full_lengths = vocab.encode_batch(full)
    return PartialViews(
        images, clean, captions, ids, lengths, full_ids, full_lengths, torch.tensor(labels)
    )


# ---------------------------------------------------------------- chapter 04: generation
def one_object_photos(
    split: str, size: int, image_size: int = 16, seed: int = 0
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Chapter 04's data: one-object, photo-style ShapesWorld images ``(N, 3, S, S)`` and their
    labels."""
    data = ShapesWorld(
        split, size=size, image_size=image_size, num_objects=1, style="photo", seed=seed
    )
    return data.tensors(cache=False)


def judge_training_set(
    x_train: torch.Tensor,
    a_train: dict[str, torch.Tensor],
    x_heldout: torch.Tensor,
    a_heldout: dict[str, torch.Tensor],
    num_kept: int = 500,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The judge's training images: the generators' training set plus ``heldout[num_kept:]``.

    The judge must know all 18 colour–shape pairs, so it also learns from held-out pairs, which the
    generators never see; ``heldout[:num_kept]`` stays unseen by everyone, to score the judge on.
    """
    if not 0 <= num_kept < len(x_heldout):
        raise ValueError(f"num_kept must be in [0, {len(x_heldout)}), got {num_kept}")
    return (
        torch.cat([x_train, x_heldout[num_kept:]]),
        {k: torch.cat([a_train[k], a_heldout[k][num_kept:]]) for k in a_train},
    )
