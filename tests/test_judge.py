"""Tests for cmlib.judge: the attribute judge, prompt fidelity and diversity."""

from __future__ import annotations

import pytest
import torch

from cmlib.data.shapes import HELDOUT_PAIRS
from cmlib.data.shapes.prompt_text import evaluation_prompts
from cmlib.data.shapes.text import shapes_vocab
from cmlib.data.shapes.world import COLORS, SHAPES
from cmlib.generation import prompts
from cmlib.generation.cvae import CVAE
from cmlib.generation.generative import fidelity_over
from cmlib.judge import (
    AttributeJudge,
    diversity,
    judge_accuracy,
    prompt_fidelity,
    real_diversity,
    train_judge,
)

COND = 8


# ------------------------------------------------------------ judge
def test_judge_and_fidelity(shapes):
    x, attrs = shapes
    judge = AttributeJudge(width=8)
    history = train_judge(judge, x, attrs, 3, torch.device("cpu"), batch_size=16, progress=False)
    assert history.train_loss[-1] < history.train_loss[0]
    acc = judge_accuracy(judge, x, attrs)
    assert set(acc) == {"color", "shape", "size", "position", "color+shape"}
    fid = prompt_fidelity(judge, x[:8], "red", "circle", size="large")
    assert set(fid) == {"color", "shape", "color+shape", "size"}
    assert 0 <= fid["color+shape"] <= min(fid["color"], fid["shape"])


