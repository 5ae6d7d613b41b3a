"""cmlib.generation.gan: generators, the projection discriminator and the cGAN's training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from cmlib.data.shapes import COLORS, HELDOUT_PAIRS, SEEN_PAIRS, SHAPES, prompt_text
from cmlib.data.shapes.text import SHAPE_WORDS, shapes_vocab
from cmlib.generation import gan, gan_losses, gan_training, prompts

COND = 8


# ------------------------------------------------------------ cGAN
def test_gan_shapes_and_aux(shapes):
    x, _ = shapes
    g = gan.Generator(COND, noise_dim=6, image_size=32, width=8)
    d = gan.ProjectionDiscriminator(COND, width=8, aux_classes={"color": 6})
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
    d = gan.ProjectionDiscriminator(COND, width=8)
    c1, c2 = torch.randn(1, COND), torch.randn(1, COND)
    assert not torch.allclose(d(x[:1], c1), d(x[:1], c2))


def _tiny_players(aux: bool = True):
    """A small G, D and their two prompt encoders (D with colour and shape heads if ``aux``)."""
    g_text, d_text = (
        prompts.BagOfWordsEncoder(shapes_vocab(), COND),
        prompts.BagOfWordsEncoder(shapes_vocab(), COND),
    )
    g = gan.Generator(COND, noise_dim=6, width=8)
    heads = {"color": 6, "shape": 3} if aux else None
    return g, gan.ProjectionDiscriminator(COND, width=8, aux_classes=heads), g_text, d_text


def test_the_d_step_sends_no_gradient_into_the_generator(shapes):
    """The fakes are detached in D's step, so G's weights get a gradient once a step (G's own
    step). Without the detach, D's loss would reach G too: a second gradient each step (or an
    error, when G's graph was already freed)."""
    arrivals = []

    def watch(g):  # one weight is enough to count the backward passes through G
        next(g.parameters()).register_hook(lambda grad: arrivals.append(1))

    _tiny_cgan_run(shapes, color_invariant=(), num_steps=4, before=watch)
    assert len(arrivals) == 4


def test_train_cgan_runs_and_moves_the_generator(shapes):
    x, attrs = shapes
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    g, d, g_text, d_text = _tiny_players()
    before = [p.detach().clone() for p in g.parameters()]
    hist = gan_training.train_cgan(
        g,
        d,
        g_text,
        d_text,
        x,
        lambda idx: prompt_text.training_prompts({k: v[idx] for k, v in attrs.items()}, rng),
        6,
        torch.device("cpu"),
        batch_size=16,
        attrs=attrs,
        progress=False,
    )
    assert len(hist.steps["d_loss"]) == 6 and all(np.isfinite(hist.steps["g_loss"]))
    assert hist.train_loss == [pytest.approx(np.mean(hist.steps["g_loss"]))]
    assert len(hist.seconds) == 1 and hist.total_seconds > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, g.parameters()))
    with pytest.raises(ValueError, match="auxiliary"):
        gan_training.train_cgan(
            g,
            d,
            g_text,
            d_text,
            x,
            lambda idx: ["a red circle"] * len(idx),
            1,
            torch.device("cpu"),
            progress=False,
        )


def test_glyph_generator_shapes_placement_and_bad_input():
    torch.manual_seed(0)
    g = gan.GlyphGenerator(COND, noise_dim=6, image_size=16, width=8)
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
        gan.GlyphGenerator(COND, width=0)


def test_glyph_generator_moves_the_glyph_with_its_centre():
    """Shift the centre by two pixels: the drawn object shifts by exactly two pixels."""
    torch.manual_seed(0)
    g = gan.GlyphGenerator(COND, noise_dim=4, image_size=16, width=8).eval()
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
    d = gan.ProjectionDiscriminator(
        COND, image_size=16, width=8, trunk="pooled", aux_classes={"shape": 3}
    )
    score, aux = d(small, torch.randn(4, COND), with_aux=True)
    assert score.shape == (4,) and aux["shape"].shape == (4, 3)
    assert any(isinstance(m, nn.BatchNorm2d) for m in d.trunk)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gan.ProjectionDiscriminator(COND).trunk)
    with pytest.raises(ValueError, match="trunk"):
        gan.ProjectionDiscriminator(COND, trunk="resnet")


