"""Tests for cmlib.generation.cvae and .decoders: the ELBO's parts, the CVAE, its training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cmlib.data.shapes.prompt_text import training_prompts
from cmlib.data.shapes.text import shapes_vocab
from cmlib.generation import prompts
from cmlib.generation.cvae import (
    CVAE,
    kl_divergence,
    reconstruction_loss,
    reparameterize,
    train_cvae,
)
from cmlib.generation.decoders import CoordinateDecoder

COND = 8


# ------------------------------------------------------------ CVAE
def test_kl_and_reparameterize():
    mu, logvar = torch.zeros(3, 4), torch.zeros(3, 4)
    assert torch.allclose(kl_divergence(mu, logvar), torch.zeros(3))
    assert kl_divergence(torch.ones(2, 4), torch.zeros(2, 4)).tolist() == [2.0, 2.0]
    torch.manual_seed(0)
    z = reparameterize(torch.full((20000, 1), 2.0), torch.full((20000, 1), np.log(9.0)))
    assert abs(z.mean().item() - 2.0) < 0.1 and abs(z.std().item() - 3.0) < 0.1


def test_cvae_shapes_and_bad_condition(shapes):
    x, _ = shapes
    model = CVAE(COND, latent_dim=4, image_size=32, width=8)
    logits, mu, logvar = model(x[:5], torch.randn(5, COND))
    assert logits.shape == (5, 3, 32, 32) and mu.shape == logvar.shape == (5, 4)
    model.eval()
    assert model.sample(torch.randn(3, COND)).shape == (3, 3, 32, 32)
    with pytest.raises(ValueError, match="condition"):
        model(x[:5], torch.randn(5, COND + 1))
    with pytest.raises(ValueError, match="one per image"):
        model(x[:5], torch.randn(4, COND))
    with pytest.raises(ValueError, match="power of two"):
        CVAE(COND, image_size=24)


def test_cvae_encoder_sees_where_the_object_is():
    """A shift by the trunk's stride leaves average-pooled features unchanged; q(z|x,c) must
    differ."""
    torch.manual_seed(0)
    model = CVAE(COND, latent_dim=4, image_size=64, width=8).eval()
    left, right = torch.zeros(2, 3, 64, 64), torch.zeros(2, 3, 64, 64)
    left[0, :, 28:32, 24:28] = 1.0
    right[0, :, 28:32, 32:36] = 1.0  # the same square, 8 pixels to the right, far from the borders
    with torch.no_grad():
        pooled = [model.encoder.feature_map(x)[0].mean(dim=(1, 2)) for x in (left, right)]
        assert torch.allclose(*pooled, atol=1e-6)  # pooling alone could not tell them apart
        c = torch.zeros(2, COND)
        mu_left, mu_right = model.encode(left, c)[0][0], model.encode(right, c)[0][0]
    assert (mu_left - mu_right).abs().max() > 1e-6  # exactly equal with pooled features


def test_kl_between_two_gaussians():
    torch.manual_seed(0)
    mu, logvar = torch.randn(3, 4), torch.randn(3, 4) * 0.3
    zeros = torch.zeros(3, 4)
    # with the prior N(0, I) given explicitly, it is the standard formula
    assert torch.allclose(kl_divergence(mu, logvar, zeros, zeros), kl_divergence(mu, logvar))
    assert torch.allclose(kl_divergence(mu, logvar, mu, logvar), torch.zeros(3), atol=1e-6)
    # one dimension, by hand: KL(N(1, 1) || N(0, 4)) = ½ (log 4 + (1 + 1) / 4 − 1)
    kl = kl_divergence(
        torch.ones(1, 1), torch.zeros(1, 1), torch.zeros(1, 1), torch.full((1, 1), np.log(4.0))
    )
    assert kl.item() == pytest.approx(0.5 * (np.log(4.0) + 0.5 - 1.0), abs=1e-6)
    with pytest.raises(ValueError, match="both"):
        kl_divergence(mu, logvar, zeros, None)
    with pytest.raises(ValueError, match="must match"):
        kl_divergence(mu, logvar, torch.zeros(3, 5), torch.zeros(3, 5))


def test_reconstruction_loss_likelihoods():
    x = torch.full((2, 3, 8, 8), 0.5)
    logits = torch.zeros(2, 3, 8, 8)  # sigmoid → 0.5: a perfect mean
    assert reconstruction_loss(x, logits, "gaussian", 0.1).item() == pytest.approx(0.0)
    wrong = torch.full((2, 3, 8, 8), 0.7)
    expected = 3 * 8 * 8 * 0.2**2 / (2 * 0.1**2)
    assert reconstruction_loss(wrong, logits, "gaussian", 0.1).item() == pytest.approx(
        expected, rel=1e-5
    )
    # on grey targets the Bernoulli punishes the same error far less than a sharp Gaussian
    assert reconstruction_loss(wrong, logits) - reconstruction_loss(x, logits) < expected / 10
    with pytest.raises(ValueError, match="likelihood"):
        reconstruction_loss(x, logits, "laplace")
    with pytest.raises(ValueError, match="sigma"):
        reconstruction_loss(x, logits, "gaussian", 0.0)


def test_coordinate_decoder_shapes_and_bad_input():
    dec = CoordinateDecoder(10, out_channels=3, image_size=16, width=8, depth=2)
    assert dec(torch.randn(4, 10)).shape == (4, 3, 16, 16)
    with pytest.raises(ValueError, match=r"code \(B, 10\)"):
        dec(torch.randn(4, 9))
    with pytest.raises(ValueError, match="width"):
        CoordinateDecoder(10, width=0)


def test_coordinate_decoder_can_move_a_blob_with_its_code():
    """The code enters every pixel's MLP, so the first unit can switch on at x > code[0]."""
    dec = CoordinateDecoder(1, out_channels=1, image_size=8, width=1, depth=1)
    with torch.no_grad():
        for p in dec.parameters():
            p.zero_()
        dec.from_coords.weight[0, 0] = 10.0  # ReLU(10 x − 10 code): on right of the code
        dec.from_code[0].weight[0, 0] = -10.0
        dec.hidden[0].weight.fill_(1.0)
        dec.to_image.weight.fill_(1.0)
        left, right = dec(torch.tensor([[-0.5]])), dec(torch.tensor([[0.5]]))
    assert (left > 0).sum() > (right > 0).sum() > 0


