"""Tests for cmlib.generative: images from a prompt, and the checks on what comes in."""

from __future__ import annotations

import pytest
import torch

from cmlib import gan, prompts
from cmlib.cvae import CVAE
from cmlib.data.shapes.text import shapes_vocab
from cmlib.generative import generate, generate_from_condition

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


@pytest.mark.parametrize("name", ["ch04_cvae.pt", "ch04_cgan.pt"])
def test_load_saved_generator_rebuilds_what_chapter_04_saved(tmp_path, name):
    from torch import nn

    from cmlib.checkpoint import CheckpointError, save_checkpoint
    from cmlib.generative import SAVED_GENERATORS, load_saved_generator

    torch.manual_seed(0)
    vocab = shapes_vocab()
    what, key = SAVED_GENERATORS[name]
    if key == "cvae":
        config = {"cond_dim": 8, "latent_dim": 4, "image_size": 16, "width": 8}
        model = CVAE(**config)
    else:
        config = {"cond_dim": 8, "noise_dim": 4, "image_size": 16, "width": 8}
        model = gan.GlyphGenerator(**config)
    text = prompts.BagOfWordsEncoder(vocab, 8)
    path = save_checkpoint(
        tmp_path / name, nn.ModuleDict({key: model, "text": text}), what, config=config
    )
    loaded, loaded_text = load_saved_generator(path, vocab)
    expected = generate(model, text, "a red circle", 3, seed=2)
    assert torch.equal(generate(loaded, loaded_text, "a red circle", 3, seed=2), expected)
    with pytest.raises(ValueError, match="ch04_cvae.pt"):
        load_saved_generator(tmp_path / "other.pt", vocab)
    with pytest.raises(FileNotFoundError):
        load_saved_generator(tmp_path / "missing" / name, vocab)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_saved_generator(path, vocab)
