"""ShapesWorld visual question answering (VQA) as tensors, built once and cached.

Each image of a ShapesWorld split comes with five questions, one per kind in
:data:`~cmlib.data.shapes.text.QUESTION_KINDS` (colour, shape, count,
existence, relation), from :meth:`ShapesWorld.questions`. :func:`load_vqa`
renders the images (cached by :meth:`ShapesWorld.tensors`), tokenises every
question with :func:`~cmlib.data.shapes.text.shapes_vocab` and stores the
question table under ``data/cache`` so that it is never rebuilt per epoch.

Example:
    >>> data = load_vqa("train", num_images=2000)
    >>> data.images.shape, data.ids.shape          # (2000, 3, 32, 32), (10000, T)
    >>> data.question(0), data.answer_text(0)      # 'what color is the circle', 'red'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...text import Vocab
from ...validate import check_int
from ..cache import cached_array
from .dataset import ShapesWorld
from .render import signed_distance
from .text import ANSWERS, QUESTION_KINDS, shapes_vocab
from .world import ALL_PAIRS, COLORS, SHAPES, SIZES

#: Questions are padded (or would be cut) to this many tokens in the cache.
MAX_QUESTION_TOKENS = 20
#: The label of a cell no object touches.
BACKGROUND = len(ALL_PAIRS)
_FIXED_COLUMNS = 4  # image index, answer id, kind id, length


@dataclass
class VQAData:
    """One split of ShapesWorld VQA.

    Attributes:
        images: ``(N, 3, H, W)`` float images in [0, 1].
        image_index: ``(Q,)`` which image each question is about.
        ids: ``(Q, T)`` question token ids, padded with ``vocab.pad_id``.
        lengths: ``(Q,)`` true question lengths.
        answers: ``(Q,)`` answer ids into :data:`ANSWERS`.
        kinds: ``(Q,)`` kind ids into :data:`QUESTION_KINDS`.
        cells: ``(N, g, g)`` what each cell of a ``g × g`` grid shows (see :func:`cell_labels`;
            ``g = image_size // 8``, the grid of a :class:`~cmlib.vision.ConvEncoder`).
        vocab: the vocabulary of the ids.
    """

    images: torch.Tensor
    image_index: torch.Tensor
    ids: torch.Tensor
    lengths: torch.Tensor
    answers: torch.Tensor
    kinds: torch.Tensor
    cells: torch.Tensor
    vocab: Vocab

    def __len__(self) -> int:
        return len(self.answers)

    def question(self, q: int) -> str:
        """The text of question ``q`` (tokenised, so without the question mark)."""
        return self.vocab.decode(self.ids[q, : self.lengths[q]].tolist())

    def answer_text(self, q: int) -> str:
        """The answer word of question ``q``."""
        return ANSWERS[int(self.answers[q])]

    def kind_text(self, q: int) -> str:
        """The kind of question ``q`` (``"color"``, ``"shape"``...)."""
        return QUESTION_KINDS[int(self.kinds[q])]


def _question_table(dataset: ShapesWorld, vocab: Vocab) -> np.ndarray:
    """``(Q, 4 + MAX_QUESTION_TOKENS)`` int64: image, answer, kind, length, padded ids."""
    rows = []
    for i in range(len(dataset)):
        for qa in dataset.questions(i):
            ids = vocab.encode(qa.question, strict=True)
            if len(ids) > MAX_QUESTION_TOKENS:
                raise ValueError(
                    f"question {qa.question!r} has {len(ids)} tokens, "
                    f"more than MAX_QUESTION_TOKENS={MAX_QUESTION_TOKENS}"
                )
            padded = ids + [vocab.pad_id] * (MAX_QUESTION_TOKENS - len(ids))
            rows.append(
                [i, ANSWERS.index(qa.answer), QUESTION_KINDS.index(qa.kind), len(ids), *padded]
            )
    return np.asarray(rows, dtype=np.int64)


def cell_objects(dataset: ShapesWorld, grid_size: int) -> torch.Tensor:
    """Which object each cell of a ``grid_size × grid_size`` grid shows: ``(N, g, g)`` long.

    A cell shows the object that covers most of it (its index in the scene), or ``-1`` where
    no object touches it.
    """
    check_int("grid_size", grid_size)
    if dataset.image_size % grid_size:
        raise ValueError(
            f"grid_size must divide image_size={dataset.image_size}, got {grid_size!r}"
        )
    cell = dataset.image_size // grid_size
    out = torch.full((len(dataset), grid_size, grid_size), -1, dtype=torch.long)
    for i in range(len(dataset)):
        best = torch.zeros(grid_size, grid_size)
        for k, obj in enumerate(dataset.scene(i).objects):
            inside = torch.from_numpy(signed_distance(obj, dataset.image_size) < 0).float()
            coverage = inside.view(grid_size, cell, grid_size, cell).mean(dim=(1, 3))
            wins = coverage > best
            out[i][wins] = k
            best = torch.maximum(best, coverage)
    return out


def _label_cells(
    dataset: ShapesWorld, objects: torch.Tensor, label_of, background: int
) -> torch.Tensor:
    out = torch.full_like(objects, background)
    for i in range(len(dataset)):
        for k, obj in enumerate(dataset.scene(i).objects):
            out[i][objects[i] == k] = label_of(obj)
    return out


def cell_labels(dataset: ShapesWorld, grid_size: int) -> torch.Tensor:
    """What each cell of a ``grid_size × grid_size`` grid shows: ``(N, grid_size, grid_size)`` long.

    A cell's label is the index in :data:`ALL_PAIRS` of the (colour, shape) pair
    that covers most of it, or :data:`BACKGROUND` where no object touches it —
    a dense, detector-like "what is where" target for pretraining a CNN.
    """
    objects = cell_objects(dataset, grid_size)
    return _label_cells(dataset, objects, lambda o: ALL_PAIRS.index((o.color, o.shape)), BACKGROUND)


def cell_attributes(dataset: ShapesWorld, grid_size: int) -> dict[str, torch.Tensor]:
    """Each cell's pair, colour, shape and size as four labellings: ``{"color": (N, g, g), ...}``.

    Labels index :data:`ALL_PAIRS`, :data:`COLORS`, :data:`SHAPES` and :data:`SIZES`;
    background is the last label of each (``len(COLORS)``…). Labelled apart, the attributes
    stay apart in a backbone pretrained on them (see :mod:`cmlib.backbone`).
    """
    objects = cell_objects(dataset, grid_size)
    return {
        "pair": _label_cells(
            dataset, objects, lambda o: ALL_PAIRS.index((o.color, o.shape)), BACKGROUND
        ),
        "color": _label_cells(dataset, objects, lambda o: COLORS.index(o.color), len(COLORS)),
        "shape": _label_cells(dataset, objects, lambda o: SHAPES.index(o.shape), len(SHAPES)),
        "size": _label_cells(dataset, objects, lambda o: SIZES.index(o.size), len(SIZES)),
    }


#: Labels per head of :func:`cell_attributes`, background included.
ATTRIBUTE_LABELS = {
    "pair": len(ALL_PAIRS) + 1,
    "color": len(COLORS) + 1,
    "shape": len(SHAPES) + 1,
    "size": len(SIZES) + 1,
}


def load_vqa(
    split: str = "train",
    num_images: int = 2000,
    image_size: int = 32,
    style: str = "photo",
    seed: int = 0,
    cache: bool = True,
) -> VQAData:
    """Images, questions and answers of a ShapesWorld split.

    Args:
        split: ``"train"``, ``"val"``, ``"test"`` or ``"heldout"``.
        num_images: images in the split; there are five questions per image.
        image_size: image height and width in pixels.
        style: ``"photo"``, ``"sketch"`` or ``"mixed"``.
        seed: the ShapesWorld seed (the same seed gives the same data).
        cache: keep the rendered images and the question table under ``data/cache``.

    Raises:
        ValueError: for an unknown split or style, or a non-positive ``num_images``.
    """
    check_int("num_images", num_images)
    dataset = ShapesWorld(
        split, size=num_images, image_size=image_size, style=style, num_objects=(1, 2), seed=seed
    )
    vocab = shapes_vocab()
    images, _ = dataset.tensors(cache=cache)
    key = f"vqa-v1-{split}-{num_images}-{style}-{seed}-{len(vocab)}"
    table = (
        cached_array(key, lambda: _question_table(dataset, vocab))
        if cache
        else _question_table(dataset, vocab)
    )
    table = torch.from_numpy(table)
    lengths = table[:, 3]
    width = int(lengths.max())
    return VQAData(
        images=images,
        image_index=table[:, 0].clone(),
        ids=table[:, _FIXED_COLUMNS : _FIXED_COLUMNS + width].clone(),
        lengths=lengths.clone(),
        answers=table[:, 1].clone(),
        kinds=table[:, 2].clone(),
        cells=cell_labels(dataset, grid_size=image_size // 8),
        vocab=vocab,
    )


def majority_rates(
    answers: torch.Tensor,
    kinds: torch.Tensor,
    train_answers: torch.Tensor | None = None,
    train_kinds: torch.Tensor | None = None,
) -> dict[str, float]:
    """How often guessing the most common answer is right.

    The guesses are the training majorities when ``train_answers``/``train_kinds``
    are given, else the majorities of ``answers`` itself.

    Returns:
        ``{"overall": ..., "per_kind": ...}``: ``overall`` always answers the single most
        common answer; ``per_kind`` answers the most common answer *of the question's kind*
        (a question-only model can at least tell the kind from the words).
    """
    if answers.shape != kinds.shape or answers.ndim != 1:
        raise ValueError(
            f"answers and kinds must be (Q,) of the same shape, got "
            f"{tuple(answers.shape)} and {tuple(kinds.shape)}"
        )
    ref_a = answers if train_answers is None else train_answers
    ref_k = kinds if train_kinds is None else train_kinds
    overall_guess = torch.bincount(ref_a, minlength=len(ANSWERS)).argmax()
    per_kind_guess = torch.stack(
        [
            torch.bincount(ref_a[ref_k == k], minlength=len(ANSWERS)).argmax()
            for k in range(len(QUESTION_KINDS))
        ]
    )
    return {
        "overall": (answers == overall_guess).float().mean().item(),
        "per_kind": (answers == per_kind_guess[kinds]).float().mean().item(),
    }


__all__ = [
    "ATTRIBUTE_LABELS",
    "BACKGROUND",
    "MAX_QUESTION_TOKENS",
    "VQAData",
    "cell_attributes",
    "cell_labels",
    "cell_objects",
    "load_vqa",
    "majority_rates",
]
