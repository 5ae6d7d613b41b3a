"""Reasoning questions about multi-object scenes as a torch ``Dataset``, rendered on the fly.

``ReasoningDataset(split, size)[i]`` is ``(image, question ids, answer id, family id)``, and
``.item(i)`` the whole record: scene, scene graph, question text, program, answer and family.
Item ``i`` is a pure function of ``(seed, split, i)`` and the dataset's arguments: its question
and scene come from one generator seeded by :func:`~cmlib.data.shapes.world.item_seeds`
(stream 2), its look from :func:`~cmlib.data.shapes.world.item_uniforms` (stream 3).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ...validate import check_choice, check_int
from ..shapes.render import Paint, check_image_size, render_batch
from ..shapes.world import STYLES, Scene, choose, item_seeds, item_uniforms
from .families import FAMILIES
from .programs import Node
from .questions import (
    ANSWERS,
    MAX_QUESTION_TOKENS,
    check_families,
    encode_question,
    generate_from,
    make_context,
    question_vocab,
)
from .scenes import DEFAULT_NUM_OBJECTS, PAINT_UNIFORMS, scene_paint

#: The splits: each is its own stream of items (CoGenT and held-out families are arguments).
SPLITS = ("train", "val", "test")
_QUESTION_STREAM, _LOOK_STREAM = 2, 3  # ShapesWorld uses streams 0 and 1


def encode_items(items: Sequence) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Items' questions, answers and families as ids, without rendering their images.

    Args:
        items: anything with ``.question``, ``.answer`` and ``.family`` (a
            :class:`ReasoningItem`, a :class:`~.questions.Question`).

    Shapes:
        returns ``questions (N, T)`` int64 (:func:`~.questions.encode_question`), ``answers
        (N,)`` into :data:`~.questions.ANSWERS` and ``families (N,)`` into
        :data:`~.families.FAMILIES`.
    """
    items = list(items)
    if not items:
        raise ValueError("encode_items needs at least one item, got none")
    return (
        torch.stack([encode_question(i.question) for i in items]),
        torch.tensor([ANSWERS.index(i.answer) for i in items]),
        torch.tensor([FAMILIES.index(i.family) for i in items]),
    )


@dataclass(frozen=True)
class ReasoningItem:
    """One item, everything about it: what ``__getitem__`` encodes, in readable form."""

    index: int
    scene: Scene
    graph: dict
    question: str
    program: tuple[Node, ...]
    answer: str
    family: str
    paint: Paint