def test_cvae_learned_prior_and_temperature(shapes):
    x, _ = shapes
    torch.manual_seed(0)
    model = CVAE(
        COND, latent_dim=4, image_size=32, width=8, decoder="coordinate", learned_prior=True
    ).eval()
    logits, mu, logvar = model(x[:3], torch.randn(3, COND))
    assert logits.shape == (3, 3, 32, 32) and mu.shape == (3, 4)
    c = torch.randn(2, COND)
    prior_mu, prior_logvar = model.prior(c)
    assert prior_mu.shape == prior_logvar.shape == (2, 4) and prior_mu.abs().sum() > 0
    # at temperature 0 a sample is the decoded prior mean, whatever the noise
    a = model.sample(c, torch.randn(2, 4), temperature=0.0)
    b = model.sample(c, torch.randn(2, 4), temperature=0.0)
    assert torch.allclose(a, b)
    assert torch.allclose(a, torch.sigmoid(model.decode(prior_mu, c)))
    assert not torch.allclose(a, model.sample(c, torch.randn(2, 4), temperature=1.0))
    standard = CVAE(COND, latent_dim=4, image_size=32, width=8)
    assert all(t.abs().sum() == 0 for t in standard.prior(c))
    with pytest.raises(ValueError, match="temperature"):
        model.sample(c, temperature=-1.0)
    with pytest.raises(ValueError, match="decoder"):
        CVAE(COND, decoder="mlp")


def test_cvae_with_learned_prior_trains(shapes):
    x, attrs = shapes
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    enc = prompts.BagOfWordsEncoder(shapes_vocab(), COND)
    model = CVAE(
        COND, latent_dim=4, image_size=32, width=8, decoder="coordinate", learned_prior=True
    )
    before = [p.detach().clone() for p in model.prior_net.parameters()]
    hist = train_cvae(
        model,
        enc,
        x,
        lambda idx: training_prompts({k: v[idx] for k, v in attrs.items()}, rng),
        6,
        torch.device("cpu"),
        batch_size=16,
        lr=3e-3,
        likelihood="gaussian",
        sigma=0.1,
        progress=False,
    )
    assert np.mean(hist.steps["loss"][-4:]) < np.mean(hist.steps["loss"][:4])
    assert set(hist.steps) == {"loss", "recon", "kl"} and len(hist.train_loss) == 6
    assert any(not torch.equal(a, b) for a, b in zip(before, model.prior_net.parameters()))


def test_cvae_training_lowers_the_loss(shapes):
    x, attrs = shapes
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    enc = prompts.BagOfWordsEncoder(shapes_vocab(), COND)
    model = CVAE(COND, latent_dim=4, image_size=32, width=8)
    hist = train_cvae(
        model,
        enc,
        x,
        lambda idx: training_prompts({k: v[idx] for k, v in attrs.items()}, rng),
        6,
        torch.device("cpu"),
        batch_size=16,
        lr=3e-3,
        progress=False,
    )
    assert np.mean(hist.steps["loss"][-4:]) < np.mean(hist.steps["loss"][:4])


def test_coordinate_decoder_at_other_coordinates():
    dec = CoordinateDecoder(5, 3, image_size=8, width=8)
    code = torch.randn(2, 5)
    assert torch.equal(dec(code), dec(code, coords=dec.coords))
    shifted = dec(code, coords=dec.coords.expand(2, -1, -1) + 0.5)
    assert shifted.shape == (2, 3, 8, 8) and not torch.allclose(shifted, dec(code))
    with pytest.raises(ValueError, match="coords"):
        dec(code, coords=torch.zeros(2, 10, 2))


def test_the_prompt_cvae_recipe_builds_chapter_four_model_and_trains_with_its_settings(
    monkeypatch,
):
    from cmlib.generation import cvae as cvae_module
    from cmlib.generation.cvae import PromptCVAERecipe

    cpu, gpu = PromptCVAERecipe.for_profile("cpu"), PromptCVAERecipe.for_profile("gpu")
    assert (cpu.num_epochs, gpu.num_epochs) == (20, 40) and cpu.decoder == "coordinate"
    with pytest.raises(ValueError, match="profile"):
        PromptCVAERecipe.for_profile("tpu")
    model = PromptCVAERecipe(width=8).build()
    assert isinstance(model.decoder, CoordinateDecoder) and model.image_size == 16
    assert model.prior_net is not None  # the learned prior p(z|c)
    seen = {}
    monkeypatch.setattr(cvae_module, "train_cvae", lambda *a, **k: seen.update(args=a, kw=k))
    PromptCVAERecipe(width=8, lr=1e-3).train(model, None, "images", "prompts", "cpu", seed=4)
    assert seen["args"][4] == 20 and seen["kw"]["lr"] == 1e-3 and seen["kw"]["seed"] == 4
    assert seen["kw"]["likelihood"] == "gaussian" and seen["kw"]["sigma"] == 0.1
