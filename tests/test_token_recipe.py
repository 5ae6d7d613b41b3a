"""cmlib.generation.token_recipe: chapter 05 part 4's token model, saved by part 4 and loaded by
part 5; and the sampling temperature it draws with."""

import random

import numpy as np
import pytest
import torch

from cmlib import runtime
from cmlib.generation.autoregressive import PromptPixelCNN, tempered_probabilities
from cmlib.generation.codebook import PatchCodebook
from cmlib.generation.token_recipe import (
    TokenPriorRecipe,
    load_or_train_token_prior,
    save_token_prior,
    token_prior_name,
    train_token_prior,
)

#: small enough to train in a second: 64 images, 16 codes, a 4×4 grid of 4×4 patches
TINY = TokenPriorRecipe(num_train=64, num_codes=16, patch=4, channels=8, depth=2, num_epochs=1)
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _registry(tmp_path, monkeypatch):
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CMLIB_REGISTRY_DIR", raising=False)
    monkeypatch.setenv("CMLIB_PROFILE", "cpu")


def _random_state():
    return torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def _same_state(a, b):
    return torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]


def _weights(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_profiles_and_grid():
    cpu, gpu = TokenPriorRecipe.for_profile("cpu"), TokenPriorRecipe.for_profile("gpu")
    assert cpu == TokenPriorRecipe() and cpu.grid == 8
    assert gpu.channels == 3 * cpu.channels and gpu.num_epochs == 3 * cpu.num_epochs
    with pytest.raises(ValueError, match="profile"):
        TokenPriorRecipe.for_profile("tpu")
    assert token_prior_name(3) == "ch05-token-prior-cpu-seed3"
    with pytest.raises(ValueError):
        token_prior_name(-1)


def test_a_fresh_machine_trains_part_fours_model_then_loads_it(tmp_path):
    # what part 4 does, by hand: data, codebook, seeded weights, training, then save
    images, _, prompt_fn = TINY.data(seed=1)
    book = TINY.fit_codebook(images, seed=1)
    tokens = book.encode(images).view(-1, TINY.grid, TINY.grid)
    runtime.seed_everything(1)
    prior, text = TINY.build()
    TINY.train(prior, text, tokens, prompt_fn, CPU, seed=1, progress=False)

    # part 5 on a machine where part 4 has not run trains the same model, and leaves the
    # caller's random state (one unlike the seed the model is trained with) as it was
    runtime.seed_everything(12345)
    state = _random_state()
    generator, text_encoder, status = load_or_train_token_prior(
        1, CPU, guidance=2.0, progress=False, recipe=TINY
    )
    assert status == "trained: missing"
    assert _same_state(state, _random_state())
    assert not generator.training and generator.guidance == 2.0
    assert torch.equal(generator.codebook.centres, book.centres)
    for name, value in _weights(prior).items():
        assert torch.equal(generator.prior.state_dict()[name], value), name
    for name, value in _weights(text).items():
        assert torch.equal(text_encoder.state_dict()[name], value), name

    # and the next call loads it, unchanged
    state = _random_state()
    again, _, status = load_or_train_token_prior(1, CPU, progress=False, recipe=TINY)
    assert status == "loaded"
    assert _same_state(state, _random_state())
    for name, value in _weights(generator.prior).items():
        assert torch.equal(again.prior.state_dict()[name], value), name
    images_out = again.sample_images(text_encoder(["a red circle"] * 2))
    assert images_out.shape == (2, 3, 16, 16)


def test_what_part_four_saves_is_what_part_five_loads():
    bundle, history = train_token_prior(TINY, seed=2, device=CPU, progress=False)
    assert len(history.train_loss) == TINY.num_epochs
    with torch.no_grad():  # mark the weights, so loading them cannot pass by chance
        bundle["prior"].head[-1].bias.fill_(0.25)
    save_token_prior(bundle["prior"], bundle["text"], bundle["codebook"], TINY, seed=2)
    generator, _, status = load_or_train_token_prior(2, CPU, progress=False, recipe=TINY)
    assert status == "loaded"
    assert torch.all(generator.prior.head[-1].bias == 0.25)


def test_save_rejects_what_is_not_part_fours_model():
    bundle, _ = train_token_prior(TINY, seed=0, device=CPU, progress=False)
    prior, text, book = bundle["prior"], bundle["text"], bundle["codebook"]
    with pytest.raises(TypeError, match="recipe"):
        save_token_prior(prior, text, book, {"num_codes": 16}, seed=0)
    with pytest.raises(TypeError, match="prior must be a PromptPixelCNN"):
        save_token_prior(torch.nn.Linear(2, 2), text, book, TINY, seed=0)
    other = PatchCodebook(torch.rand(8, 48), 3, 4)
    with pytest.raises(ValueError, match="16 codes"):
        save_token_prior(prior, text, other, TINY, seed=0)
    with pytest.raises(TypeError, match="recipe"):
        load_or_train_token_prior(0, CPU, recipe="tiny")
    assert isinstance(prior, PromptPixelCNN)


def test_tempered_probabilities():
    logits = torch.tensor([[1.0, 2.0, 4.0], [0.0, 0.0, 0.0]])
    assert torch.allclose(tempered_probabilities(logits, 1.0), torch.softmax(logits, -1))
    sharp, flat = tempered_probabilities(logits, 0.25), tempered_probabilities(logits, 4.0)
    assert torch.allclose(sharp.sum(-1), torch.ones(2))
    assert sharp[0, 2] > 0.99 > flat[0, 2]  # low temperature: nearly greedy
    assert torch.allclose(flat[1], torch.full((3,), 1 / 3))  # equal logits stay uniform
    with pytest.raises(ValueError, match="temperature"):
        tempered_probabilities(logits, 0.0)
    with pytest.raises(TypeError):
        tempered_probabilities(torch.tensor([1, 2]), 1.0)