def test_train_cgan_ema_loads_the_average(shapes):
    x, attrs = shapes
    small = torch.nn.functional.interpolate(x, size=16, mode="area")
    rng = np.random.default_rng(0)

    def run(ema_decay):
        torch.manual_seed(0)
        g_text, d_text = (
            prompts.BagOfWordsEncoder(shapes_vocab(), COND),
            prompts.BagOfWordsEncoder(shapes_vocab(), COND),
        )
        g = gan.GlyphGenerator(COND, noise_dim=4, image_size=16, width=8)
        d = gan.ProjectionDiscriminator(
            COND, image_size=16, width=8, trunk="pooled", aux_classes={"color": 6, "shape": 3}
        )
        before = [p.detach().clone() for p in g.parameters()]
        gan_training.train_cgan(
            g,
            d,
            g_text,
            d_text,
            small,
            lambda idx: prompt_text.training_prompts({k: v[idx] for k, v in attrs.items()}, rng),
            5,
            torch.device("cpu"),
            batch_size=16,
            lr=1e-2,
            attrs=attrs,
            aux_weight=3.0,
            d_aux_weight=5.0,
            ema_decay=ema_decay,
            progress=False,
        )
        return max((a - b).abs().max().item() for a, b in zip(before, g.parameters()))

    moved_raw, moved_ema = run(None), run(0.9999)
    assert moved_raw > 1e-2  # five steps at lr 1e-2 move the weights...
    assert moved_ema < 1e-3  # ...but their slow average has barely left the start
    with pytest.raises(ValueError, match="ema_decay"):
        run(1.5)


def test_hinge_losses():
    assert (
        gan_losses.discriminator_hinge_loss(torch.tensor([2.0]), torch.tensor([-2.0])).item() == 0.0
    )
    assert (
        gan_losses.discriminator_hinge_loss(torch.tensor([0.0]), torch.tensor([0.0])).item() == 2.0
    )
    assert gan_losses.generator_hinge_loss(torch.tensor([1.0, 3.0])).item() == -2.0


def _tiny_cgan(shapes, num_steps=4, before=None, **options):
    """A few cGAN steps on tiny players; ``before(g)`` sees the generator before training.

    Returns:
        ``(g, d, history)``.
    """
    x, attrs = shapes
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    g, d, g_text, d_text = _tiny_players()
    if before is not None:
        before(g)
    history = gan_training.train_cgan(
        g,
        d,
        g_text,
        d_text,
        x,
        lambda idx: prompt_text.training_prompts({k: v[idx] for k, v in attrs.items()}, rng),
        num_steps,
        torch.device("cpu"),
        batch_size=16,
        attrs=attrs,
        progress=False,
        **options,
    )
    return g, d, history


def _tiny_cgan_run(shapes, color_invariant, num_steps=4, before=None):
    """The discriminator after :func:`_tiny_cgan` with ``color_invariant`` heads."""
    return _tiny_cgan(shapes, num_steps, before, color_invariant=color_invariant)[1]


def test_train_cgan_color_invariant_heads(shapes):
    plain, invariant = _tiny_cgan_run(shapes, ()), _tiny_cgan_run(shapes, ("shape",))
    # the recoloured images reach D's shape head (and its trunk), not its colour head
    assert not torch.allclose(plain.aux["shape"].weight, invariant.aux["shape"].weight)
    with pytest.raises(ValueError, match="color_invariant"):
        _tiny_cgan_run(shapes, ("texture",), num_steps=1)


