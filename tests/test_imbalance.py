"""Chapter 09 part 3: the imbalance task, the late-fusion model, OGM-GE and the other repairs."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from conftest import chapter_solution

from cmlib import imbalance
from cmlib.exercises import check
from cmlib.train import fit_steps

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def small():
    return imbalance.load_imbalance_split("train", 400, seed=1)


def test_the_split_hides_some_images_and_miscaptions_others(small):
    assert 0.1 < 1 - small.visible.float().mean() < 0.3  # blank_images 0.2
    assert 0.02 < 1 - small.caption_right.float().mean() < 0.1  # wrong_captions 0.05
    blank = small.images[~small.visible]  # grey, under the same pixel noise as the rest
    assert (blank.mean(dim=(1, 2, 3)) - 0.5).abs().max() < 0.02
    assert 0.1 < blank.std() < 0.2  # image_noise 0.15
    clean = imbalance.load_imbalance_split("train", 40, image_noise=0.0, seed=1)
    assert (clean.images[~clean.visible] == 0.5).all()
    named = small.tokens[:, 0] * 3 + (small.tokens[:, 1] - len(imbalance.COLORS))
    assert torch.equal(named == small.labels, small.caption_right)
    assert imbalance.class_name(0) == "red circle"
    assert imbalance.class_name(imbalance.NUM_CLASSES - 1) == "orange triangle"
    with pytest.raises(ValueError):
        imbalance.load_imbalance_split("train", 10, blank_images=1.0)
    with pytest.raises(ValueError):
        imbalance.class_name(imbalance.NUM_CLASSES)


def test_the_fused_logits_are_the_sum_of_the_two_parts(small):
    model = imbalance.LateFusionClassifier()
    fused, image_part, text_part = model(small.images[:5], small.tokens[:5])
    assert fused.shape == (5, imbalance.NUM_CLASSES)
    assert torch.allclose(fused, image_part + text_part)


def test_ogm_slows_the_leader_only_and_by_the_papers_formula():
    labels = torch.tensor([0, 1])
    sure = torch.tensor([[5.0, 0.0], [0.0, 5.0]])
    unsure = torch.zeros(2, 2)  # 0.5 on each class
    image_k, text_k = imbalance.ogm_coefficients(sure, unsure, labels, alpha=0.5)
    p = 1 / (1 + math.exp(-5))
    assert text_k == 1.0
    assert image_k == pytest.approx(1 - math.tanh(0.5 * 2 * p / 1.0))  # eq. 10: 1 - tanh(α ρ)
    assert imbalance.ogm_coefficients(unsure, sure, labels, 0.5) == pytest.approx((1.0, image_k))
    tie = imbalance.ogm_coefficients(unsure, unsure, labels, 0.5)  # the paper's code: text
    assert tie == pytest.approx((1.0, 1 - math.tanh(0.5)))
    assert imbalance.ogm_coefficients(sure, unsure, labels, 0.0) == (1.0, 1.0)
    with pytest.raises(ValueError):
        imbalance.ogm_coefficients(sure, unsure[:1], labels, 0.5)


def test_modulation_scales_one_branchs_gradients_and_leaves_the_other(small):
    torch.manual_seed(0)
    model = imbalance.LateFusionClassifier()
    batch = (small.images[:16], small.tokens[:16], small.labels[:16])
    modulation = imbalance.GradientModulation(alpha=0.5, noise=False)
    modulation.step(model, batch)["loss"].backward()
    before = {name: p.grad.clone() for name, p in model.named_parameters()}
    modulation.coefficients = (0.25, 1.0)
    modulation.after_backward(model)
    for name, p in model.named_parameters():
        factor = 0.25 if name.startswith("image_") else 1.0
        assert torch.allclose(p.grad, factor * before[name]), name
    noisy = imbalance.GradientModulation(generator=torch.Generator().manual_seed(0))
    noisy.coefficients = (1.0, 1.0)
    noisy.after_backward(model)
    weight = model.image_encoder.project.weight
    assert not torch.allclose(weight.grad, 0.25 * before["image_encoder.project.weight"])


def test_fit_calls_after_backward_between_backward_and_step():
    model = torch.nn.Linear(2, 1)
    seen = []

    def zero_the_gradients(m):
        seen.append(m.weight.grad.abs().sum().item())
        m.weight.grad.zero_()
        m.bias.grad.zero_()

    start = copy.deepcopy(model.state_dict())
    batches = iter([(torch.ones(4, 2),)] * 3)
    fit_steps(
        model,
        batches,
        torch.optim.SGD(model.parameters(), lr=0.1),
        3,
        CPU,
        step_fn=lambda m, b: m(b[0]).pow(2).mean() + 1,
        after_backward=zero_the_gradients,
        progress=False,
    )
    assert len(seen) == 3 and seen[0] > 0
    assert all(torch.equal(model.state_dict()[k], v) for k, v in start.items())


def test_one_modality_alone_leaves_the_other_tower_untrained(small):
    torch.manual_seed(0)
    untrained = imbalance.LateFusionClassifier().state_dict()
    model, history = imbalance.train_imbalance_model(
        small, CPU, modalities=("image",), num_steps=3, batch_size=16, seed=0, progress=False
    )
    for name, value in model.state_dict().items():
        same = torch.equal(value, untrained[name])
        assert same == name.startswith("text_encoder"), name
    assert (model.text_head.weight == 0).all()  # the caption's part of the logits is 0
    assert len(history.steps["image margin"]) == 3
    with pytest.raises(ValueError, match="both modalities"):
        imbalance.train_imbalance_model(small, CPU, modalities=("text",), repair="ogm-ge")
    with pytest.raises(ValueError):
        imbalance.train_imbalance_model(small, CPU, repair="dropout everything")
    with pytest.raises(TypeError):
        imbalance.train_imbalance_model("train", CPU)


@pytest.mark.parametrize("repair", imbalance.REPAIRS)
def test_every_repair_trains_and_evaluates(small, repair):
    model, history = imbalance.train_imbalance_model(
        small, CPU, repair=repair, num_steps=2, batch_size=16, seed=0, progress=False
    )
    assert all(math.isfinite(loss) for loss in history.steps["loss"])
    if repair == "ogm-ge":
        assert len(history.steps["image coefficient"]) == 2
    result = imbalance.evaluate(model, small, small, CPU)
    assert set(result) == {
        "fused",
        "image only (text missing)",
        "text only (image missing)",
        "image colour",
        "image shape",
        "image probe",
        "text probe",
    }
    assert all(0.0 <= value <= 1.0 for value in result.values())


def test_the_chapters_solution_passes_exercise_9_5():
    solution = chapter_solution(
        "09_optimisation_imbalance", "def ogm_coefficients(", "9.5", "ogm_coefficients"
    )
    assert check("9.5", solution, quiet=True, raise_on_failure=False)
