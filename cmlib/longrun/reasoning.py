"""The reasoning chapter's scene tagger and reasoner, trained longer (``ch08-reasoning``).

One bundle, two parts, trained in order:

1. the scene tagger (:mod:`cmlib.reasoning.perception`): a cell tagger on a 12 × 12 grid, on
   ``tagger_images`` training scenes for ``tagger_epochs`` epochs, then frozen. The
   neuro-symbolic model reads scene graphs off its tags;
2. a neural reasoner (:func:`cmlib.reasoning.models.make_reasoner`, ``reasoner``) on the frozen
   tagger's feature grids of ``num_train`` training questions, for ``num_steps`` steps.

Both are scored on ``num_test`` test questions of 3–6 objects, and on as many with 7–8 objects
("beyond", counting past what training showed). What each configuration reached is in
``chapters/notes/models.md``.

``ch08-reasoning-generalisation`` (:data:`GENERALISATION`) is the same bundle trained on a
CoGenT condition without one question family, for chapter 08 part 4. The other neural
reasoners, which read this recipe's shipped tagger, are in :mod:`cmlib.longrun.reasoners`.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn

from .. import backbone, transformer, vision
from .. import train as train_module
from ..data import reasoning as reasoning_data
from ..data.reasoning import (
    ANSWERS,
    CONDITIONS,
    FAMILIES,
    ReasoningDataset,
    encode_items,
    question_vocab,
)
from ..data.reasoning.questions import check_families
from ..reasoning import models as reasoning_models
from ..reasoning import parser, perception, symbolic, training
from .base import SHAPES_WORLD_CODE, Recipe, TrainResult

CONFIG: dict[str, Any] = {
    "image_size": 48,
    "tagger_width": 16,
    "tagger_images": 6000,
    "tagger_epochs": 6,
    "reasoner": "cross_attention",
    "dim": 64,
    "depth": 2,
    "patch_size": 2,
    "num_train": 150000,
    "num_steps": 24000,
    "batch_size": 64,
    "lr": 1e-3,
    "eval_every": 2000,
    "num_test": 2000,
    "beyond_objects": [7, 8],
}


def build(config: dict[str, Any]) -> nn.ModuleDict:
    """``tagger`` (the scene tagger) and ``reasoner`` (a neural reasoner on its grid)."""
    tagger = perception.build_scene_tagger(config["image_size"], config["tagger_width"])
    reasoner = reasoner_for(config, tagger.encoder.out_channels, tagger.encoder.grid_size)
    return nn.ModuleDict({"tagger": tagger, "reasoner": reasoner})


def reasoner_for(config: dict[str, Any], channels: int, side: int) -> nn.Module:
    """The config's reasoner on a grid of ``channels`` × ``side`` × ``side``."""
    return reasoning_models.make_reasoner(
        config["reasoner"],
        len(question_vocab()),
        len(ANSWERS),
        channels,
        side,
        config["dim"],
        config["depth"],
        config["patch_size"],
        config.get("pool"),  # the Relation Network's alone (ch08-reasoning's config has none)
    )


def split(config: dict[str, Any], name: str, size: int, seed: int, chunk: int = 1000, **options):
    """``(items, images)``: ``size`` items of split ``name`` and their images ``(N, 3, S, S)``,
    rendered ``chunk`` at a time. ``options`` go to :class:`ReasoningDataset` (e.g.
    ``num_objects``)."""
    data = ReasoningDataset(name, size, seed=seed, image_size=config["image_size"], **options)
    items = data.items(range(size))
    images = torch.cat(
        [
            torch.from_numpy(data.images(items[lo : lo + chunk])).permute(0, 3, 1, 2)
            for lo in range(0, size, chunk)
        ]
    )
    return items, images


def data_options(config: dict[str, Any]) -> dict[str, Any]:
    """What ``config`` restricts its training and i.i.d. test to, as :class:`ReasoningDataset`
    arguments: a CoGenT ``condition`` and the families left after ``held_out_families``
    (nothing for ``ch08-reasoning``, which sees every pair and family)."""
    options: dict[str, Any] = {}
    if config.get("condition"):
        options["condition"] = config["condition"]
    if config.get("held_out_families"):
        held = check_families(config["held_out_families"])
        options["families"] = [f for f in FAMILIES if f not in held]
    return options


