"""Tests for cmlib.generation.generative: images from a prompt, and the checks on what comes in."""

from __future__ import annotations

import pytest
import torch

from cmlib.data.shapes.text import shapes_vocab
from cmlib.generation import gan, prompts
from cmlib.generation.cvae import CVAE
from cmlib.generation.generative import generate, generate_from_condition

COND = 8


# ------------------------------------------------------------ generation: bad input
@pytest.mark.parametrize("kind", ["cvae", "gan"])
def test_generate_rejects_bad_input(kind):
    enc = prompts.BagOfWordsEncoder(shapes_vocab(), COND)
    model = CVAE(COND, latent_dim=4, width=8) if kind == "cvae" else gan.Generator(COND, 6, width=8)
    out = generate(model, enc, "a red circle", 3, seed=1)
    assert out.shape == (3, 3, 32, 32)
    assert torch.equal(out, generate(model, enc, "a red circle", 3, seed=1))
    with pytest.raises(ValueError, match="empty"):
        generate(model, enc, "   ", 3)
    with pytest.raises(ValueError, match="number of samples n must be an int >= 1"):
        generate(model, enc, "a red circle", 0)
    with pytest.raises(ValueError, match="number of samples n must be an int >= 1"):
        generate(model, enc, "a red circle", -2)
    with pytest.raises(ValueError, match="vocabulary"):
        generate(model, enc, "xyzzy", 2)
    with pytest.raises(ValueError, match="size"):
        generate_from_condition(model, torch.randn(COND + 3), 2)
    wrong_encoder = prompts.BagOfWordsEncoder(shapes_vocab(), COND + 1)
    with pytest.raises(ValueError, match="size"):
        generate(model, wrong_encoder, "a red circle", 2)


def test_part_three_cgan_goes_through_the_registry_and_back(tmp_path, monkeypatch):
    from cmlib import registry
    from cmlib.checkpoint import CheckpointError
    from cmlib.generation.generative import cgan_name, load_cgan, save_cgan

    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CMLIB_PROFILE", "cpu")
    torch.manual_seed(0)
    vocab = shapes_vocab()
    generator = gan.GlyphGenerator(8, noise_dim=4, image_size=16, width=8, depth=1)
    text = prompts.BagOfWordsEncoder(vocab, 8)
    with pytest.raises(FileNotFoundError):
        load_cgan(3, vocab)
    entry = save_cgan(generator, text, 3, recipe={"steps": 2}, metrics={"seen": 0.5})
    assert entry.name == cgan_name(3) == "ch04-cgan-cpu-seed3"
    assert entry.config["architecture"]["width"] == 8 and entry.config["recipe"] == {"steps": 2}
    loaded, loaded_text = load_cgan(3, vocab)
    assert not loaded.training and loaded.depth == 1
    expected = generate(generator, text, "a red circle", 3, seed=2)
    assert torch.equal(generate(loaded, loaded_text, "a red circle", 3, seed=2), expected)
    with pytest.raises(TypeError, match="GlyphGenerator"):
        save_cgan(text, text, 3, recipe={})
    with pytest.raises(TypeError, match="recipe"):
        save_cgan(generator, text, 3, recipe=None)
    # an entry written by other code is stale, a torn one corrupt: neither loads silently
    monkeypatch.setattr("cmlib.generation.generative._cgan_code", lambda: [gan])
    with pytest.raises(registry.StaleModelError):
        load_cgan(3, vocab)
    monkeypatch.undo()
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CMLIB_PROFILE", "cpu")
    entry.path.write_bytes(entry.path.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        load_cgan(3, vocab)