def test_train_cgan_d_lr_sets_the_discriminators_rate(shapes):
    x, _ = shapes
    torch.manual_seed(0)
    g, d, g_text, d_text = _tiny_players(aux=False)
    g_before = [p.detach().clone() for p in g.parameters()]
    d_before = [p.detach().clone() for p in d.parameters()]
    gan_training.train_cgan(
        g, d, g_text, d_text, x, lambda idx: ["a red circle"] * len(idx), 3,
        torch.device("cpu"), batch_size=8, lr=1e-3, d_lr=0.0, progress=False,
    )  # fmt: skip
    assert all(torch.equal(a, b) for a, b in zip(d_before, d.parameters()))  # D frozen by d_lr=0
    assert any(not torch.equal(a, b) for a, b in zip(g_before, g.parameters()))  # G still learns


def test_train_cgan_evaluates_the_ema_generator_without_changing_the_run(shapes):
    """``evaluate`` sees the generator training would return at that step (the EMA weights, in
    eval mode), may draw random numbers, and leaves the run exactly as it would have been."""
    players, snapshots = [], []

    def evaluate(step):
        g = players[-1]
        snapshots.append((step, g.training, [p.detach().clone() for p in g.parameters()]))
        torch.randn(100)  # evaluation noise must not shift the training noise
        return {"score": step / 10}

    plain, _, _ = _tiny_cgan(shapes, 5, ema_decay=0.5)
    evaluated, _, history = _tiny_cgan(
        shapes, 5, players.append, ema_decay=0.5, evaluate=evaluate, eval_every=2
    )
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), evaluated.parameters()))
    assert [s for s, _, _ in snapshots] == [2, 4, 5] == history.steps["eval_step"]
    assert history.steps["eval_score"] == [0.2, 0.4, 0.5]
    assert history.metrics == [{"score": 0.5}]
    assert not any(training for _, training, _ in snapshots)  # scored in eval mode
    # the last evaluation saw the EMA weights that training then returned
    assert all(torch.equal(a, b) for a, b in zip(snapshots[-1][2], evaluated.parameters()))
    with pytest.raises(ValueError, match="eval_every"):
        _tiny_cgan(shapes, 1, eval_every=-1)


def test_train_cgan_decay_from_lowers_the_rates_only_after_its_start(shapes):
    """With ``decay_from=0.5`` over 4 steps the rates stay whole for the first three updates and
    halve for the last, so D's losses (each computed before that step's updates) match a
    constant-rate run step for step, while the final weights do not."""
    constant, _, constant_history = _tiny_cgan(shapes, 4)
    decayed, _, decayed_history = _tiny_cgan(shapes, 4, decay_from=0.5)
    assert decayed_history.steps["d_loss"] == constant_history.steps["d_loss"]
    assert any(not torch.equal(a, b) for a, b in zip(constant.parameters(), decayed.parameters()))
    with pytest.raises(ValueError, match="decay_from"):
        _tiny_cgan(shapes, 4, decay_from=1.0)


def test_evaluate_during_training_puts_everything_back_even_when_it_raises():
    from cmlib.generation.ema import WeightAverage, evaluate_during_training

    layer = nn.Linear(2, 2).train()
    average = WeightAverage(list(layer.parameters()), 0.5)
    with torch.no_grad():
        layer.weight.add_(1.0)  # the live weights now differ from their average
    live = layer.weight.detach().clone()

    def failing(step):
        assert not layer.training and torch.equal(layer.weight, average.values[0])
        raise RuntimeError("scoring failed")

    with pytest.raises(RuntimeError, match="scoring failed"):
        evaluate_during_training(failing, 1, (layer,), average, torch.device("cpu"))
    assert layer.training and torch.equal(layer.weight, live)
    with pytest.raises(TypeError, match="dict of numbers"):
        evaluate_during_training(lambda step: [1.0], 1, (layer,), None, torch.device("cpu"))
    with pytest.raises(TypeError, match="dict of numbers"):
        evaluate_during_training(lambda step: {"a": "x"}, 1, (layer,), None, torch.device("cpu"))
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(list(layer.parameters()), 1.0)