class ReasoningDataset(Dataset):
    """CLEVR-style questions about ShapesWorld scenes of several objects.

    Each item is ``(image, question, answer, family)``: a float tensor ``(3, S, S)`` in [0, 1],
    the question's token ids (:func:`~.questions.encode_question`, padded with 0 to
    :data:`~.questions.MAX_QUESTION_TOKENS`), the answer's index in
    :data:`~.questions.ANSWERS` and the family's index in :data:`~.families.FAMILIES`.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: number of items.
        seed: with ``split`` and the index, fixes each item.
        image_size: height and width in pixels (48 by default; 32 and 64 work too).
        style: ``"photo"``, ``"sketch"`` or ``"mixed"`` (each item picks one).
        num_objects: an int or the ``(low, high)`` range of objects per scene (2..8); a test
            set with more objects than training probes counting beyond what was seen.
        families: the question families to draw from (default: all); leave one out of
            training for a CLOSURE-style test.
        condition: ``None``, ``"A"`` or ``"B"``: the CoGenT colour–shape constraint.

    Raises:
        TypeError, ValueError: for an invalid argument.
    """

    def __init__(
        self,
        split: str,
        size: int,
        seed: int = 0,
        image_size: int = 48,
        style: str = "photo",
        num_objects=DEFAULT_NUM_OBJECTS,
        families=None,
        condition: str | None = None,
    ):
        check_choice("split", split, SPLITS)
        check_int("size", size)
        check_int("seed", seed, minimum=0)
        check_image_size(image_size)
        check_choice("style", style, STYLES + ("mixed",))
        self.context = make_context(num_objects, condition)
        self.families = check_families(families)
        self.split, self.size, self.seed = split, int(size), int(seed)
        self.image_size, self.style, self.condition = image_size, style, condition
        self.num_objects = (self.context.low, self.context.high)
        self.vocab = question_vocab()

    def __len__(self) -> int:
        return self.size

    def _index(self, index) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not -self.size <= index < self.size:
            raise IndexError(f"index {index} out of range for a dataset of {self.size}")
        return int(index) % self.size

    def items(self, indices: Sequence[int]) -> list[ReasoningItem]:
        """:meth:`item` for many indices, with their random numbers drawn in one call."""
        indices = [self._index(i) for i in indices]
        if not indices:
            return []
        seeds = item_seeds(self.seed, self.split, indices, stream=_QUESTION_STREAM)
        looks = item_uniforms(self.seed, self.split, indices, 1 + PAINT_UNIFORMS, _LOOK_STREAM)
        out = []
        for index, item_seed, u in zip(indices, seeds, looks.tolist()):
            style = self.style if self.style != "mixed" else choose(STYLES, u[0])
            scene, graph, q = generate_from(
                random.Random(item_seed), self.context, self.families, style
            )
            paint = scene_paint(u[1:], scene)
            out.append(
                ReasoningItem(index, scene, graph, q.text, q.program, q.answer, q.family, paint)
            )
        return out

    def item(self, index: int) -> ReasoningItem:
        """Item ``index`` in full: scene, scene graph, question, program, answer and family."""
        return self.items([index])[0]

    def _encode(self, item: ReasoningItem, image: np.ndarray):
        return (
            torch.from_numpy(image).permute(2, 0, 1),
            encode_question(item.question),
            ANSWERS.index(item.answer),
            FAMILIES.index(item.family),
        )

    def images(self, items: Sequence[ReasoningItem]) -> np.ndarray:
        """The items' images, rendered in one vectorised call: ``(N, S, S, 3)`` float32."""
        return render_batch([i.scene for i in items], [i.paint for i in items], self.image_size)

    def __getitem__(self, index: int):
        """Item ``index`` as ``(image, question ids, answer id, family id)``.

        Shapes:
            image ``(3, S, S)`` float32 in [0, 1]; question ids ``(T,)`` int64, ``T =``
            :data:`~.questions.MAX_QUESTION_TOKENS`, 0 after the last word; the ids are ints.
        """
        item = self.item(index)
        return self._encode(item, self.images([item])[0])

    def __getitems__(self, indices: Sequence[int]) -> list:
        """Many items at once, rendered in one batch (what a ``DataLoader`` calls)."""
        items = self.items(indices)
        if not items:
            return []
        return [self._encode(i, image) for i, image in zip(items, self.images(items))]

    def tensors(self, batch_size: int = 512) -> tuple[torch.Tensor, ...]:
        """The whole dataset at once, rendered in vectorised batches.

        Shapes:
            returns ``images (N, 3, S, S)`` float32 in [0, 1], ``questions (N, T)`` int64 with
            ``T =`` :data:`~.questions.MAX_QUESTION_TOKENS`, ``answers (N,)`` and
            ``families (N,)`` int64.
        """
        check_int("batch_size", batch_size)
        n, s = self.size, self.image_size
        images = torch.empty(n, 3, s, s)
        questions = torch.zeros(n, MAX_QUESTION_TOKENS, dtype=torch.long)
        answers = torch.empty(n, dtype=torch.long)
        families = torch.empty(n, dtype=torch.long)
        for start in range(0, n, batch_size):
            items = self.items(range(start, min(start + batch_size, n)))
            rows = slice(start, start + len(items))
            images[rows] = torch.from_numpy(self.images(items)).permute(0, 3, 1, 2)
            questions[rows], answers[rows], families[rows] = encode_items(items)
        return images, questions, answers, families

    def decode_question(self, ids: torch.Tensor) -> str:
        """The words of a row of question ids (padding dropped)."""
        return self.vocab.decode(ids.tolist())
