"""Tests for cmlib.generative: CVAE, generation checks, judge, the article's CVAE listing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cmlib import gan, prompts
from cmlib import generative as gen
from cmlib.data.shapes import HELDOUT_PAIRS
from cmlib.data.shapes_text import shapes_vocab

COND = 8


# ------------------------------------------------------------ CVAE
def test_kl_and_reparameterize():
    mu, logvar = torch.zeros(3, 4), torch.zeros(3, 4)
    assert torch.allclose(gen.kl_divergence(mu, logvar), torch.zeros(3))
    assert gen.kl_divergence(torch.ones(2, 4), torch.zeros(2, 4)).tolist() == [2.0, 2.0]
    torch.manual_seed(0)
    z = gen.reparameterize(torch.full((20000, 1), 2.0), torch.full((20000, 1), np.log(9.0)))
    assert abs(z.mean().item() - 2.0) < 0.1 and abs(z.std().item() - 3.0) < 0.1


def test_cvae_shapes_and_bad_condition(shapes):
    x, _ = shapes
    model = gen.CVAE(COND, latent_dim=4, image_size=32, width=8)
    logits, mu, logvar = model(x[:5], torch.randn(5, COND))
    assert logits.shape == (5, 3, 32, 32) and mu.shape == logvar.shape == (5, 4)
    model.eval()
    assert model.sample(torch.randn(3, COND)).shape == (3, 3, 32, 32)
    with pytest.raises(ValueError, match="condition"):
        model(x[:5], torch.randn(5, COND + 1))
    with pytest.raises(ValueError, match="one per image"):
        model(x[:5], torch.randn(4, COND))
    with pytest.raises(ValueError, match="power of two"):
        gen.CVAE(COND, image_size=24)


def test_cvae_encoder_sees_where_the_object_is():
    """A shift by the trunk's stride leaves average-pooled features unchanged; q(z|x,c) must differ."""
    torch.manual_seed(0)
    model = gen.CVAE(COND, latent_dim=4, image_size=64, width=8).eval()
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
    assert torch.allclose(gen.kl_divergence(mu, logvar, zeros, zeros), gen.kl_divergence(mu, logvar))
    assert torch.allclose(gen.kl_divergence(mu, logvar, mu, logvar), torch.zeros(3), atol=1e-6)
    # one dimension, by hand: KL(N(1, 1) || N(0, 4)) = ½ (log 4 + (1 + 1) / 4 − 1)
    kl = gen.kl_divergence(torch.ones(1, 1), torch.zeros(1, 1), torch.zeros(1, 1),
                           torch.full((1, 1), np.log(4.0)))
    assert kl.item() == pytest.approx(0.5 * (np.log(4.0) + 0.5 - 1.0), abs=1e-6)
    with pytest.raises(ValueError, match="both"):
        gen.kl_divergence(mu, logvar, zeros, None)
    with pytest.raises(ValueError, match="must match"):
        gen.kl_divergence(mu, logvar, torch.zeros(3, 5), torch.zeros(3, 5))


def test_reconstruction_loss_likelihoods():
    x = torch.full((2, 3, 8, 8), 0.5)
    logits = torch.zeros(2, 3, 8, 8)  # sigmoid → 0.5: a perfect mean
    assert gen.reconstruction_loss(x, logits, "gaussian", 0.1).item() == pytest.approx(0.0)
    wrong = torch.full((2, 3, 8, 8), 0.7)
    expected = 3 * 8 * 8 * 0.2 ** 2 / (2 * 0.1 ** 2)
    assert gen.reconstruction_loss(wrong, logits, "gaussian", 0.1).item() == pytest.approx(expected, rel=1e-5)
    # on grey targets the Bernoulli punishes the same error far less than a sharp Gaussian
    assert gen.reconstruction_loss(wrong, logits) - gen.reconstruction_loss(x, logits) < expected / 10
    with pytest.raises(ValueError, match="likelihood"):
        gen.reconstruction_loss(x, logits, "laplace")
    with pytest.raises(ValueError, match="sigma"):
        gen.reconstruction_loss(x, logits, "gaussian", 0.0)


def test_coordinate_decoder_shapes_and_bad_input():
    dec = gen.CoordinateDecoder(10, out_channels=3, image_size=16, width=8, depth=2)
    assert dec(torch.randn(4, 10)).shape == (4, 3, 16, 16)
    with pytest.raises(ValueError, match=r"code \(B, 10\)"):
        dec(torch.randn(4, 9))
    with pytest.raises(ValueError, match="width"):
        gen.CoordinateDecoder(10, width=0)