def test_spectral_norm_discriminator_bounds_each_scoring_layer():
    torch.manual_seed(0)
    d = gan.ProjectionDiscriminator(
        COND, image_size=16, width=8, trunk="pooled", norm="spectral", aux_classes={"shape": 3}
    )
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    scoring = [m for m in [*d.trunk, d.score, d.project] if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert scoring and all(parametrize.is_parametrized(m, "weight") for m in scoring)
    assert not parametrize.is_parametrized(d.aux["shape"], "weight")  # the classifier is free
    d.train()
    for _ in range(30):  # the power iteration runs once per training forward
        d(torch.rand(4, 3, 16, 16), torch.randn(4, COND))
    d.eval()
    for m in scoring:
        w = m.weight.flatten(1)
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="norm"):
        gan.ProjectionDiscriminator(COND, image_size=16, norm="layer")


def test_r1_penalty_is_the_squared_gradient_norm_at_the_real_images():
    w = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    x = torch.randn(5, 2, 2, requires_grad=True)
    scores = (x * w).flatten(1).sum(1)  # D(x) = <w, x>: its gradient is w for every image
    assert gan_losses.r1_penalty(scores, x).item() == pytest.approx((w**2).sum().item())
    quadratic = (x**2).flatten(1).sum(1)  # gradient 2x
    expected = (2 * x).pow(2).flatten(1).sum(1).mean().item()
    assert gan_losses.r1_penalty(quadratic, x).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="require grad"):
        gan_losses.r1_penalty(scores.detach(), x.detach())
    with pytest.raises(ValueError, match="scores"):
        gan_losses.r1_penalty(scores[:3], x)


def test_r1_penalty_of_a_discriminator_reaches_its_weights_and_not_the_data():
    from cmlib.generation.gan_losses import r1_penalty, r1_penalty_of

    torch.manual_seed(0)
    d = gan.ProjectionDiscriminator(COND, image_size=16, width=4, trunk="pooled").eval()
    real, cond = torch.rand(6, 3, 16, 16, requires_grad=True), torch.randn(6, COND)
    penalty = r1_penalty_of(d, real, cond)
    x = real.detach().requires_grad_(True)
    assert penalty.item() == pytest.approx(r1_penalty(d(x, cond), x).item(), rel=1e-6)
    penalty.backward()
    assert real.grad is None, "the penalty must not reach the real images"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())
    with pytest.raises(TypeError, match="callable"):
        r1_penalty_of("not a model", real, cond)
    with pytest.raises(ValueError, match="cond"):
        r1_penalty_of(d, real, cond[:3])
    with pytest.raises(ValueError, match="real"):
        r1_penalty_of(d, real.flatten(1), cond)


def test_mode_seeking_loss_punishes_a_generator_that_ignores_its_noise():
    z_a, z_b = torch.zeros(4, 8), torch.ones(4, 8)  # noise distance 1
    far = gan_losses.mode_seeking_loss(torch.zeros(4, 3, 2, 2), torch.ones(4, 3, 2, 2), z_a, z_b)
    near = gan_losses.mode_seeking_loss(
        torch.zeros(4, 3, 2, 2), torch.full((4, 3, 2, 2), 0.1), z_a, z_b
    )
    same = gan_losses.mode_seeking_loss(torch.zeros(4, 3, 2, 2), torch.zeros(4, 3, 2, 2), z_a, z_b)
    assert far.item() == pytest.approx(1.0, rel=1e-4)  # image distance 1 over noise distance 1
    assert near.item() == pytest.approx(10.0, rel=1e-3)
    assert same.item() > 1e4  # collapse: the loss is as large as its guard allows
    with pytest.raises(ValueError, match="fake_b"):
        gan_losses.mode_seeking_loss(torch.zeros(4, 3, 2, 2), torch.zeros(3, 3, 2, 2), z_a, z_b)


