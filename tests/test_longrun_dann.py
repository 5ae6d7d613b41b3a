"""Chapter 06 part 2's long run (``ch06-dann``), and the evaluation hook of ``train_dann``."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cmlib.alignment import DomainAdaptationNet, train_dann
from cmlib.longrun import dann, recipes

CPU = torch.device("cpu")

TINY = {
    **dann.CONFIG,
    "num_per_domain": 40,
    "num_steps": 6,
    "batch_size": 8,
    "num_test": 20,
    "eval_every": 4,
}


@pytest.fixture
def tiny_dann(monkeypatch, tmp_path):
    monkeypatch.setenv("CMLIB_MODELS_DIR", str(tmp_path))
    tiny = dataclasses.replace(dann.RECIPE, config=TINY)
    monkeypatch.setattr(recipes, "recipes", lambda: {tiny.name: tiny})
    return tiny


def test_dann_recipe_trains_both_models_ships_and_loads_back(tiny_dann):
    before = torch.random.get_rng_state()
    model, manifest = recipes.run_recipe("ch06-dann", 0, CPU, progress=False)
    assert torch.equal(before, torch.random.get_rng_state()), "torch's random state changed"
    metrics = manifest["metrics"]
    assert metrics["gain"] == pytest.approx(
        metrics["dann sketch color+shape"] - metrics["source_only sketch color+shape"]
    )
    assert {"source_only photo color+shape", "dann sketch color"} <= set(metrics)
    # evaluated after steps 4 and 6 (the last), for each model
    assert manifest["curve"]["step"] == [4, 6]
    assert set(manifest["curve"]) == {
        "step",
        "source_only sketch color+shape",
        "dann sketch color+shape",
    }
    assert manifest["curve"]["dann sketch color+shape"][-1] == pytest.approx(
        metrics["dann sketch color+shape"]
    )
    loaded, again = recipes.load_long_run("ch06-dann", 0, CPU)
    assert again == manifest
    assert dann.evaluate(loaded, again["config"], 0, CPU) == pytest.approx(metrics)


def test_both_models_start_from_the_same_weights():
    torch.manual_seed(3)
    bundle = dann.build(TINY)
    for (k, a), (_, b) in zip(
        bundle["source_only"].state_dict().items(), bundle["dann"].state_dict().items()
    ):
        assert torch.equal(a, b), k


def test_loading_a_long_run_leaves_the_random_state_alone(tiny_dann):
    recipes.run_recipe("ch06-dann", 0, CPU, progress=False)
    before = torch.random.get_rng_state()
    recipes.load_long_run("ch06-dann", 0, CPU)
    assert torch.equal(before, torch.random.get_rng_state())


def _data(n=24):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, 16, 16, generator=g)
    attrs = {
        "color": torch.randint(0, 6, (n,), generator=g),
        "shape": torch.randint(0, 3, (n,), generator=g),
    }
    return images, attrs, torch.rand(n, 3, 16, 16, generator=g)


def _trained(evaluate=None, eval_every=0):
    images, attrs, target = _data()
    torch.manual_seed(0)
    model = DomainAdaptationNet(16)
    history = train_dann(
        model,
        images,
        attrs,
        target,
        5,
        CPU,
        batch_size=8,
        seed=0,
        entropy_weight=0.1,
        progress=False,
        evaluate=evaluate,
        eval_every=eval_every,
    )
    return model, history


@pytest.mark.parametrize(
    ("num_steps", "eval_every", "expected"), [(5, 2, [2, 4, 5]), (4, 2, [2, 4])]
)
def test_evaluating_during_training_does_not_change_the_run(num_steps, eval_every, expected):
    """Scored every ``eval_every`` steps and once after the last (also when it divides the
    steps, as 4,000 and 500 do), in eval mode, under a forked random state: the trained weights
    and torch's random state come out as without the evaluations."""
    images, attrs, target = _data()
    calls = []

    def run(evaluate=None):
        torch.manual_seed(0)
        model = DomainAdaptationNet(16)

        def scored(step):
            assert not model.training, "evaluated in train mode"
            calls.append(step)
            model(images[:4])  # batch norm in train mode would update its running statistics
            torch.rand(3)  # the random state is forked: this draw must not reach training
            return {"score": float(step)}

        history = train_dann(
            model,
            images,
            attrs,
            target,
            num_steps,
            CPU,
            batch_size=8,
            seed=0,
            entropy_weight=0.1,
            progress=False,
            evaluate=scored if evaluate else None,
            eval_every=eval_every,
        )
        return model, history, torch.random.get_rng_state()

    plain, _, plain_state = run()
    scored, history, scored_state = run(evaluate=True)
    assert calls == expected
    assert history.steps["eval_step"] == expected
    assert history.steps["eval_score"] == [float(s) for s in expected]
    for (k, a), (_, b) in zip(plain.state_dict().items(), scored.state_dict().items()):
        assert torch.equal(a, b), k
    assert torch.equal(plain_state, scored_state)
    assert scored.training == plain.training  # the mode fit leaves, evaluation or not


def test_train_dann_checks_its_evaluation_arguments():
    images, attrs, target = _data()
    with pytest.raises(TypeError, match="evaluate must be callable"):
        train_dann(DomainAdaptationNet(16), images, attrs, target, 2, CPU, evaluate=3)
    with pytest.raises(ValueError, match="eval_every"):
        train_dann(DomainAdaptationNet(16), images, attrs, target, 2, CPU, eval_every=-1)