def test_coordinate_decoder_can_move_a_blob_with_its_code():
    """The code enters every pixel's MLP, so the first unit can switch on at x > code[0]."""
    dec = gen.CoordinateDecoder(1, out_channels=1, image_size=8, width=1, depth=1)
    with torch.no_grad():
        for p in dec.parameters():
            p.zero_()
        dec.from_coords.weight[0, 0] = 10.0       # ReLU(10 x − 10 code): on right of the code
        dec.from_code[0].weight[0, 0] = -10.0
        dec.hidden[0].weight.fill_(1.0)
        dec.to_image.weight.fill_(1.0)
        left, right = dec(torch.tensor([[-0.5]])), dec(torch.tensor([[0.5]]))
    assert (left > 0).sum() > (right > 0).sum() > 0


def test_cvae_learned_prior_and_temperature(shapes):
    x, _ = shapes
    torch.manual_seed(0)
    model = gen.CVAE(COND, latent_dim=4, image_size=32, width=8, decoder="coordinate",
                     learned_prior=True).eval()
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
    standard = gen.CVAE(COND, latent_dim=4, image_size=32, width=8)
    assert all(t.abs().sum() == 0 for t in standard.prior(c))
    with pytest.raises(ValueError, match="temperature"):
        model.sample(c, temperature=-1.0)
    with pytest.raises(ValueError, match="decoder"):
        gen.CVAE(COND, decoder="mlp")


def test_cvae_with_learned_prior_trains(shapes):
    x, attrs = shapes
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    enc = prompts.BagOfWordsEncoder(shapes_vocab(), COND)
    model = gen.CVAE(COND, latent_dim=4, image_size=32, width=8, decoder="coordinate",
                     learned_prior=True)
    before = [p.detach().clone() for p in model.prior_net.parameters()]
    hist = gen.train_cvae(model, enc, x, lambda idx: prompts.training_prompts(
        {k: v[idx] for k, v in attrs.items()}, rng), 6, torch.device("cpu"), batch_size=16,
        lr=3e-3, likelihood="gaussian", sigma=0.1, progress=False)
    assert np.mean(hist["loss"][-4:]) < np.mean(hist["loss"][:4])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.prior_net.parameters()))


def test_cvae_training_lowers_the_loss(shapes):
    x, attrs = shapes
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    enc = prompts.BagOfWordsEncoder(shapes_vocab(), COND)
    model = gen.CVAE(COND, latent_dim=4, image_size=32, width=8)
    hist = gen.train_cvae(model, enc, x, lambda idx: prompts.training_prompts(
        {k: v[idx] for k, v in attrs.items()}, rng), 6, torch.device("cpu"), batch_size=16,
        lr=3e-3, progress=False)
    assert np.mean(hist["loss"][-4:]) < np.mean(hist["loss"][:4])


# ------------------------------------------------------------ generation: bad input
@pytest.mark.parametrize("kind", ["cvae", "gan"])
def test_generate_rejects_bad_input(kind):
    enc = prompts.BagOfWordsEncoder(shapes_vocab(), COND)
    model = gen.CVAE(COND, latent_dim=4, width=8) if kind == "cvae" else gan.Generator(COND, 6, width=8)
    out = gen.generate(model, enc, "a red circle", 3, seed=1)
    assert out.shape == (3, 3, 32, 32)
    assert torch.equal(out, gen.generate(model, enc, "a red circle", 3, seed=1))
    with pytest.raises(ValueError, match="empty"):
        gen.generate(model, enc, "   ", 3)
    with pytest.raises(ValueError, match="positive"):
        gen.generate(model, enc, "a red circle", 0)
    with pytest.raises(ValueError, match="positive"):
        gen.generate(model, enc, "a red circle", -2)
    with pytest.raises(ValueError, match="vocabulary"):
        gen.generate(model, enc, "xyzzy", 2)
    with pytest.raises(ValueError, match="size"):
        gen.generate_from_condition(model, torch.randn(COND + 3), 2)
    wrong_encoder = prompts.BagOfWordsEncoder(shapes_vocab(), COND + 1)
    with pytest.raises(ValueError, match="size"):
        gen.generate(model, wrong_encoder, "a red circle", 2)


# ------------------------------------------------------------ judge
def test_judge_and_fidelity(shapes):
    x, attrs = shapes
    judge = gen.AttributeJudge(width=8)
    losses = gen.train_judge(judge, x, attrs, 3, torch.device("cpu"), batch_size=16, progress=False)
    assert losses[-1] < losses[0]
    acc = gen.judge_accuracy(judge, x, attrs)
    assert set(acc) == {"color", "shape", "size", "position", "color+shape"}
    fid = gen.prompt_fidelity(judge, x[:8], "red", "circle", size="large")
    assert set(fid) == {"color", "shape", "color+shape", "size"}
    assert 0 <= fid["color+shape"] <= min(fid["color"], fid["shape"])


