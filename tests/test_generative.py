"""Tests for cmlib.generative: prompt encoders, CVAE, cGAN, judge, generation checks, errata."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cmlib import generative as gen
from cmlib.data.shapes import HELDOUT_PAIRS, SEEN_PAIRS, ShapesWorld
from cmlib.data.shapes_text import shapes_vocab

COND = 8


@pytest.fixture(scope="module")
def shapes():
    return ShapesWorld("train", size=64, num_objects=1, style="photo").tensors(cache=False)


class FakeSentenceEncoder:
    """Stands in for MiniLM: a fixed random projection of word counts (deterministic, offline)."""

    dim = 12

    def __init__(self):
        self.vocab = shapes_vocab()
        self.proj = torch.randn(len(self.vocab), self.dim, generator=torch.Generator().manual_seed(0))

    def encode(self, texts):
        bag = gen.BagOfWordsEncoder(self.vocab, 1).bag(texts)
        return bag @ self.proj


# ------------------------------------------------------------ prompts
def test_make_prompt_and_synonyms():
    assert gen.make_prompt("red", "circle") == "a red circle"
    assert gen.make_prompt("orange", "square", "large", "left") == "a large orange square on the left"
    assert gen.make_prompt("orange", "square") == "an orange square"
    rng = np.random.default_rng(0)
    words = {gen.make_prompt("red", "circle", rng=rng).split()[-1] for _ in range(40)}
    assert words == {"circle", "ball"}
    with pytest.raises(ValueError, match="colour|color"):
        gen.make_prompt("crimson", "circle")
    with pytest.raises(ValueError, match="position"):
        gen.make_prompt("red", "circle", position="behind")


def test_training_prompts_name_colour_and_shape(shapes):
    _, attrs = shapes
    prompts = gen.training_prompts(attrs, np.random.default_rng(0))
    assert len(prompts) == len(attrs["color"])
    from cmlib.data.shapes import COLORS
    assert all(COLORS[int(c)] in p for p, c in zip(prompts, attrs["color"]))
    with pytest.raises(ValueError, match="lacks"):
        gen.training_prompts({"color": attrs["color"]}, np.random.default_rng(0))


def test_paraphrases_use_unseen_words():
    vocab = shapes_vocab()
    para = gen.paraphrase_prompts(SEEN_PAIRS + HELDOUT_PAIRS)
    assert len(para) == 2 * 18
    for text, _, _ in para:
        colour_word, shape_word = text.split()[1:3]  # e.g. "crimson", "disc" / "round" (dot)
        assert colour_word not in vocab.stoi and shape_word not in vocab.stoi, text


# ------------------------------------------------------------ encoders
def test_bag_of_words_encoder():
    enc = gen.BagOfWordsEncoder(shapes_vocab(), COND)
    c = enc(["a red circle", "circle red a", "a big blue box on the left"])
    assert c.shape == (3, COND)
    assert torch.allclose(c[0], c[1])
    with pytest.raises(ValueError, match="empty"):
        enc([""])
    with pytest.raises(ValueError, match="vocabulary"):
        enc(["a crimson disc"][0].replace("a ", ""))
    with pytest.raises(ValueError, match="at least one"):
        enc([])
    with pytest.raises(TypeError):
        gen.BagOfWordsEncoder(["red"], COND)


def test_sentence_encoder_head_fits_targets():
    teacher = gen.BagOfWordsEncoder(shapes_vocab(), COND)
    student = gen.SentencePromptEncoder(FakeSentenceEncoder(), COND)
    prompts = [gen.make_prompt(c, s, size) for c, s in SEEN_PAIRS for size in (None, "small", "large")]
    with torch.no_grad():
        r2 = student.fit(prompts, teacher(prompts), ridge=1e-3)
        assert r2 > 0.95
        assert torch.allclose(student(prompts[:3]), teacher(prompts[:3]), atol=0.2)
    with pytest.raises(ValueError, match="targets"):
        student.fit(prompts, torch.zeros(len(prompts), COND + 1))


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
    enc = gen.BagOfWordsEncoder(shapes_vocab(), COND)
    model = gen.CVAE(COND, latent_dim=4, image_size=32, width=8, decoder="coordinate",
                     learned_prior=True)
    before = [p.detach().clone() for p in model.prior_net.parameters()]
    hist = gen.train_cvae(model, enc, x, lambda idx: gen.training_prompts(
        {k: v[idx] for k, v in attrs.items()}, rng), 6, torch.device("cpu"), batch_size=16,
        lr=3e-3, likelihood="gaussian", sigma=0.1, progress=False)
    assert np.mean(hist["loss"][-4:]) < np.mean(hist["loss"][:4])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.prior_net.parameters()))


def test_cvae_training_lowers_the_loss(shapes):
    x, attrs = shapes
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    enc = gen.BagOfWordsEncoder(shapes_vocab(), COND)
    model = gen.CVAE(COND, latent_dim=4, image_size=32, width=8)
    hist = gen.train_cvae(model, enc, x, lambda idx: gen.training_prompts(
        {k: v[idx] for k, v in attrs.items()}, rng), 6, torch.device("cpu"), batch_size=16,
        lr=3e-3, progress=False)
    assert np.mean(hist["loss"][-4:]) < np.mean(hist["loss"][:4])


# ------------------------------------------------------------ cGAN
def test_gan_shapes_and_aux(shapes):
    x, _ = shapes
    g = gen.Generator(COND, noise_dim=6, image_size=32, width=8)
    d = gen.ProjectionDiscriminator(COND, width=8, aux_classes={"color": 6})
    fake = g(torch.randn(4, 6), torch.randn(4, COND))
    assert fake.shape == (4, 3, 32, 32) and 0 <= fake.min() and fake.max() <= 1
    score, aux = d(x[:4], torch.randn(4, COND), with_aux=True)
    assert score.shape == (4,) and aux["color"].shape == (4, 6)
    assert d.features(x[:4]).shape == (4, 128)
    with pytest.raises(ValueError, match="noise"):
        g(torch.randn(4, 5), torch.randn(4, COND))


def test_condition_changes_the_discriminator_score(shapes):
    x, _ = shapes
    torch.manual_seed(0)
    d = gen.ProjectionDiscriminator(COND, width=8)
    c1, c2 = torch.randn(1, COND), torch.randn(1, COND)
    assert not torch.allclose(d(x[:1], c1), d(x[:1], c2))


def test_train_cgan_detaches_fakes_and_runs(shapes):
    x, attrs = shapes
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    g_text, d_text = gen.BagOfWordsEncoder(shapes_vocab(), COND), gen.BagOfWordsEncoder(shapes_vocab(), COND)
    g = gen.Generator(COND, noise_dim=6, width=8)
    d = gen.ProjectionDiscriminator(COND, width=8, aux_classes={"color": 6, "shape": 3})
    before = [p.detach().clone() for p in g.parameters()]
    hist = gen.train_cgan(g, d, g_text, d_text, x, lambda idx: gen.training_prompts(
        {k: v[idx] for k, v in attrs.items()}, rng), 6, torch.device("cpu"), batch_size=16,
        attrs=attrs, progress=False)
    assert len(hist["d_loss"]) == 6 and all(np.isfinite(hist["g_loss"]))
    assert any(not torch.equal(a, b) for a, b in zip(before, g.parameters()))
    with pytest.raises(ValueError, match="auxiliary"):
        gen.train_cgan(g, d, g_text, d_text, x, lambda idx: ["a red circle"] * len(idx), 1,
                       torch.device("cpu"), progress=False)


def test_glyph_generator_shapes_placement_and_bad_input():
    torch.manual_seed(0)
    g = gen.GlyphGenerator(COND, noise_dim=6, image_size=16, width=8)
    z, c = torch.randn(5, 6), torch.randn(5, COND)
    fake = g(z, c)
    assert fake.shape == (5, 3, 16, 16) and 0 <= fake.min() and fake.max() <= 1
    centre, radius = g.place(z, c)
    assert centre.shape == (5, 2) and centre.abs().max() <= 1 and (radius > 0).all()
    assert not torch.allclose(centre[0], centre[1])  # the noise moves the object
    with pytest.raises(ValueError, match="noise"):
        g(torch.randn(5, 7), c)
    with pytest.raises(ValueError, match="condition"):
        g(z, torch.randn(5, COND + 1))
    with pytest.raises(ValueError, match="width"):
        gen.GlyphGenerator(COND, width=0)


def test_glyph_generator_moves_the_glyph_with_its_centre():
    """Shift the centre by two pixels: the drawn object shifts by exactly two pixels."""
    torch.manual_seed(0)
    g = gen.GlyphGenerator(COND, noise_dim=4, image_size=16, width=8).eval()
    with torch.no_grad():  # a flat grey background, so that only the glyph differs
        g.background.to_image.weight.zero_()
        g.background.to_image.bias.zero_()
    pixel = 2 / 15  # one pixel in the [-1, 1] coordinates of a 16-pixel image
    z, c = torch.randn(1, 4), torch.randn(1, COND)

    def draw(cx):
        g.place = lambda z, c: (torch.tensor([[cx, 0.0]]), torch.tensor([0.3]))
        return g(z, c)

    before, after = draw(-0.2), draw(-0.2 + 2 * pixel)
    assert not torch.allclose(before, after)
    assert torch.allclose(after[..., 2:], before[..., :-2], atol=1e-5)


def test_pooled_discriminator_trunk(shapes):
    x, _ = shapes
    small = torch.nn.functional.interpolate(x[:4], size=16, mode="area")
    d = gen.ProjectionDiscriminator(COND, image_size=16, width=8, trunk="pooled",
                                    aux_classes={"shape": 3})
    score, aux = d(small, torch.randn(4, COND), with_aux=True)
    assert score.shape == (4,) and aux["shape"].shape == (4, 3)
    assert any(isinstance(m, nn.BatchNorm2d) for m in d.trunk)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gen.ProjectionDiscriminator(COND).trunk)
    with pytest.raises(ValueError, match="trunk"):
        gen.ProjectionDiscriminator(COND, trunk="resnet")


def test_train_cgan_ema_loads_the_average(shapes):
    x, attrs = shapes
    small = torch.nn.functional.interpolate(x, size=16, mode="area")
    rng = np.random.default_rng(0)

    def run(ema_decay):
        torch.manual_seed(0)
        g_text, d_text = gen.BagOfWordsEncoder(shapes_vocab(), COND), gen.BagOfWordsEncoder(shapes_vocab(), COND)
        g = gen.GlyphGenerator(COND, noise_dim=4, image_size=16, width=8)
        d = gen.ProjectionDiscriminator(COND, image_size=16, width=8, trunk="pooled",
                                        aux_classes={"color": 6, "shape": 3})
        before = [p.detach().clone() for p in g.parameters()]
        gen.train_cgan(g, d, g_text, d_text, small, lambda idx: gen.training_prompts(
            {k: v[idx] for k, v in attrs.items()}, rng), 5, torch.device("cpu"), batch_size=16,
            lr=1e-2, attrs=attrs, aux_weight=3.0, d_aux_weight=5.0, ema_decay=ema_decay, progress=False)
        return max((a - b).abs().max().item() for a, b in zip(before, g.parameters()))

    moved_raw, moved_ema = run(None), run(0.9999)
    assert moved_raw > 1e-2  # five steps at lr 1e-2 move the weights...
    assert moved_ema < 1e-3  # ...but their slow average has barely left the start
    with pytest.raises(ValueError, match="ema_decay"):
        run(1.5)


def test_hinge_losses():
    assert gen.discriminator_hinge_loss(torch.tensor([2.0]), torch.tensor([-2.0])).item() == 0.0
    assert gen.discriminator_hinge_loss(torch.tensor([0.0]), torch.tensor([0.0])).item() == 2.0
    assert gen.generator_hinge_loss(torch.tensor([1.0, 3.0])).item() == -2.0


# ------------------------------------------------------------ generation: bad input
@pytest.mark.parametrize("kind", ["cvae", "gan"])
def test_generate_rejects_bad_input(kind):
    enc = gen.BagOfWordsEncoder(shapes_vocab(), COND)
    model = gen.CVAE(COND, latent_dim=4, width=8) if kind == "cvae" else gen.Generator(COND, 6, width=8)
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
    wrong_encoder = gen.BagOfWordsEncoder(shapes_vocab(), COND + 1)
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
    sampler = gen.prompt_sampler(at, np.random.default_rng(0))
    first, second = sampler(torch.arange(8)), sampler(torch.arange(8))
    assert len(first) == 8 and first != second  # fresh wording at every call
    again = gen.prompt_sampler(at, np.random.default_rng(0))(torch.arange(8))
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
    sets = gen.evaluation_prompts(seed=0)
    assert [len(sets[k]) for k in ("seen", "seen, full", "held-out", "paraphrase")] == [15, 75, 3, 36]
    assert all(p[3] is not None and p[4] is not None for p in sets["seen, full"])
    assert {(c, s) for _, c, s, _, _ in sets["held-out"]} == set(HELDOUT_PAIRS)
    x, attrs = shapes
    judge = gen.AttributeJudge(image_size=32, width=4)
    enc = gen.BagOfWordsEncoder(shapes_vocab(), COND)
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
def test_article_gan_errata():
    vis_dim, lang_dim = 48, 8
    model = gen.ArticleGAN(vis_dim, lang_dim)
    text = torch.randn(3, lang_dim)
    out = model(text)
    assert out.shape == (3, 1)                       # one number, not an image
    assert torch.equal(out, model(text))             # no noise: deterministic
    with pytest.raises(RuntimeError):                # image ++ generator output has the wrong size
        model(text, torch.randn(3, vis_dim))
    assert model.discriminator[0].out_features == 1  # the one-unit bottleneck


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

    enc = gen.BagOfWordsEncoder(shapes_vocab(), COND)
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
