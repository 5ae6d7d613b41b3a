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

The other neural reasoners (:func:`reasoner_recipe`: FiLM, the Relation Network, the
single-stream transformer) are recipes of their own that read the *shipped* tagger of
``ch08-reasoning`` for the same seed: the same grids of the same questions, so that the
reasoners differ and nothing else. They ship the reasoner alone.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn

from .. import backbone, transformer, vision
from .. import train as train_module
from ..data import reasoning as reasoning_data
from ..data.cache import random_state_kept
from ..data.reasoning import ANSWERS, ReasoningDataset, encode_items, question_vocab
from ..reasoning import models as reasoning_models
from ..reasoning import parser, perception, symbolic, training
from ..validate import check_choice, check_int
from . import store
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
    reasoner = _make_reasoner(config, tagger.encoder.out_channels, tagger.encoder.grid_size)
    return nn.ModuleDict({"tagger": tagger, "reasoner": reasoner})


def _make_reasoner(config: dict[str, Any], channels: int, side: int) -> nn.Module:
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


def training_grids(config: dict[str, Any], seed: int, encoder, device, chunk: int = 2000):
    """``(items, grids)`` of the ``num_train`` training questions: the frozen encoder's grids in
    float16, computed a chunk of images at a time (the images themselves are never all held)."""
    data = ReasoningDataset(
        "train", config["num_train"], seed=seed, image_size=config["image_size"]
    )
    items = data.items(range(config["num_train"]))
    return items, perception.scene_grids(encoder, data, items, device, chunk)


def test_sets(config: dict[str, Any], seed: int, size: int | None = None) -> dict[str, tuple]:
    """The i.i.d. test (3–6 objects) and the "beyond" test (7–8): ``{name: (items, images)}``,
    of ``num_test`` items each, or their first ``size`` (items depend on their index alone)."""
    n = config["num_test"] if size is None else min(size, config["num_test"])
    return {
        "test": split(config, "test", n, seed),
        "beyond": split(config, "test", n, seed, num_objects=tuple(config["beyond_objects"])),
    }


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
    items, images = split(config, "train", n, seed)  # the first n training scenes
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
    return _train_reasoner(model["reasoner"], tagger, config, seed, device, progress)


def _train_reasoner(reasoner, tagger, config, seed, device, progress) -> TrainResult:
    """The reasoner on the frozen ``tagger``'s grids of ``num_train`` training questions,
    scored on the i.i.d. test every ``eval_every`` steps."""
    items, grids = training_grids(config, seed, tagger.encoder, device)
    questions, answers, _ = encode_items(items)
    test_items, test_images = split(config, "test", config["num_test"], seed)  # i.i.d. only
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
    return _fingerprint(model, test_sets(config, seed, FINGERPRINT_ITEMS), device)


def _fingerprint(model, first: dict[str, tuple], device, symbolic_too: bool = True):
    prefix = f"first{FINGERPRINT_ITEMS}_"
    scores = _scores(model, first, device, prefix, symbolic_too)
    return {k: v for k, v in scores.items() if k.endswith(("neural_all", "symbolic_all"))}


def evaluate(
    model: nn.ModuleDict, config: dict[str, Any], seed: int, device: torch.device
) -> dict[str, float]:
    """On each test set: the reasoner's accuracy (overall and per family), the neuro-symbolic
    model's, and how well the tagger's parse matches the scenes; and the fingerprint."""
    model.to(device).eval()
    return _evaluate(model, config, seed, device)