def training_grids(config: dict[str, Any], seed: int, encoder, device, chunk: int = 2000):
    """``(items, grids)`` of the ``num_train`` training questions: the frozen encoder's grids in
    float16, computed a chunk of images at a time (the images themselves are never all held)."""
    data = ReasoningDataset(
        "train",
        config["num_train"],
        seed=seed,
        image_size=config["image_size"],
        **data_options(config),
    )
    items = data.items(range(config["num_train"]))
    return items, perception.scene_grids(encoder, data, items, device, chunk)


def test_sets(config: dict[str, Any], seed: int, size: int | None = None) -> dict[str, tuple]:
    """``{name: (items, images)}`` of ``num_test`` items each, or their first ``size`` (items
    depend on their index alone): the i.i.d. ``test`` (3–6 objects) and ``beyond`` (7–8), both
    under the config's :func:`data_options`; with a CoGenT condition, ``cogent`` (the other
    condition's colour–shape pairs); with held-out families, ``closure`` (those families)."""
    n = config["num_test"] if size is None else min(size, config["num_test"])
    options = data_options(config)
    beyond = tuple(config["beyond_objects"])
    sets = {
        "test": split(config, "test", n, seed, **options),
        "beyond": split(config, "test", n, seed, num_objects=beyond, **options),
    }
    if "condition" in options:
        other = CONDITIONS[1 - CONDITIONS.index(options["condition"])]
        sets["cogent"] = split(config, "test", n, seed, **{**options, "condition": other})
    if "families" in options:
        held = list(check_families(config["held_out_families"]))
        sets["closure"] = split(config, "test", n, seed, **{**options, "families": held})
    return sets


def _neural_scores(model, grids, items, device) -> dict[str, float]:
    questions, answers, families = encode_items(items)
    predicted = training.predict_answers(model["reasoner"], grids, questions, device)
    return training.accuracy_by_family(predicted, answers, families)


def train(
    model: nn.ModuleDict, config: dict[str, Any], seed: int, device: torch.device, progress: bool
) -> TrainResult:
    """The tagger on the first ``tagger_images`` training scenes, then the reasoner on the
    tagger's grids of ``num_train`` training questions, scored on the test every
    ``eval_every`` steps."""
    n = config["tagger_images"]
    items, images = split(config, "train", n, seed, **data_options(config))  # the first n
    tagger = model["tagger"]
    perception.train_scene_tagger(
        tagger,
        images,
        [i.scene for i in items],
        config["tagger_epochs"],
        device,
        seed=seed,
        progress=progress,
    )
    del images
    return run_reasoner(model["reasoner"], tagger, config, seed, device, progress)


def run_reasoner(reasoner, tagger, config, seed, device, progress) -> TrainResult:
    """The reasoner on the frozen ``tagger``'s grids of ``num_train`` training questions,
    scored on the i.i.d. test every ``eval_every`` steps."""
    items, grids = training_grids(config, seed, tagger.encoder, device)
    questions, answers, _ = encode_items(items)
    test_items, test_images = split(  # the i.i.d. test only
        config, "test", config["num_test"], seed, **data_options(config)
    )
    test_grids = backbone.grid_features(tagger.encoder, test_images, device)
    bundle = {"reasoner": reasoner}
    history = training.train_reasoner(
        reasoner,
        grids,
        questions,
        answers,
        config["num_steps"],
        device,
        config["batch_size"],
        config["lr"],
        seed=seed,
        eval_fn=lambda m: {
            "accuracy": _neural_scores(bundle, test_grids, test_items, device)["all"]
        },
        eval_every=config["eval_every"],
        progress=progress,
    )
    every = config["eval_every"]
    curve = {
        "step": [every * (k + 1) for k in range(len(history.metrics))],
        "accuracy": [m["accuracy"] for m in history.metrics],
    }
    return TrainResult(steps=config["num_steps"], curve=curve)


#: The drift test's subset: the first this many items of each test set.
FINGERPRINT_ITEMS = 400


