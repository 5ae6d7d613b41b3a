"""ShapesWorld captioning data for chapter 05: images, every reference caption, and the forms.

:func:`load_captioning` renders a split (one- and two-object scenes) and tokenises, for every
image, its five reference captions (:meth:`ShapesWorld.captions`), its *brief* form ("a red
circle", "a red circle and a blue square") and its *detailed* form (the canonical caption).
:data:`STYLE_PROMPTS` are the prompts that ask for a form: no prompt (any reference caption),
``"briefly"`` and ``"in detail"``.

Token sequences are ``<bos> w1 … wn <eos>``, padded with ``<pad>``; the vocabulary is
:func:`caption_vocab`, ShapesWorld's words plus ``and``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from ...text import Vocab
from ...validate import check_choice, check_int
from .dataset import ShapesWorld
from .parse import BRIEF_ONE, BRIEF_TWO
from .text import SHAPE_WORDS, SIZE_WORDS, a_an, canonical_caption, shapes_vocab
from .vqa import cell_attributes
from .world import COLORS, Scene

#: The style prompts of chapter 05 and what each asks for.
STYLE_PROMPTS = ("", "briefly", "in detail")
#: Tokens a caption may have, ``<bos>`` and ``<eos>`` included.
MAX_CAPTION_TOKENS = 20


@lru_cache(maxsize=1)
def caption_vocab() -> Vocab:
    """ShapesWorld's vocabulary plus ``and`` (for the brief form of two-object scenes)."""
    return Vocab([*shapes_vocab().itos[4:], "and"])


def content_slots() -> dict[str, list[str]]:
    """The words that name what is in the image, by kind: colours, shapes, sizes (synonyms too).

    What :class:`cmlib.captioning.models.SlotCaptioner` takes from the image alone.
    """
    return {
        "color": list(COLORS),
        "shape": [w for words in SHAPE_WORDS.values() for w in words],
        "size": [w for words in SIZE_WORDS.values() for w in words],
    }


def brief_caption(scene: Scene) -> str:
    """Colours and shapes only: "a red circle", "a red circle and a blue square"."""
    objects = scene.objects
    if len(objects) == 1:
        return a_an(BRIEF_ONE.format(color=objects[0].color, shape=objects[0].shape))
    a, b = objects
    return a_an(BRIEF_TWO.format(color1=a.color, shape1=a.shape, color2=b.color, shape2=b.shape))


def style_index(prompt: str) -> int:
    """The index of a style prompt in :data:`STYLE_PROMPTS`.

    Raises:
        ValueError: for any other prompt.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"a style prompt must be a string, got {type(prompt).__name__}")
    cleaned = " ".join(prompt.lower().split())
    check_choice("style prompt", cleaned, STYLE_PROMPTS)
    return STYLE_PROMPTS.index(cleaned)


@dataclass
class CaptionData:
    """One split of captioning data.

    Attributes:
        images: ``(N, 3, S, S)`` images in [0, 1].
        scenes: the N scenes (what is really there).
        references: N lists of the five reference captions.
        ids: ``(N, 5, T)`` their tokens, ``<bos> … <eos>`` padded.
        brief_ids, detailed_ids: ``(N, T)`` the brief and the detailed form.
        vocab: the vocabulary of the ids.
        cells: each cell's colour, shape and size, ``{"color": (N, S/8, S/8), …}``
            (:func:`~.vqa.cell_attributes`), to pretrain the image encoder on.
    """

    images: torch.Tensor
    scenes: list[Scene]
    references: list[list[str]]
    ids: torch.Tensor
    brief_ids: torch.Tensor
    detailed_ids: torch.Tensor
    vocab: Vocab
    cells: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return len(self.scenes)

    def targets(
        self, rows: torch.Tensor, style: torch.Tensor, variant: torch.Tensor
    ) -> torch.Tensor:
        """The token sequences images ``rows`` should produce: ``(B, T)``, all inputs ``(B,)``.

        Style 0 (no prompt) takes reference ``variant``; 1 the brief form; 2 the detailed one.
        """
        choice = self.ids[rows, variant]
        choice = torch.where((style == 1)[:, None], self.brief_ids[rows], choice)
        return torch.where((style == 2)[:, None], self.detailed_ids[rows], choice)


def _encode(vocab: Vocab, texts: list[str]) -> torch.Tensor:
    ids, _ = vocab.encode_batch(texts, add_bos_eos=True, max_len=MAX_CAPTION_TOKENS)
    if ids.shape[1] < MAX_CAPTION_TOKENS:
        ids = torch.nn.functional.pad(
            ids, (0, MAX_CAPTION_TOKENS - ids.shape[1]), value=vocab.pad_id
        )
    return ids


def load_captioning(
    split: str = "train",
    num_images: int = 4000,
    image_size: int = 32,
    num_objects: int | tuple[int, ...] = (1, 2),
    style: str = "photo",
    seed: int = 0,
) -> CaptionData:
    """Images, scenes and every caption form of a ShapesWorld split (images cached on disk).

    Args:
        split: ``"train"``, ``"val"``, ``"test"`` or ``"heldout"``.
        num_images: images (half one-object, half two-object with ``num_objects=(1, 2)``).
        image_size: height and width in pixels.
        num_objects: 1, 2 or ``(1, 2)``.
        style: ``"photo"``, ``"sketch"`` or ``"mixed"``.
        seed: the ShapesWorld seed.
    """
    check_int("num_images", num_images)
    dataset = ShapesWorld(
        split,
        size=num_images,
        image_size=image_size,
        style=style,
        num_objects=num_objects,
        seed=seed,
    )
    images, _ = dataset.tensors()
    vocab = caption_vocab()
    scenes = [dataset.scene(i) for i in range(num_images)]
    references = [dataset.captions(i) for i in range(num_images)]
    flat = [c for group in references for c in group]
    ids = _encode(vocab, flat).view(num_images, len(references[0]), MAX_CAPTION_TOKENS)
    return CaptionData(
        images,
        scenes,
        references,
        ids,
        _encode(vocab, [brief_caption(s) for s in scenes]),
        _encode(vocab, [canonical_caption(s) for s in scenes]),
        vocab,
        cell_attributes(dataset, grid_size=image_size // 8),
    )
