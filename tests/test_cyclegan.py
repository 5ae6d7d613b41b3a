"""Tests for cmlib.cyclegan: models, losses, the image pool, training and the evaluation panel."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cmlib import cyclegan, runtime
from cmlib.data.shapes import ShapesWorld
from cmlib.judge import AttributeJudge

CPU = torch.device("cpu")


def test_generator_and_discriminator_shapes():
    x = torch.rand(2, 3, 16, 16)
    for skip in (True, False):
        g = cyclegan.ResnetGenerator(width=4, num_blocks=1, skip=skip)
        y = g(x)
        assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    d = cyclegan.PatchDiscriminator(width=4)
    assert d(x).shape == (2, 1, 6, 6)  # one score per patch
    assert cyclegan.PatchDiscriminator(width=4, num_layers=2)(torch.rand(2, 3, 32, 32)).shape == (
        2,
        1,
        6,
        6,
    )
    with pytest.raises(ValueError, match="even"):
        g(torch.rand(1, 3, 15, 15))
    with pytest.raises(ValueError, match="expected images"):
        g(torch.rand(1, 1, 16, 16))


def test_a_generator_without_downsampling_keeps_full_resolution_at_the_same_cost():
    x = torch.rand(2, 3, 16, 16)
    flat = cyclegan.ResnetGenerator(width=4, num_blocks=2, downsample=False)
    sizes = []
    flat.body.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape)))
    y = flat(x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    assert sizes == [(2, 4, 16, 16)]  # the body never leaves 16 × 16, at the stem's width
    # a block of w channels on 16² pixels costs what a block of 2w channels on 8² costs
    down = cyclegan.ResnetGenerator(width=4, num_blocks=2)
    flat_block, down_block = flat.body[0].body[0][1], down.body[1].body[0][1]
    assert flat_block.weight.numel() * 16 * 16 == down_block.weight.numel() * 8 * 8
    model = cyclegan.CycleGAN(width=4, num_blocks=1, downsample=False)
    assert len(model.g.body) == len(model.f.body) == 1
    config = cyclegan.CycleGANConfig(width=4, num_blocks=1, downsample=False)
    built = cyclegan.CycleGAN.from_config(config)
    assert [tuple(p.shape) for p in built.parameters()] == [
        tuple(p.shape) for p in model.parameters()
    ]
    with pytest.raises(TypeError, match="CycleGANConfig"):
        cyclegan.CycleGAN.from_config({"width": 4})
    with pytest.raises(TypeError, match="downsample"):
        cyclegan.CycleGANConfig(downsample="no")


def test_init_weights_draws_small_weights():
    g = cyclegan.ResnetGenerator(width=8)
    conv = g.stem[1]
    assert abs(conv.weight.std().item() - 0.02) < 0.005 and conv.bias.abs().max() == 0


def test_lsgan_losses_on_known_scores():
    ones, zeros = torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)
    assert cyclegan.lsgan_discriminator_loss(ones, zeros).item() == 0.0  # a perfect D
    assert cyclegan.lsgan_discriminator_loss(zeros, ones).item() == pytest.approx(1.0)
    assert cyclegan.lsgan_generator_loss(ones).item() == 0.0
    assert cyclegan.lsgan_generator_loss(torch.full((2, 1, 3, 3), 0.5)).item() == pytest.approx(
        0.25
    )


def test_cycle_and_identity_losses_are_mean_absolute_errors():
    a = torch.zeros(2, 3, 4, 4)
    b = a.clone()
    b[0, 0, 0, 0] = 1.0
    b[1, 2, 3, 3] = -3.0
    assert cyclegan.cycle_loss(b, a).item() == pytest.approx(4.0 / a.numel())
    assert cyclegan.identity_loss(a, a).item() == 0.0
    with pytest.raises(ValueError, match="one shape"):
        cyclegan.cycle_loss(a, a[:1])
    with pytest.raises(TypeError):
        cyclegan.identity_loss(a, a.numpy())


def test_object_mask_finds_the_object_and_grows_around_it():
    images = torch.full((2, 3, 8, 8), 0.4)
    images[0, 0, 2:4, 2:4] = 1.0  # a 2x2 red square on grey
    images[1, :, 5, 5] = 0.0  # one dark pixel
    mask = cyclegan.object_mask(images, grow=0)
    assert mask.shape == (2, 1, 8, 8) and mask[0].sum() == 4 and mask[1].sum() == 1
    grown = cyclegan.object_mask(images, grow=1)
    assert grown[0].sum() == 16 and grown[1].sum() == 9  # 4x4 and 3x3 neighbourhoods
    assert cyclegan.object_mask(torch.full((1, 3, 4, 4), 0.5)).sum() == 0  # no object
    with pytest.raises(ValueError, match="B, C, H, W"):
        cyclegan.object_mask(images[0])


def test_object_cycle_loss_weighs_every_object_the_same():
    original = torch.full((2, 3, 16, 16), 0.5)
    original[0, :, 1:3, 1:3] = 1.0  # a small object: 4 pixels
    original[1, :, 2:10, 2:10] = 1.0  # a large one: 64 pixels
    wrong = original.clone()
    wrong[0, :, 1, 1] = 0.5  # one corner pixel lost on the small object
    wrong[1, :, 2, 2] = 0.5  # and on the large one
    small = cyclegan.object_cycle_loss(wrong[:1], original[:1]).item()
    large = cyclegan.object_cycle_loss(wrong[1:], original[1:]).item()
    assert small == pytest.approx(0.5 / 16) and large == pytest.approx(0.5 / 100)
    # the whole-image L1 charges both the same, and far less
    assert cyclegan.cycle_loss(wrong[:1], original[:1]).item() == pytest.approx(0.5 / 256)
    assert cyclegan.object_cycle_loss(original, original).item() == 0.0
    with pytest.raises(ValueError, match="one shape"):
        cyclegan.object_cycle_loss(original, original[:1])


def test_object_identity_loss_charges_a_recoloured_object_in_full():
    sketch = torch.ones(1, 3, 16, 16)  # a white page
    sketch[0, :, 6:10, 6:10] = torch.tensor([1.0, 0.7, 0.7])[:, None, None]  # a pale red square
    recoloured = sketch.clone()
    recoloured[0, :, 6:10, 6:10] = torch.tensor([0.7, 1.0, 0.7])[:, None, None]  # pale green
    # mean over channels of |Δ| is 0.2 on each of the 16 object pixels, 0 on the 20 grown ones
    assert cyclegan.object_identity_loss(recoloured, sketch).item() == pytest.approx(0.2 * 16 / 36)
    assert cyclegan.identity_loss(recoloured, sketch).item() == pytest.approx(0.2 * 16 / 256)
    assert cyclegan.object_identity_loss(sketch, sketch).item() == 0.0
    with pytest.raises(TypeError, match="two tensors"):
        cyclegan.object_identity_loss(sketch, None)


def test_image_pool_fills_then_swaps_half_the_time():
    pool = cyclegan.ImagePool(size=4, seed=0)
    first = torch.arange(4.0).view(4, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned as is
    assert len(pool.images) == 4
    outs = torch.cat([pool.query(torch.full((1, 1), 100.0 + i)) for i in range(400)])
    from_history = (outs < 100).sum().item() + sum(
        1 for i, v in enumerate(outs.flatten().tolist()) if v >= 100 and v != 100 + i
    )
    assert 150 < from_history < 250  # about half come from the pool
    assert len(pool.images) == 4
    assert torch.equal(cyclegan.ImagePool(size=0).query(first), first)


def test_image_pool_detaches():
    x = torch.rand(3, 2, requires_grad=True)
    assert not cyclegan.ImagePool(size=2).query(x * 2).requires_grad


def test_linear_decay_schedule():
    f = cyclegan.linear_decay(10, 0.5)
    assert [f(s) for s in (0, 4)] == [1.0, 1.0]
    assert f(5) == 1.0 and f(10) == 0.0
    assert f(6) > f(8) > 0


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="cycles"):
        cyclegan.CycleGANConfig(cycles=("sideways",))
    with pytest.raises(ValueError):
        cyclegan.CycleGANConfig(lambda_cycle=-1.0)
    with pytest.raises(ValueError):
        cyclegan.CycleGANConfig(decay_from=1.5)
    with pytest.raises(ValueError, match="object_weight"):
        cyclegan.CycleGANConfig(object_weight=-0.5)
    with pytest.raises(ValueError, match="object_identity"):
        cyclegan.CycleGANConfig(object_identity=-1.0)
    with pytest.raises(ValueError, match="lambda_identity=0"):  # a share of nothing
        cyclegan.CycleGANConfig(object_identity=1.0, lambda_identity=0.0)
    with pytest.raises(ValueError, match="cycle_noise"):
        cyclegan.CycleGANConfig(cycle_noise=-0.1)
    with pytest.raises(ValueError, match="noisy_cycles"):
        cyclegan.CycleGANConfig(noisy_cycles=("forwards",))
    # noise with no cycle loss to act on would do nothing, silently
    with pytest.raises(ValueError, match="needs a cycle loss"):
        cyclegan.CycleGANConfig(cycle_noise=0.1, noisy_cycles=())
    with pytest.raises(ValueError, match="needs a cycle loss"):
        cyclegan.CycleGANConfig(cycle_noise=0.1, cycles=("backward",), noisy_cycles=("forward",))
    with pytest.raises(ValueError, match="needs a cycle loss"):
        cyclegan.CycleGANConfig(cycle_noise=0.1, lambda_cycle=0.0)
    cyclegan.CycleGANConfig(cycle_noise=0.1, cycles=("forward",), noisy_cycles=("forward",))


def _tiny(config_overrides=None, steps=3):
    config = cyclegan.CycleGANConfig(
        num_steps=steps, batch_size=4, width=4, num_blocks=1, pool_size=2
    )
    if config_overrides:
        config = dataclasses.replace(config, **config_overrides)
    return cyclegan.CycleGAN(width=4, num_blocks=1), config


def test_train_cyclegan_logs_the_terms_the_config_asks_for():
    torch.manual_seed(0)
    a, b = torch.rand(8, 3, 16, 16), torch.rand(10, 3, 16, 16)
    model, config = _tiny()
    history = cyclegan.train_cyclegan(model, a, b, config, CPU, progress=False)
    assert {"loss", "gan_g", "gan_f", "cycle_a", "cycle_b", "identity", "d_loss"} <= set(
        history.steps
    )
    assert len(history.steps["loss"]) == 3 and not model.training
    model, config = _tiny({"lambda_identity": 0.0, "cycles": ("forward",)})
    history = cyclegan.train_cyclegan(model, a, b, config, CPU, progress=False)
    assert "identity" not in history.steps and "cycle_b" not in history.steps
    model, config = _tiny({"lambda_cycle": 0.0})
    history = cyclegan.train_cyclegan(model, a, b, config, CPU, progress=False)
    assert not {"cycle_a", "cycle_b", "identity"} & set(history.steps)
    assert "object_cycle_a" not in history.steps  # off unless asked for
    model, config = _tiny({"object_weight": 1.0, "cycles": ("backward",)})
    history = cyclegan.train_cyclegan(model, a, b, config, CPU, progress=False)
    assert "object_cycle_b" in history.steps and "object_cycle_a" not in history.steps
    assert "object_identity" not in history.steps  # off unless asked for
    model, config = _tiny({"object_identity": 2.0})
    history = cyclegan.train_cyclegan(model, a, b, config, CPU, progress=False)
    assert "object_identity" in history.steps and "identity" in history.steps
    # the term's weight: lambda_cycle · lambda_identity · object_identity
    torch.manual_seed(0)
    model, config = _tiny({"object_identity": 2.0, "lambda_identity": 0.25})
    _, _, losses = cyclegan.training._generator_losses(model, a[:4], b[:4], config)
    expected = (10.0 * 0.25 * 2.0) * (
        cyclegan.object_identity_loss(model.g(b[:4]), b[:4])
        + cyclegan.object_identity_loss(model.f(a[:4]), a[:4])
    )
    assert losses["object_identity"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_cycle_noise_reaches_only_the_cycles_it_names():
    a, b = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    model, quiet = _tiny()
    model.eval()  # no batch statistics: the losses depend on the inputs alone

    def losses(config, seed=0):
        torch.manual_seed(seed)
        with torch.no_grad():
            return cyclegan.training._generator_losses(model, a, b, config)[2]

    clean = losses(quiet)
    # off draws no random numbers, so the reference loss's random stream is unchanged
    losses(quiet)
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(1))
    noisy = losses(dataclasses.replace(quiet, cycle_noise=0.5, noisy_cycles=("forward",)))
    assert noisy["cycle_a"].item() != pytest.approx(clean["cycle_a"].item(), rel=1e-4)
    for term in ("cycle_b", "gan_g", "gan_f", "identity"):
        assert noisy[term].item() == pytest.approx(clean[term].item(), rel=1e-6), term
    both = losses(dataclasses.replace(quiet, cycle_noise=0.5))
    assert both["cycle_b"].item() != pytest.approx(clean["cycle_b"].item(), rel=1e-4)
    # the noise is what differs: the same draws, added by hand, give the same loss
    torch.manual_seed(0)
    with torch.no_grad():
        fake_b = model.g(a)
        by_hand = 10.0 * cyclegan.cycle_loss(model.f(fake_b + 0.5 * torch.randn_like(fake_b)), a)
    assert noisy["cycle_a"].item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_cycle_noise_starts_where_noise_from_says():
    a, b = torch.rand(8, 3, 16, 16), torch.rand(8, 3, 16, 16)

    def run(**changes):
        torch.manual_seed(0)
        model, config = _tiny()
        config = dataclasses.replace(config, num_steps=4, **changes)
        return cyclegan.train_cyclegan(model, a, b, config, CPU, seed=0, progress=False)

    clean = run()
    late = run(cycle_noise=0.5, noise_from=0.5)
    early = run(cycle_noise=0.5)
    # the first two steps draw no noise: the same losses as the clean run, to the bit
    assert late.steps["cycle_a"][:2] == clean.steps["cycle_a"][:2]
    assert late.steps["cycle_a"][2:] != clean.steps["cycle_a"][2:]
    assert early.steps["cycle_a"][:1] != clean.steps["cycle_a"][:1]
    with pytest.raises(ValueError, match="noise_from"):
        cyclegan.CycleGANConfig(cycle_noise=0.1, noise_from=1.0)


def test_object_identity_stops_where_object_identity_until_says():
    a, b = torch.rand(8, 3, 16, 16), torch.rand(8, 3, 16, 16)

    def run(**changes):
        torch.manual_seed(0)
        model, config = _tiny()
        config = dataclasses.replace(config, num_steps=4, object_identity=3.0, **changes)
        return cyclegan.train_cyclegan(model, a, b, config, CPU, seed=0, progress=False)

    always, stopped = run(), run(object_identity_until=0.5)
    # two steps with the term, then two logged as 0 (every step keeps each term's entry)
    assert stopped.steps["object_identity"][:2] == always.steps["object_identity"][:2]
    assert min(stopped.steps["object_identity"][:2]) > 0
    assert stopped.steps["object_identity"][2:] == [0.0, 0.0]
    assert min(always.steps["object_identity"][2:]) > 0
    # up to the stop the two runs are the same run, to the bit; after it they part
    assert stopped.steps["loss"][:2] == always.steps["loss"][:2]
    assert stopped.steps["cycle_a"][3] != always.steps["cycle_a"][3]
    assert {len(v) for k, v in stopped.steps.items() if not k.startswith("eval")} == {4}
    with pytest.raises(ValueError, match="object_identity_until"):
        cyclegan.CycleGANConfig(object_identity_until=1.5)


def test_train_cyclegan_is_seeded_and_changes_both_players():
    a, b = torch.rand(8, 3, 16, 16), torch.rand(8, 3, 16, 16)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model, config = _tiny()
        before = {k: v.clone() for k, v in model.state_dict().items()}
        cyclegan.train_cyclegan(model, a, b, config, CPU, seed=1, progress=False)
        runs.append(model.state_dict())
    for name in ("g.stem.1.weight", "f.stem.1.weight", "d_a.net.0.weight", "d_b.net.0.weight"):
        assert not torch.equal(before[name], runs[0][name])
        assert torch.equal(runs[0][name], runs[1][name])


def test_scoring_during_training_does_not_change_the_run():
    """evaluate is called every eval_every steps and after the last, on generators in eval mode,
    under a forked random state: the weights are those of a run without it."""
    a, b = torch.rand(8, 3, 16, 16), torch.rand(8, 3, 16, 16)
    calls, runs = [], []
    for evaluate in (None, lambda step: calls.append(step) or {"noise": torch.rand(1).item()}):
        torch.manual_seed(0)
        model, config = _tiny(steps=5)
        history = cyclegan.train_cyclegan(
            model, a, b, config, "cpu", seed=1, progress=False, evaluate=evaluate, eval_every=2
        )
        runs.append(model.state_dict())
    assert calls == [2, 4, 5]
    assert history.steps["eval_step"] == [2.0, 4.0, 5.0] and len(history.steps["eval_noise"]) == 3
    assert history.metrics[-1] == {"noise": history.steps["eval_noise"][-1]}
    for name, value in runs[0].items():
        assert torch.equal(value, runs[1][name]), name
    model, config = _tiny()
    with pytest.raises(ValueError, match="eval_every"):
        cyclegan.train_cyclegan(model, a, b, config, CPU, progress=False, eval_every=-1)
    with pytest.raises(ValueError, match="ema_decay"):
        cyclegan.train_cyclegan(model, a, b, config, CPU, progress=False, ema_decay=1.0)
    with pytest.raises(TypeError, match="evaluate"):
        cyclegan.train_cyclegan(model, a, b, config, CPU, progress=False, evaluate="every step")


def test_shipped_referees_name_the_command_when_their_manifest_is_wrong(tmp_path, monkeypatch):
    import json
    import shutil

    from cmlib.longrun import store

    source = store.models_dir()
    for suffix in (".json", ".safetensors"):
        shutil.copy(source / f"ch06-referees-seed0{suffix}", tmp_path)
    monkeypatch.setenv("CMLIB_MODELS_DIR", str(tmp_path))
    judges, style, manifest = cyclegan.shipped_referees(CPU)
    assert set(judges) == {"photo", "sketch"} and not style.training
    assert manifest["metrics"]["sketch_blur"] >= 0.97
    broken = json.loads((tmp_path / "ch06-referees-seed0.json").read_text())
    del broken["config"]["judge_width"]
    (tmp_path / "ch06-referees-seed0.json").write_text(json.dumps(broken))
    with pytest.raises(store.LongRunError, match='make models NAMES="ch06-referees" SEEDS="0"'):
        cyclegan.shipped_referees(CPU)
    with pytest.raises(TypeError, match="device"):
        cyclegan.shipped_referees("cpu")


def test_train_cyclegan_rejects_mismatched_domains():
    model, config = _tiny()
    with pytest.raises(ValueError, match="one shape"):
        cyclegan.train_cyclegan(
            model, torch.rand(8, 3, 16, 16), torch.rand(8, 3, 32, 32), config, CPU
        )
    with pytest.raises(ValueError):
        cyclegan.train_cyclegan(
            model, torch.rand(8, 3, 16, 16), torch.rand(8, 1, 16, 16), config, CPU
        )
    with pytest.raises(TypeError, match="CycleGANConfig"):
        cyclegan.train_cyclegan(model, torch.rand(8, 3, 16, 16), torch.rand(8, 3, 16, 16), {}, CPU)
    with pytest.raises(ValueError, match="batch_size"):
        cyclegan.train_cyclegan(
            model, torch.rand(3, 3, 16, 16), torch.rand(8, 3, 16, 16), config, CPU
        )


def test_train_paired_learns_a_fixed_colour_map():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 16, 16)
    y = x.flip(1)  # swap red and blue: a map the paired loss can teach
    g = cyclegan.ResnetGenerator(width=8, num_blocks=1)
    before = (cyclegan.translate(g, x, CPU) - y).abs().mean().item()
    history = cyclegan.train_paired(g, x, y, 150, CPU, lr=2e-3, progress=False)
    after = (cyclegan.translate(g, x, CPU) - y).abs().mean().item()
    assert after < 0.5 * before and history.steps["loss"][-1] < history.steps["loss"][0]
    with pytest.raises(ValueError, match="as many targets"):
        cyclegan.train_paired(g, x, y[:10], 1, CPU)


def test_photo_sketch_pairs_show_the_same_scenes():
    photos, sketches, attrs = cyclegan.photo_sketch_pairs("heldout", 6, 16, seed=3)
    assert photos.shape == sketches.shape == (6, 3, 16, 16)
    p = ShapesWorld("heldout", size=6, image_size=16, style="photo", num_objects=1, seed=3)
    s = ShapesWorld("heldout", size=6, image_size=16, style="sketch", num_objects=1, seed=3)
    for i in range(6):
        a, b = p.scene(i), s.scene(i)
        assert (a.style, b.style) == ("photo", "sketch")
        assert a.objects == b.objects  # same colours, shapes, sizes and positions
        assert (a.position, a.relation) == (b.position, b.relation)
        assert int(attrs["color"][i]) == p[i][2]["color"]
    assert not torch.allclose(photos, sketches)


def test_ssim_and_score_translation():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16)
    assert cyclegan.ssim(x, x) == pytest.approx(1.0)
    assert cyclegan.ssim(x, 1 - x) < 0.5
    judge = AttributeJudge(16, width=4)
    style = cyclegan.StyleClassifier(16)
    attrs = {"color": torch.zeros(4, dtype=torch.long), "shape": torch.zeros(4, dtype=torch.long)}
    scores = cyclegan.score_translation(x, x, attrs, judge, style, "sketch")
    assert scores.mae == 0.0 and scores.ssim == pytest.approx(1.0)
    assert 0 <= scores.joint <= min(scores.preserved, scores.target_style) <= 1
    with pytest.raises(ValueError, match="target_style"):
        cyclegan.score_translation(x, x, attrs, judge, style, "painting")
    with pytest.raises(ValueError, match="differ"):
        cyclegan.score_translation(x, x[:2], attrs, judge, style, "photo")


def test_style_classifier_tells_photos_from_sketches():
    photos, sketches, _ = cyclegan.photo_sketch_pairs("train", 200, 16)
    torch.manual_seed(0)
    model, _ = cyclegan.train_style_classifier(photos[:100], sketches[100:], 12, CPU)
    pred = model(torch.cat([photos[100:], sketches[:100]])).argmax(1)
    truth = torch.cat([torch.zeros(100), torch.ones(100)])
    assert (pred == truth).float().mean() > 0.95


def test_part_one_model_is_saved_then_reused_and_retrained_when_its_config_changes(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))
    torch.manual_seed(0)
    a, b = torch.rand(8, 3, 16, 16), torch.rand(8, 3, 16, 16)
    model, config = _tiny()
    cyclegan.train_cyclegan(model, a, b, config, CPU, seed=3, progress=False)
    saved = cyclegan.save_cyclegan(model, config, a, seed=3)
    assert saved.name == cyclegan.registry_name("cyclegan", 3) and saved.threads >= 1
    loaded, status = cyclegan.load_or_train_cyclegan(config, a, b, 3, CPU, progress=False)
    assert status == "loaded"
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    longer = dataclasses.replace(config, num_steps=config.num_steps + 1)
    _, status = cyclegan.load_or_train_cyclegan(longer, a, b, 3, CPU, progress=False)
    assert status.startswith("trained: stale") and "num_steps" in status


def test_score_both_directions_names_both_and_scores_the_identity_map():
    photos, sketches, attrs = cyclegan.photo_sketch_pairs("test", 6, 16)
    judges = {s: AttributeJudge(16, width=4) for s in ("photo", "sketch")}
    style = cyclegan.StyleClassifier(16)
    scores = cyclegan.score_both_directions(None, None, photos, sketches, attrs, judges, style, CPU)
    assert tuple(scores) == cyclegan.DIRECTIONS
    identity_mae = (photos - sketches).abs().mean().item()
    assert all(row["mae"] == pytest.approx(identity_mae) for row in scores.values())


def test_an_ablation_is_part_one_retrained_with_one_change_from_the_same_start():
    from cmlib.cyclegan.saved import PartOne

    a, b = torch.rand(8, 3, 16, 16), torch.rand(8, 3, 16, 16)
    _, config = _tiny()
    part1 = PartOne(*[None] * 3, a, b, *[None] * 6, config, None, {}, None, {})
    no_cycle, history = part1.ablation(2, CPU, progress=False, cycles=())
    assert "cycle_a" not in history.steps and "cycle_b" not in history.steps
    # built and trained as part 1's recipe would be, after reseeding: the same weights
    runtime.seed_everything(2)
    expected = cyclegan.CycleGAN(width=config.width, num_blocks=config.num_blocks)
    cyclegan.train_cyclegan(
        expected, a, b, dataclasses.replace(config, cycles=()), CPU, seed=2, progress=False
    )
    for key, value in expected.state_dict().items():
        assert torch.equal(no_cycle.state_dict()[key], value), key
    for bad in ({}, {"lambda_cycles": 0.0}):
        with pytest.raises(ValueError, match="config fields"):
            part1.ablation(2, CPU, **bad)


def test_an_average_of_the_generators_leaves_the_game_unchanged():
    """With ema_decay the discriminators train exactly as without (they play the live
    generators); the average follows a ← d·a + (1 − d)·p after every generator step, starting
    from the initial weights; each evaluation scores both; and training returns the average."""
    a, b = torch.rand(8, 3, 16, 16), torch.rand(8, 3, 16, 16)
    runs, histories, initial = [], [], []
    for decay in (None, 0.5):
        torch.manual_seed(0)
        model, config = _tiny(steps=4)
        initial.append(model.g.stem[1].weight.mean().item())
        history = cyclegan.train_cyclegan(
            model,
            a,
            b,
            config,
            CPU,
            seed=1,
            progress=False,
            ema_decay=decay,
            evaluate=lambda step, m=model: {"g_mean": m.g.stem[1].weight.mean().item()},
            eval_every=1,
        )
        runs.append(model.state_dict())
        histories.append(history.steps)
    plain, averaged = runs
    for name, value in plain.items():
        if name.startswith(("d_a.", "d_b.")):
            assert torch.equal(value, averaged[name]), name
    # the live generators' evaluations are those of the run without an average
    assert histories[1]["eval_raw_g_mean"] == histories[0]["eval_g_mean"]
    expected, average = [], initial[1]
    for live in histories[1]["eval_raw_g_mean"]:  # a mean is linear: it averages like a weight
        average = 0.5 * average + 0.5 * live
        expected.append(average)
    assert histories[1]["eval_g_mean"] == pytest.approx(expected, abs=1e-7)
    assert averaged["g.stem.1.weight"].mean().item() == pytest.approx(expected[-1], abs=1e-7)