def _scores(
    model, test: dict[str, tuple], device, prefix: str = "", symbolic_too: bool = True
) -> dict[str, float]:
    reasoner = symbolic.NeuroSymbolicReasoner(model["tagger"], device) if symbolic_too else None
    grid_size = model["tagger"].encoder.grid_size
    out = {}
    for name, (items, images) in test.items():
        grids = backbone.grid_features(model["tagger"].encoder, images, device)
        for key, value in _neural_scores(model, grids, items, device).items():
            out[f"{prefix}{name}_neural_{key}"] = value
        if not symbolic_too:
            continue
        graphs = reasoner.see(images)
        answers = [symbolic.run_program(i.program, g)[0] for i, g in zip(items, graphs)]
        ns = training.accuracy_by_family(
            answers, [i.answer for i in items], [i.family for i in items]
        )
        for key, value in ns.items():
            out[f"{prefix}{name}_symbolic_{key}"] = value
        parse = perception.tag_accuracy(graphs, [i.scene for i in items], grid_size)
        for key, value in parse.items():
            out[f"{prefix}{name}_parse_{key}"] = value
    return out


def fingerprint(
    model: nn.ModuleDict, config: dict[str, Any], seed: int, device: torch.device
) -> dict[str, float]:
    """Overall accuracies of both reasoners on the first :data:`FINGERPRINT_ITEMS` items of each
    test set (seconds, for the drift test)."""
    model.to(device).eval()
    return fingerprint_bundle(model, test_sets(config, seed, FINGERPRINT_ITEMS), device)


def fingerprint_bundle(model, first: dict[str, tuple], device, symbolic_too: bool = True):
    """The overall accuracies among :func:`_scores` of ``model`` (``tagger`` and ``reasoner``)
    on ``first``, the first items of each test set, keyed ``first<N>_<set>_<who>_all``."""
    prefix = f"first{FINGERPRINT_ITEMS}_"
    scores = _scores(model, first, device, prefix, symbolic_too)
    return {k: v for k, v in scores.items() if k.endswith(("neural_all", "symbolic_all"))}


def evaluate(
    model: nn.ModuleDict, config: dict[str, Any], seed: int, device: torch.device
) -> dict[str, float]:
    """On each test set: the reasoner's accuracy (overall and per family), the neuro-symbolic
    model's, and how well the tagger's parse matches the scenes; and the fingerprint."""
    model.to(device).eval()
    return score_bundle(model, config, seed, device)


def score_bundle(bundle, config, seed, device, symbolic_too: bool = True) -> dict[str, float]:
    """Every metric of ``bundle`` (``tagger`` and ``reasoner``) on ``config``'s test sets, and
    its fingerprint; the neuro-symbolic model's and the parse's too with ``symbolic_too``."""
    test = test_sets(config, seed)  # rendered once, for the scores and the fingerprint
    first = {
        name: (items[:FINGERPRINT_ITEMS], images[:FINGERPRINT_ITEMS])
        for name, (items, images) in test.items()
    }
    return {
        **_scores(bundle, test, device, symbolic_too=symbolic_too),
        **fingerprint_bundle(bundle, first, device, symbolic_too),
    }


RECIPE = Recipe(
    name="ch08-reasoning",
    summary="the reasoning chapter's scene tagger and neural reasoner, on CLEVR-style questions",
    config=CONFIG,
    build=build,
    train=train,
    evaluate=evaluate,
    code=[
        *SHAPES_WORLD_CODE,
        reasoning_data,
        transformer,
        perception,
        reasoning_models,
        training,
        symbolic,
        parser,
        backbone,
        vision,
        train_module,
        sys.modules[__name__],
    ],
    seeds=(0,),
    fingerprint=fingerprint,
)

#: Chapter 08 part 4's long run: ``ch08-reasoning`` trained without two things it is then tested
#: on. Condition A's colour–shape pairs only (tagger and reasoner alike), so condition B's test
#: asks about pairs never seen (CoGenT); and no ``count_relate`` question, whose parts (filter,
#: relate, count) all appear in other families, so its test is a new combination (CLOSURE).
GENERALISATION = Recipe(
    name=f"{RECIPE.name}-generalisation",
    summary="ch08-reasoning trained on CoGenT condition A without count_relate questions",
    config={**CONFIG, "condition": "A", "held_out_families": ["count_relate"]},
    build=build,
    train=train,
    evaluate=evaluate,
    code=RECIPE.code,
    seeds=(0,),
    fingerprint=fingerprint,
    half=True,  # models/ holds 25 MB for the whole course
)