def test_chapter_data_helpers():
    x, a = gen.one_object_photos("heldout", 12, image_size=16, seed=3)
    assert x.shape == (12, 3, 16, 16) and (a["num_objects"] == 1).all()
    xt, at = gen.one_object_photos("train", 8, image_size=16, seed=3)
    xj, aj = gen.judge_training_set(xt, at, x, a, num_kept=5)
    assert len(xj) == 8 + 7 and torch.equal(xj[8:], x[5:]) and torch.equal(aj["shape"][8:], a["shape"][5:])
    with pytest.raises(ValueError, match="num_kept"):
        gen.judge_training_set(xt, at, x, a, num_kept=12)
    sampler = prompts.prompt_sampler(at, np.random.default_rng(0))
    first, second = sampler(torch.arange(8)), sampler(torch.arange(8))
    assert len(first) == 8 and first != second  # fresh wording at every call
    again = prompts.prompt_sampler(at, np.random.default_rng(0))(torch.arange(8))
    assert again == first


def test_coordinate_decoder_at_other_coordinates():
    dec = gen.CoordinateDecoder(5, 3, image_size=8, width=8)
    code = torch.randn(2, 5)
    assert torch.equal(dec(code), dec(code, coords=dec.coords))
    shifted = dec(code, coords=dec.coords.expand(2, -1, -1) + 0.5)
    assert shifted.shape == (2, 3, 8, 8) and not torch.allclose(shifted, dec(code))
    with pytest.raises(ValueError, match="coords"):
        dec(code, coords=torch.zeros(2, 10, 2))


def test_evaluation_prompts_and_fidelity_over(shapes):
    sets = prompts.evaluation_prompts(seed=0)
    assert [len(sets[k]) for k in ("seen", "seen, full", "held-out", "paraphrase")] == [15, 75, 3, 36]
    assert all(p[3] is not None and p[4] is not None for p in sets["seen, full"])
    assert {(c, s) for _, c, s, _, _ in sets["held-out"]} == set(HELDOUT_PAIRS)
    x, attrs = shapes
    judge = gen.AttributeJudge(image_size=32, width=4)
    enc = prompts.BagOfWordsEncoder(shapes_vocab(), COND)
    model = gen.CVAE(COND, latent_dim=4, width=8)
    scores = gen.fidelity_over(judge, model, enc, sets["seen, full"][:2], n=3)
    assert set(scores) == {"color", "shape", "color+shape", "size", "position"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    with pytest.raises(ValueError, match="at least one"):
        gen.fidelity_over(judge, model, enc, [], n=3)


def test_real_diversity():
    images = torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    attrs = {"color": torch.tensor([0, 0, 0, 1, 1]), "shape": torch.tensor([2, 2, 1, 2, 2])}
    color, shape = gen.COLORS[0], gen.SHAPES[2]
    assert gen.real_diversity(images, attrs, color, shape) == gen.diversity(images[:2])
    assert gen.real_diversity(images, attrs, gen.COLORS[1], shape, n=2) == gen.diversity(images[3:])
    with pytest.raises(ValueError, match="fewer than two"):
        gen.real_diversity(images, attrs, color, gen.SHAPES[1])


def test_diversity():
    same = torch.zeros(5, 3, 8, 8)
    assert gen.diversity(same) == 0.0
    assert gen.diversity(torch.rand(5, 3, 8, 8)) > 0.1
    with pytest.raises(ValueError):
        gen.diversity(torch.rand(1, 3, 8, 8))


# ------------------------------------------------------------ errata: the article's listings
def test_article_cvae_errata():
    vis_dim, lang_dim = 48, 8
    model = gen.ArticleCVAE(vis_dim, lang_dim)
    text, x = torch.randn(3, lang_dim), torch.randn(3, vis_dim)
    with pytest.raises(AttributeError, match="embed"):
        model(text, x)
    model.embed = nn.Identity()
    recon, z = model(text, x)
    assert z.shape == (3, 2)                         # no mean/log-variance split
    assert torch.equal(z, model(text, x)[1])         # no sampling
    assert model.decoder[0].in_features == 2         # the decoder never sees the prompt


# ------------------------------------------------------------ the prompt widget
def test_prompt_widget_grid_and_bad_prompts(capsys):
    from cmlib.widgets_generative import draw_prompt_grid, prompt_explorer, sample_grid

    enc = prompts.BagOfWordsEncoder(shapes_vocab(), COND)
    model = gen.CVAE(COND, latent_dim=4, image_size=16, width=8)
    fig = sample_grid(model, enc, ["a red circle", "a blue square"], "grid", n=3, temperature=0.5)
    assert len(fig.axes) == 6
    models = {"CVAE": (model, enc)}
    with pytest.raises(ValueError, match="unknown model"):
        draw_prompt_grid(models, "a red circle", "GAN")
    with pytest.raises(ValueError, match="at least one model"):
        prompt_explorer({})
    ui = prompt_explorer(models, prompt="a red circle", n=2)
    if ui is not None:  # with ipywidgets: a bad prompt prints a message, never a traceback
        ui.widget.children[0].value = "xyzzy"
        ui.widget.children[0].value = "   "
        out = capsys.readouterr().out
        assert "vocabulary" in out and "Type a prompt" in out
