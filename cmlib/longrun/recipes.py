"""Named long-run recipes: train, evaluate, ship, and load again.

A :class:`Recipe` is what a model needs more than a chapter's 3 minutes for: its config, how to
build it, how to train it (recording an evaluation curve), and how to score it on its test split.
:func:`run_recipe` runs one for a seed and writes it with :mod:`cmlib.longrun.store`;
:func:`long_run` gives a chapter the model — loaded from ``models/`` in the cpu profile, trained
live in the gpu profile — with its manifest.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from .. import registry, runtime
from ..data.cache import random_state_kept
from ..validate import check_choice, check_int
from . import cgan, cyclegan, dann, judge, reasoners, reasoning, referees, store, token_prior
from .base import Recipe


def recipes() -> dict[str, Recipe]:
    """Every long-run recipe by name."""
    order = (
        judge.RECIPE,
        cgan.RECIPE,
        *cgan.ABLATIONS,
        token_prior.RECIPE,
        referees.REFEREES,
        cyclegan.CYCLEGAN,
        cyclegan.NO_CYCLE,
        dann.RECIPE,
        reasoning.RECIPE,
        *reasoners.OTHER_REASONERS,
        reasoning.GENERALISATION,
    )
    return {r.name: r for r in order}


def get_recipe(name: str) -> Recipe:
    """One recipe by name (``ValueError`` listing the known ones otherwise)."""
    known = recipes()
    check_choice("recipe", name, tuple(known))
    return known[name]


@contextlib.contextmanager
def own_random_state(seed: int) -> Iterator[None]:
    """Seed Python, NumPy and torch (CPU and CUDA) with ``seed`` inside the block, and give the
    caller back its own random state afterwards."""
    with random_state_kept():
        runtime.seed_everything(seed)
        yield


def run_recipe(
    name: str, seed: int, device: torch.device, save: bool = True, progress: bool = True
) -> tuple[nn.Module, dict[str, Any]]:
    """Train recipe ``name`` for ``seed``, score it, and (with ``save``) ship it to ``models/``.

    Returns:
        ``(model, manifest)`` with the model in eval mode on ``device``.
    """
    recipe = get_recipe(name)
    check_int("seed", seed, minimum=0)
    code_version = registry.code_version(recipe.code)  # the code as it was when training began
    # the model, its data order and its noise all follow from the seed alone, so a rebuild
    # anywhere starts from the same place; the caller's random state is left as it was
    with own_random_state(seed):
        model = recipe.build(recipe.config).to(device)
        start = time.perf_counter()
        result = recipe.train(model, recipe.config, seed, device, progress)
        wall = time.perf_counter() - start
        model.eval()
        if recipe.half:  # score the weights that will be shipped
            store.round_to_half(model)
        metrics = recipe.evaluate(model, recipe.config, seed, device)
    manifest = {
        "recipe": name,
        "seed": seed,
        "config": recipe.config,
        "code_version": code_version,
        **store.environment(device),
        "wall_seconds": round(wall, 1),
        "steps": result.steps,
        "metrics": metrics,
        "curve": result.curve,
    }
    if save:
        store.save_long_run(store.model_name(name, seed), model, manifest, recipe.half)
        return model, store.read_manifest(name, seed)
    # not written (the gpu profile's live run): the same manifest, checksum included
    return model, store.serialise(store.model_name(name, seed), model, manifest, recipe.half)[1]


def add_fingerprint(name: str, seed: int, device: torch.device) -> dict[str, Any]:
    """Score a shipped model's fingerprint and add it to its manifest's metrics, the weights
    and everything else unchanged (for a recipe that gained a fingerprint after it shipped; a
    model trained since has it already, since ``evaluate`` returns its keys).

    Returns:
        the manifest as written.

    Raises:
        ValueError: if the recipe has no fingerprint, ``device`` is not the CPU, or a metric
            the manifest already has comes out otherwise today.
        LongRunError: as :func:`load_long_run`.
    """
    recipe = get_recipe(name)
    check_int("seed", seed, minimum=0)
    if recipe.fingerprint is None:
        raise ValueError(f"recipe {name} has no fingerprint")
    if not isinstance(device, torch.device) or device.type != "cpu":
        # the drift test recomputes it on the CPU: score it where it will be checked
        raise ValueError(f"a fingerprint is scored on the CPU, got device {device!r}")
    model, manifest = load_long_run(name, seed, device)
    if recipe.half:  # its metrics must have been scored on the float16 weights it will store
        before = [t.clone() for t in model.state_dict().values()]
        store.round_to_half(model)
        if any(not torch.equal(a, b) for a, b in zip(before, model.state_dict().values())):
            raise ValueError(
                f"{name} seed {seed} was shipped in float32 and its recipe now stores float16: "
                f"its metrics are not those of the weights it would store; run "
                f"`{store.rebuild_command(name, seed)}`"
            )
    with own_random_state(seed):
        scores = recipe.fingerprint(model, manifest["config"], seed, device)
    clash = {
        k: (manifest["metrics"][k], v)
        for k, v in scores.items()
        if k in manifest["metrics"] and abs(manifest["metrics"][k] - v) > 1e-6
    }
    if clash:
        raise ValueError(
            f"{name} seed {seed}: the fingerprint disagrees with the manifest on {clash} "
            f"(manifest, today); run `{store.rebuild_command(name, seed)}`"
        )
    kept = {k: v for k, v in manifest.items() if k not in ("format", "name", "tensors")}
    kept["metrics"] = {**manifest["metrics"], **scores}
    store.save_long_run(store.model_name(name, seed), model, kept, recipe.half)
    return store.read_manifest(name, seed)


def ship_in_half(name: str, seed: int, device: torch.device) -> dict[str, Any]:
    """Store a model shipped in float32 as its recipe, which now has ``half``, would have
    shipped it: round the weights to float16, score them again with the recipe's evaluation,
    and rewrite both files.

    Training with ``half`` rounds only after the last step (:func:`run_recipe`), so the run
    itself is the same: the manifest keeps its config, curve, code version, wall time and
    steps, and only its metrics (and the file's checksum) change. Half an hour of training is
    not repeated to halve a file. The metrics are scored under the seed's own random state, as
    the drift test scores a fingerprint.

    Returns:
        the manifest as written.

    Raises:
        ValueError: if the recipe does not store float16, or ``device`` is not the CPU (the
            drift test rescores on the CPU).
        LongRunError: as :func:`load_long_run`.
    """
    recipe = get_recipe(name)
    check_int("seed", seed, minimum=0)
    if not recipe.half:
        raise ValueError(f"recipe {name} stores float32 (half=False): nothing to halve")
    if not isinstance(device, torch.device) or device.type != "cpu":
        raise ValueError(f"a model is rescored on the CPU, got device {device!r}")
    model, manifest = load_long_run(name, seed, device)
    store.round_to_half(model)
    with own_random_state(seed):
        metrics = recipe.evaluate(model, manifest["config"], seed, device)
    kept = {k: v for k, v in manifest.items() if k not in ("format", "name", "tensors")}
    kept["metrics"] = metrics
    store.save_long_run(store.model_name(name, seed), model, kept, half=True)
    return store.read_manifest(name, seed)


def load_long_run(name: str, seed: int, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """The shipped model of recipe ``name`` and ``seed``, built from its manifest's config and
    loaded strictly, in eval mode on ``device``; and its manifest. The caller's random state is
    left as it was, so loading a long run does not change what a chapter draws after it.

    Raises:
        LongRunError: missing, corrupt or not fitting today's code, with the command to rebuild.
    """
    recipe = get_recipe(name)
    manifest = store.read_manifest(name, seed)
    with random_state_kept():  # building initialises weights the file then replaces: no trace
        model = recipe.build(manifest["config"])
    store.load_long_run(name, seed, model, manifest)  # checked against this very manifest
    return model.to(device).eval(), manifest


def long_run(
    name: str, seed: int, device: torch.device, progress: bool = True
) -> tuple[nn.Module, dict[str, Any], str]:
    """What a chapter calls: the long run of ``name`` for ``seed``.

    In the cpu profile it is loaded from ``models/`` (status ``"shipped"``); in the gpu profile
    it is trained live with the same recipe (status ``"trained live"``), and not written.

    Returns:
        ``(model, manifest, status)``.
    """
    if runtime.profile() == "gpu":
        model, manifest = run_recipe(name, seed, device, save=False, progress=progress)
        return model, manifest, "trained live"
    model, manifest = load_long_run(name, seed, device)
    return model, manifest, "shipped"
