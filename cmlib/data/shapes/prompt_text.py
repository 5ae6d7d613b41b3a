"""ShapesWorld prompts: the text that asks a generator for an image.

:func:`make_prompt` writes a prompt ("a small red circle on the left");
:func:`training_prompts` writes one per image, with synonyms and with the size and position
words left out at random, so that a short prompt such as "a red circle" is a normal input;
:func:`evaluation_prompts` gives the prompt sets chapter 04 is scored on, and
:func:`all_prompts` every canonical prompt. The paraphrases (:data:`COLOR_PARAPHRASES`,
:data:`SHAPE_PARAPHRASES`) use words ShapesWorld never does, on purpose.

The encoders that turn prompts into condition vectors are in :mod:`cmlib.generation.prompts`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from .text import POSITION_WORDS, SHAPE_WORDS, SIZE_WORDS, a_an
from .world import COLORS, HELDOUT_PAIRS, POSITIONS, SEEN_PAIRS, SHAPES, SIZES

#: Colour and shape words that ShapesWorld never uses: paraphrases for the MiniLM encoder.
COLOR_PARAPHRASES = {
    "red": ("crimson", "scarlet"),
    "green": ("emerald", "lime"),
    "blue": ("navy", "azure"),
    "yellow": ("golden", "lemon"),
    "purple": ("violet", "lavender"),
    "orange": ("amber", "tangerine"),
}
SHAPE_PARAPHRASES = {
    "circle": ("disc", "round dot"),
    "square": ("tile", "block"),
    "triangle": ("pyramid", "triangular shape"),
}


def make_prompt(
    color: str,
    shape: str,
    size: str | None = None,
    position: str | None = None,
    rng: np.random.Generator | None = None,
) -> str:
    """A content prompt ("a red circle"), with size and position words when given.

    Args:
        color: one of :data:`COLORS`.
        shape: one of :data:`SHAPES`.
        size: ``None`` or one of :data:`SIZES`.
        position: ``None`` or one of :data:`POSITIONS` (a context prompt).
        rng: pick synonyms at random ("ball", "little", "to the left"); ``None`` uses the canonical
            words.
    """
    for name, value, valid in (("color", color, COLORS), ("shape", shape, SHAPES)):
        if value not in valid:
            raise ValueError(f"unknown {name} {value!r}; valid values are {valid}")
    if size is not None and size not in SIZES:
        raise ValueError(f"unknown size {size!r}; valid values are {SIZES} or None")
    if position is not None and position not in POSITIONS:
        raise ValueError(f"unknown position {position!r}; valid values are {POSITIONS} or None")

    def word(options: tuple[str, ...]) -> str:
        return options[0] if rng is None else options[rng.integers(len(options))]

    words = ["a"] + ([word(SIZE_WORDS[size])] if size else []) + [color, word(SHAPE_WORDS[shape])]
    if position:
        words.append(word(POSITION_WORDS[position]))
    return a_an(" ".join(words))


def training_prompts(
    attrs: dict[str, torch.Tensor],
    rng: np.random.Generator,
    p_size: float = 0.5,
    p_position: float = 0.5,
) -> list[str]:
    """One random prompt per image, naming its colour and shape, and sometimes its size and
    position.

    Args:
        attrs: ShapesWorld attribute tensors with keys ``color``, ``shape``, ``size``, ``position``.
        rng: picks synonyms and which words to say.
        p_size: the chance a prompt names the size.
        p_position: the chance a prompt names the position.
    """
    missing = {"color", "shape", "size", "position"} - set(attrs)
    if missing:
        raise ValueError(f"attrs lacks {sorted(missing)}")
    n = len(attrs["color"])
    say_size, say_position = rng.random(n) < p_size, rng.random(n) < p_position
    return [
        make_prompt(
            COLORS[int(attrs["color"][i])],
            SHAPES[int(attrs["shape"][i])],
            SIZES[int(attrs["size"][i])] if say_size[i] else None,
            POSITIONS[int(attrs["position"][i])] if say_position[i] else None,
            rng,
        )
        for i in range(n)
    ]


def prompt_sampler(
    attrs: dict[str, torch.Tensor], rng: np.random.Generator
) -> Callable[[torch.Tensor], list[str]]:
    """``indices (B,) -> B prompts``: fresh :func:`training_prompts` for those images at every
    call."""

    def prompts_for(idx: torch.Tensor) -> list[str]:
        return training_prompts({k: v[idx] for k, v in attrs.items()}, rng)

    return prompts_for


def pair_prompt_sampler(
    rng: np.random.Generator, pairs: Sequence[tuple[str, str]] | None = None
) -> Callable[[int], tuple[list[str], dict[str, torch.Tensor]]]:
    """``n -> (n prompts, their labels)``: "a red circle" for pairs drawn uniformly from
    ``pairs``, with synonyms, and the ``color`` and ``shape`` class ids each names.

    With the default, every colour–shape pair the vocabulary can name, the three
    :data:`HELDOUT_PAIRS` no image shows included: what a generator is asked to draw when its
    teacher is a pair of attribute classifiers rather than images
    (``cmlib.generation.gan_training.train_cgan``'s ``composed_prompts``).
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    pairs = tuple(SEEN_PAIRS + HELDOUT_PAIRS) if pairs is None else tuple(pairs)
    unknown = [p for p in pairs if p[0] not in COLORS or p[1] not in SHAPES]
    if not pairs or unknown:
        raise ValueError(
            f"pairs must be (colour, shape) pairs of ShapesWorld, got {unknown or pairs}"
        )

    def draw(n: int) -> tuple[list[str], dict[str, torch.Tensor]]:
        picks = [pairs[k] for k in rng.integers(len(pairs), size=n)]
        labels = {
            "color": torch.tensor([COLORS.index(c) for c, _ in picks]),
            "shape": torch.tensor([SHAPES.index(s) for _, s in picks]),
        }
        return [make_prompt(c, s, rng=rng) for c, s in picks], labels

    return draw


def paraphrase_prompts(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Prompts with words ShapesWorld never uses: ``(prompt, colour, shape)`` for each pair and
    synonym.

    Each pair gets two prompts: (1st colour synonym, 1st shape synonym) and (2nd, 2nd).
    """
    out = []
    for color, shape in pairs:
        for k in range(2):
            out.append(
                (
                    a_an(f"a {COLOR_PARAPHRASES[color][k]} {SHAPE_PARAPHRASES[shape][k]}"),
                    color,
                    shape,
                )
            )
    return out


def alignment_prompts(repeats: int = 4) -> list[str]:
    """Prompts of the seen pairs, with and without size and position, in varied wording (a few
    hundred).

    What a :class:`SentencePromptEncoder`'s head is fitted on (``repeats`` wordings per
    combination).
    """
    return sorted(
        {
            make_prompt(c, s, size, position, rng=np.random.default_rng(k))
            for k, (c, s) in enumerate(SEEN_PAIRS * repeats)
            for size in (None, *SIZES)
            for position in (None, *POSITIONS)
        }
    )


def all_prompts() -> list[str]:
    """Every canonical prompt: each of the 18 colour–shape pairs, with and without size and position
    (324).

    Only words a ShapesWorld prompt encoder knows; the held-out pairs are included, since their
    *words*
    are known (only their images are held out). The keys of a :class:`NearestPromptEncoder`.
    """
    return [
        make_prompt(c, s, size, position)
        for c in COLORS
        for s in SHAPES
        for size in (None, *SIZES)
        for position in (None, *POSITIONS)
    ]


#: One evaluation prompt: (text, colour, shape, size or None, position or None).
EvalPrompt = tuple[str, str, str, "str | None", "str | None"]


def evaluation_prompts(seed: int = 0) -> dict[str, list[EvalPrompt]]:
    """The four prompt sets of chapter 04.

    * ``seen`` — "a red circle" for the 15 colour–shape pairs of training;
    * ``seen, full`` — each seen pair at each position with a random size ("a large red circle
      on the left"), also scored on size and position;
    * ``held-out`` — the 3 pairs no generator saw ("a red triangle"): compositional generalisation;
    * ``paraphrase`` — words ShapesWorld never uses ("a crimson disc"), for all 18 pairs.
    """
    rng = np.random.default_rng(seed)
    full = []
    for color, shape in SEEN_PAIRS:
        for position in POSITIONS:
            size = SIZES[rng.integers(len(SIZES))]
            full.append((make_prompt(color, shape, size, position), color, shape, size, position))
    return {
        "seen": [(make_prompt(c, s), c, s, None, None) for c, s in SEEN_PAIRS],
        "seen, full": full,
        "held-out": [(make_prompt(c, s), c, s, None, None) for c, s in HELDOUT_PAIRS],
        "paraphrase": [
            (p, c, s, None, None) for p, c, s in paraphrase_prompts(SEEN_PAIRS + HELDOUT_PAIRS)
        ],
    }
