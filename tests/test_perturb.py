"""Perturbations that keep what an image shows (cmlib.perturb)."""

from __future__ import annotations

import pytest
import torch

from cmlib import perturb


def _images(b=5, c=3, s=6):
    return torch.rand(b, c, s, s, generator=torch.Generator().manual_seed(0))


def test_shift_moves_each_image_by_its_own_step_and_repeats_the_edge():
    x = _images(2)
    out = perturb.shift(x, torch.tensor([1, 0]), torch.tensor([0, -1]))
    assert torch.equal(out[0, :, 1:], x[0, :, :-1])  # down by one
    assert torch.equal(out[0, :, 0], x[0, :, 0])  # the top row repeated into the gap
    assert torch.equal(out[1, :, :, :-1], x[1, :, :, 1:])  # left by one
    assert torch.equal(out[1, :, :, -1], x[1, :, :, -1])
    assert torch.equal(perturb.shift(x, 0, 0), x)


def test_shift_rejects_steps_over_one_pixel():
    with pytest.raises(ValueError, match="dy must be in"):
        perturb.shift(_images(), 2, 0)


def test_box_blur_is_the_mean_of_the_neighbourhood():
    x = _images(1, 1, 5)
    out = perturb.box_blur(x)
    assert out[0, 0, 2, 2] == pytest.approx(x[0, 0, 1:4, 1:4].mean().item())
    # a flat image is unchanged, edges included (they are repeated, not zero-padded)
    flat = torch.full((1, 3, 4, 4), 0.7)
    assert torch.allclose(perturb.box_blur(flat), flat)
    with pytest.raises(ValueError, match="odd"):
        perturb.box_blur(x, 2)


def test_noise_has_the_asked_strength_and_stays_in_range():
    x = torch.full((64, 3, 8, 8), 0.5)
    out = perturb.add_noise(x, 0.05, torch.Generator().manual_seed(0))
    assert (out - x).std().item() == pytest.approx(0.05, rel=0.05)
    assert perturb.add_noise(torch.ones(2, 3, 4, 4), 0.3).max() <= 1.0
    per_image = perturb.add_noise(x[:2], torch.tensor([0.0, 0.1]))
    assert torch.equal(per_image[0], x[0]) and not torch.equal(per_image[1], x[1])
    with pytest.raises(ValueError, match="std must be"):
        perturb.add_noise(x, torch.tensor([0.1, 0.2]))


def test_content_keeping_is_reproducible_and_mixes_its_perturbations():
    x = _images(200)
    a = perturb.content_keeping(x, torch.Generator().manual_seed(3))
    b = perturb.content_keeping(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    changed = (a - x).abs().flatten(1).amax(1) > 0
    assert 0.5 < changed.float().mean() < 1.0  # most images perturbed, some left alone
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(perturb.content_keeping(x, p=0.0), x)


def test_the_fixed_perturbations_are_about_a_generators_error():
    """On ShapesWorld photos each test perturbation moves pixels by 0.02-0.06 on average: about
    a generator's error (G's MAE to the true sketch is 0.023-0.027), neither nothing nor a
    different image."""
    from cmlib.cyclegan import photo_sketch_pairs

    photos, _, _ = photo_sketch_pairs("test", 64, 16)
    for name, f in perturb.PERTURBATIONS.items():
        out = f(photos, torch.Generator().manual_seed(0))
        assert out.shape == photos.shape, name
        assert 0.015 < (out - photos).abs().mean().item() < 0.06, name


def test_shift_rejects_what_is_not_whole_steps_one_per_image():
    x = _images(3)
    with pytest.raises(TypeError, match="whole pixels"):
        perturb.shift(x, 0.7, 0)
    with pytest.raises(ValueError, match="one per image"):
        perturb.shift(x, torch.tensor([1, 0]), 0)
    with pytest.raises(TypeError, match="CPU torch.Generator"):
        perturb.content_keeping(x, generator="seed")


def test_bad_input_is_named():
    with pytest.raises(TypeError):
        perturb.content_keeping([[0.0]])
    with pytest.raises(ValueError, match="p"):
        perturb.content_keeping(_images(), p=1.5)


def test_readings_score_the_clean_images_and_each_perturbation_with_its_seed():
    images = torch.rand(4, 3, 8, 8)
    seen = []

    def read(x):
        seen.append(x)
        return x.mean()

    out = perturb.readings(read, images, seed=3)
    assert list(out) == ["clean", *perturb.PERTURBATIONS]
    assert torch.equal(seen[0], images) and out["clean"] == pytest.approx(images.mean().item())
    for x, (name, apply) in zip(seen[1:], perturb.PERTURBATIONS.items()):
        assert torch.equal(x, apply(images, torch.Generator().manual_seed(3))), name
    assert perturb.readings(read, images, seed=3) == out  # the same draws again
    with pytest.raises(TypeError, match="read"):
        perturb.readings(0.5, images)
    with pytest.raises(ValueError, match="seed"):
        perturb.readings(read, images, seed=-1)