def test_an_augmented_judge_trains_on_perturbed_copies_reproducibly(shapes, monkeypatch):
    from cmlib import perturb

    x, attrs = shapes
    seen = []
    real = perturb.content_keeping
    monkeypatch.setattr(perturb, "content_keeping", lambda b, g: seen.append(b) or real(b, g))
    states = []
    for augment in (True, True, False):
        torch.manual_seed(0)
        judge = AttributeJudge(width=4)
        train_judge(
            judge, x, attrs, 1, torch.device("cpu"), batch_size=16, progress=False, augment=augment
        )
        states.append(judge.state_dict())
    assert len(seen) == 2 * -(-len(x) // 16)  # every batch of the two augmented runs
    for name, value in states[0].items():
        assert torch.equal(value, states[1][name]), name  # the same perturbations each time
    assert any(not torch.equal(v, states[2][k]) for k, v in states[0].items())
    with pytest.raises(TypeError, match="augment"):
        train_judge(AttributeJudge(width=4), x, attrs, 1, torch.device("cpu"), augment="yes")


def test_evaluation_prompts_and_fidelity_over(shapes):
    sets = evaluation_prompts(seed=0)
    assert [len(sets[k]) for k in ("seen", "seen, full", "held-out", "paraphrase")] == [
        15,
        75,
        3,
        36,
    ]
    assert all(p[3] is not None and p[4] is not None for p in sets["seen, full"])
    assert {(c, s) for _, c, s, _, _ in sets["held-out"]} == set(HELDOUT_PAIRS)
    x, attrs = shapes
    judge = AttributeJudge(image_size=32, width=4)
    enc = prompts.BagOfWordsEncoder(shapes_vocab(), COND)
    model = CVAE(COND, latent_dim=4, width=8)
    scores = fidelity_over(judge, model, enc, sets["seen, full"][:2], n=3)
    assert set(scores) == {"color", "shape", "color+shape", "size", "position"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    with pytest.raises(ValueError, match="at least one"):
        fidelity_over(judge, model, enc, [], n=3)


class ScriptedJudge:
    """A judge whose reading of each image is written in the image: channel 0 is the colour's
    index, channel 1 the shape's (so the expected fidelity can be counted by hand)."""

    def predict(self, images):
        return {"color": images[:, 0, 0, 0].long(), "shape": images[:, 1, 0, 0].long()}


def test_fidelity_over_is_the_mean_over_prompts_of_each_prompts_rates(monkeypatch):
    red, blue = COLORS.index("red"), COLORS.index("blue")
    circle, square = SHAPES.index("circle"), SHAPES.index("square")
    # what the "generator" draws for each prompt: 3 samples, (colour, shape) as the judge reads them
    drawn = {
        "a red circle": [(red, circle), (red, square), (red, square)],
        "a blue square": [(blue, square), (red, square), (blue, square)],
    }
    calls = []

    def fake_generate(model, encoder, text, n, seed=None, temperature=1.0):
        calls.append((text, n, seed, temperature))
        images = torch.zeros(n, 3, 2, 2)
        for i, (color, shape) in enumerate(drawn[text][:n]):
            images[i, 0], images[i, 1] = color, shape
        return images

    monkeypatch.setattr("cmlib.generation.generative.generate", fake_generate)
    prompts_ = [("a red circle", "red", "circle", None, None),
                ("a blue square", "blue", "square", None, None)]  # fmt: skip
    scores = fidelity_over(ScriptedJudge(), None, None, prompts_, n=3, seed=2, temperature=0.5)
    # red circle: colour 3/3, shape 1/3, both 1/3; blue square: colour 2/3, shape 3/3, both 2/3
    assert scores == pytest.approx(
        {"color": (1 + 2 / 3) / 2, "shape": (1 / 3 + 1) / 2, "color+shape": (1 / 3 + 2 / 3) / 2}
    )
    # each prompt gets its own noise seed, derived from the seed and its place in the list
    assert calls == [("a red circle", 3, 2000, 0.5), ("a blue square", 3, 2001, 0.5)]


def test_real_diversity():
    images = torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    attrs = {"color": torch.tensor([0, 0, 0, 1, 1]), "shape": torch.tensor([2, 2, 1, 2, 2])}
    color, shape = COLORS[0], SHAPES[2]
    assert real_diversity(images, attrs, color, shape) == diversity(images[:2])
    assert real_diversity(images, attrs, COLORS[1], shape, n=2) == diversity(images[3:])
    with pytest.raises(ValueError, match="fewer than two"):
        real_diversity(images, attrs, color, SHAPES[1])


def test_diversity():
    same = torch.zeros(5, 3, 8, 8)
    assert diversity(same) == 0.0
    assert diversity(torch.rand(5, 3, 8, 8)) > 0.1
    with pytest.raises(ValueError):
        diversity(torch.rand(1, 3, 8, 8))


def test_reference_judge_recipe_checks_its_input():
    from cmlib import judge as judge_module

    assert judge_module.reference_judge_name(3) == "ch04-judge-seed3"
    with pytest.raises(ValueError, match="seed"):
        judge_module.reference_judge_name(-1)
    with pytest.raises(TypeError, match="config"):
        judge_module.build_reference_judge(None)
    with pytest.raises(ValueError, match="lacks"):
        judge_module.build_reference_judge({"image_size": 16})
    with pytest.raises(TypeError, match="AttributeJudge"):
        judge_module.reference_judge_scores(torch.nn.Linear(2, 2), judge_module.REFERENCE_CONFIG, 0)
    judge = judge_module.AttributeJudge(16, 4)
    with pytest.raises(ValueError, match="seed"):
        judge_module.reference_judge_scores(judge, judge_module.REFERENCE_CONFIG, -1)


class _ReadsWhatIsNotBlank(torch.nn.Module):
    """A stand-in judge: the true labels for an image with any ink, class 0 for a blank one."""

    def __init__(self, attrs):
        super().__init__()
        self.attrs = attrs

    def predict(self, images):
        inked = images.flatten(1).abs().sum(1) > 0
        return {k: torch.where(inked, v[: len(images)], 0) for k, v in self.attrs.items()}


def test_reference_judge_scores_apply_each_perturbation_under_its_name(monkeypatch):
    from cmlib import judge as judge_module
    from cmlib.data.shapes.tasks import one_object_photos

    config = {**judge_module.REFERENCE_CONFIG, "num_heldout": 24, "num_kept": 8}
    _, attrs = one_object_photos("test", judge_module.REFERENCE_TEST, 16, 0)
    stand_in = _ReadsWhatIsNotBlank(attrs)
    monkeypatch.setattr(judge_module, "_check_judge", lambda judge: None)
    monkeypatch.setattr(
        judge_module.perturb,
        "PERTURBATIONS",
        {
            "noise": lambda x, g: x,
            "blur": lambda x, g: torch.zeros_like(x),
            "shift": lambda x, g: x,
        },
    )
    scores = judge_module.reference_judge_scores(stand_in, config, 0)
    assert scores["clean"] == scores["noise"] == scores["shift"] == 1.0
    assert scores["blur"] < 0.2  # blanked: class 0 for colour and shape, about 1 in 15