def test_train_cgan_r1_and_mode_seeking_change_the_run(shapes, monkeypatch):
    def weights(**options):
        g, d, _ = _tiny_cgan(shapes, num_steps=3, **options)
        return torch.cat([p.detach().flatten() for p in [*g.parameters(), *d.parameters()]])

    def never(*args):
        raise AssertionError("called although its weight is 0")

    with monkeypatch.context() as patch:  # off means off: neither term is even computed
        patch.setattr(gan_training, "r1_penalty", never)
        patch.setattr(gan_training, "mode_seeking_loss", never)
        plain = weights()
    assert not torch.allclose(plain, weights(r1_weight=10.0))
    assert not torch.allclose(plain, weights(mode_seeking=1.0))
    for bad in ({"r1_weight": -1.0}, {"mode_seeking": float("nan")}):
        with pytest.raises(ValueError):
            weights(**bad)


def test_the_gan_terms_reject_what_they_cannot_score():
    x = torch.randn(3, 2, requires_grad=True)
    with pytest.raises(ValueError, match="scores.requires_grad=False"):
        gan_losses.r1_penalty(torch.zeros(3), x)  # scores that do not depend on the images
    z = torch.ones(2, 4)
    same_noise = gan_losses.mode_seeking_loss(torch.zeros(2, 3), torch.ones(2, 3), z, z)
    assert torch.isfinite(same_noise)
    with pytest.raises(TypeError):
        gan_losses.mode_seeking_loss(torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.long), z, z)


def test_pair_prompt_sampler_names_the_pairs_it_labels():
    draw = prompt_text.pair_prompt_sampler(np.random.default_rng(0))
    texts, labels = draw(400)
    assert len(texts) == 400 and set(labels) == {"color", "shape"}
    drawn = {(COLORS[int(c)], SHAPES[int(s)]) for c, s in zip(labels["color"], labels["shape"])}
    assert drawn == set(SEEN_PAIRS + HELDOUT_PAIRS)  # every pair the vocabulary names
    for text, c, s in zip(texts, labels["color"], labels["shape"]):
        assert COLORS[int(c)] in text.split()
        assert any(w in text for w in SHAPE_WORDS[SHAPES[int(s)]])
    only = prompt_text.pair_prompt_sampler(np.random.default_rng(1), [("red", "triangle")])
    assert set(only(5)[0]) <= {"a red triangle", *(f"a red {w}" for w in SHAPE_WORDS["triangle"])}
    with pytest.raises(ValueError, match="pairs"):
        prompt_text.pair_prompt_sampler(np.random.default_rng(0), [("pink", "circle")])
    with pytest.raises(TypeError, match="numpy Generator"):
        prompt_text.pair_prompt_sampler(0)


def test_train_cgan_composed_prompts_teach_g_through_the_heads(shapes):
    asked = []

    def held_out_only(n):
        asked.append(n)
        return prompt_text.pair_prompt_sampler(np.random.default_rng(0), HELDOUT_PAIRS)(n)

    def generator_weights(**options):
        g, _, _ = _tiny_cgan(shapes, num_steps=3, **options)
        return torch.cat([p.detach().flatten() for p in g.parameters()])

    plain = generator_weights()
    composed = generator_weights(composed_prompts=held_out_only)
    assert asked == [16, 16, 16]  # one batch of the real batch's size per G step
    assert not torch.allclose(plain, composed)
    with pytest.raises(TypeError, match="composed_prompts must be callable"):
        generator_weights(composed_prompts=[("red", "triangle")])
    with pytest.raises(ValueError, match="heads"):
        generator_weights(
            composed_prompts=lambda n: (["a red circle"] * n, {"texture": torch.zeros(n).long()})
        )


def test_train_cgan_doubt_trains_the_heads_on_composed_fakes(shapes):
    draw = prompt_text.pair_prompt_sampler(np.random.default_rng(0))

    def head_weights(**options):
        _, d, _ = _tiny_cgan(shapes, num_steps=3, composed_prompts=draw, **options)
        return torch.cat([p.detach().flatten() for p in d.aux.parameters()])

    trusting = head_weights()
    assert not torch.allclose(trusting, head_weights(doubt_weight=1.0))
    with pytest.raises(ValueError, match="needs composed_prompts"):
        _tiny_cgan(shapes, num_steps=1, doubt_weight=1.0)
    with pytest.raises(ValueError, match="doubt_weight"):
        head_weights(doubt_weight=-1.0)