def _evaluate(bundle, config, seed, device, symbolic_too: bool = True) -> dict[str, float]:
    test = test_sets(config, seed)  # rendered once, for the scores and the fingerprint
    first = {
        name: (items[:FINGERPRINT_ITEMS], images[:FINGERPRINT_ITEMS])
        for name, (items, images) in test.items()
    }
    return {
        **_scores(bundle, test, device, symbolic_too=symbolic_too),
        **_fingerprint(bundle, first, device, symbolic_too),
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


# ------------------------------------------------------------- the other reasoners, on its tagger


def shipped_tagger(seed: int, device: torch.device) -> nn.Module:
    """The scene tagger of the shipped ``ch08-reasoning`` for ``seed``, in eval mode.

    Raises:
        LongRunError: if it is missing or corrupt, naming the command that rebuilds it.
    """
    manifest = store.read_manifest(RECIPE.name, seed)
    with random_state_kept():  # weights the file then replaces: no trace
        bundle = build(manifest["config"])
    store.load_long_run(RECIPE.name, seed, bundle, manifest)
    return bundle["tagger"].to(device).eval()


def _grid_shape(config: dict[str, Any]) -> tuple[int, int]:
    """The tagger's grid ``(channels, side)`` at this image size (read off a throwaway one)."""
    with random_state_kept():
        encoder = perception.build_scene_tagger(
            config["image_size"], CONFIG["tagger_width"]
        ).encoder
    return encoder.out_channels, encoder.grid_size


def build_reasoner(config: dict[str, Any]) -> nn.ModuleDict:
    """``reasoner`` alone: the tagger it reads is ``ch08-reasoning``'s."""
    return nn.ModuleDict({"reasoner": _make_reasoner(config, *_grid_shape(config))})


def _tagger_for(config: dict[str, Any], seed: int, device: torch.device) -> nn.Module:
    """The shipped tagger for ``seed``, if its grids are the ones ``config``'s reasoner reads."""
    tagger = shipped_tagger(seed, device)
    shipped = store.read_manifest(RECIPE.name, seed)["config"]["image_size"]
    if shipped != config["image_size"]:
        raise ValueError(
            f"this recipe reads {config['image_size']}-pixel scenes, the shipped tagger "
            f"{shipped}-pixel ones"
        )
    grid, expected = (tagger.encoder.out_channels, tagger.encoder.grid_size), _grid_shape(config)
    if grid != expected:
        raise ValueError(
            f"this recipe's reasoner reads grids of (channels, side) {expected}, the shipped "
            f"tagger makes {grid}"
        )
    return tagger


def _train_on_shipped_tagger(
    model: nn.ModuleDict, config: dict[str, Any], seed: int, device: torch.device, progress: bool
) -> TrainResult:
    """The reasoner on the shipped tagger's grids, exactly as ``ch08-reasoning`` trains its own."""
    tagger = _tagger_for(config, seed, device)
    return _train_reasoner(model["reasoner"], tagger, config, seed, device, progress)


def evaluate_on_shipped_tagger(
    model: nn.ModuleDict, config: dict[str, Any], seed: int, device: torch.device
) -> dict[str, float]:
    """The reasoner's accuracy on both test sets (overall and per family), and its fingerprint
    (the neuro-symbolic model is ``ch08-reasoning``'s to score)."""
    model.to(device).eval()
    bundle = {"tagger": _tagger_for(config, seed, device), "reasoner": model["reasoner"]}
    return _evaluate(bundle, config, seed, device, symbolic_too=False)


def fingerprint_on_shipped_tagger(
    model: nn.ModuleDict, config: dict[str, Any], seed: int, device: torch.device
) -> dict[str, float]:
    """The reasoner's overall accuracy on the first :data:`FINGERPRINT_ITEMS` of each test set."""
    model.to(device).eval()
    bundle = {"tagger": _tagger_for(config, seed, device), "reasoner": model["reasoner"]}
    return _fingerprint(bundle, test_sets(config, seed, FINGERPRINT_ITEMS), device, False)


#: CONFIG's keys that belong to the tagger, which the other reasoners do not train.
_TAGGER_KEYS = ("tagger_width", "tagger_images", "tagger_epochs")


def reasoner_recipe(
    reasoner: str,
    num_steps: int,
    patch_size: int = 1,
    pool: int | None = None,
    seeds: tuple[int, ...] = (),
) -> Recipe:
    """``ch08-reasoning-<reasoner>``: another neural reasoner on ``ch08-reasoning``'s tagger,
    with its questions, batch, learning rate and evaluation.

    Args:
        reasoner: a name of :data:`cmlib.reasoning.models.REASONERS` other than the long run's.
        num_steps: its updates.
        patch_size: its patches, for a transformer (1 for the others).
        pool: the Relation Network's max-pool factor (``None`` for the others).
        seeds: the seeds it ships.

    Raises:
        ValueError: for an unknown reasoner, the long run's own, or bad sizes.
    """
    check_choice("reasoner", reasoner, reasoning_models.REASONERS)
    check_int("num_steps", num_steps)
    if not isinstance(seeds, tuple) or not all(isinstance(x, int) and x >= 0 for x in seeds):
        raise TypeError(f"seeds must be a tuple of non-negative ints, got {seeds!r}")
    if reasoner == CONFIG["reasoner"]:
        raise ValueError(f"{reasoner!r} is ch08-reasoning's own reasoner")
    config = {k: v for k, v in CONFIG.items() if k not in _TAGGER_KEYS}
    config.update(reasoner=reasoner, num_steps=num_steps, patch_size=patch_size, pool=pool)
    config["tagger"] = RECIPE.name
    build_reasoner(config)  # the sizes' own checks, now
    return Recipe(
        name=f"{RECIPE.name}-{reasoner.replace('_', '-')}",
        summary=f"chapter 08's {reasoner.replace('_', ' ')} reasoner on ch08-reasoning's tagger",
        config=config,
        build=build_reasoner,
        train=_train_on_shipped_tagger,
        evaluate=evaluate_on_shipped_tagger,
        code=RECIPE.code,
        seeds=seeds,
        scored_by=(RECIPE.name,),
        fingerprint=fingerprint_on_shipped_tagger,
        half=True,  # FiLM is 5.3 MB in float32; models/ holds 25 MB for the whole course
    )


#: Part 3's reasoners beside the long run's cross-attention transformer, each for as many steps
#: as it. Measured on two threads at batch 64 (stop 46): FiLM 21 steps a second (24,000 steps:
#: 19 minutes), the single-stream transformer with 2 × 2 patches 26 (16 minutes), the Relation
#: Network 3.3 at its default pool of 2 (two hours) and 21 at a pool of 3 (19 minutes); the
#: grids of the 150,000 training questions take about 3.5 minutes more. Each ships seed 0, in
#: float16 (``chapters/notes/models.md`` has the runs).
OTHER_REASONERS = (
    reasoner_recipe("film", CONFIG["num_steps"], seeds=(0,)),
    reasoner_recipe("relation_network", CONFIG["num_steps"], pool=3, seeds=(0,)),
    reasoner_recipe(
        "single_stream", CONFIG["num_steps"], patch_size=CONFIG["patch_size"], seeds=(0,)
    ),
)
