"""What a long-run recipe is: :class:`Recipe` and what its trainer returns, :class:`TrainResult`."""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .. import runtime, text
from ..data import shapes
from ..train import History

#: The code every ShapesWorld recipe's result depends on besides its own: the seeding, the
#: data (the whole ``cmlib.data.shapes`` package: scenes, rendering, splits, prompts, captions)
#: and the vocabulary. A recipe's ``code`` adds its models, trainer and referee to these.
SHAPES_WORLD_CODE: tuple[types.ModuleType, ...] = (runtime, shapes, text)


@dataclass
class TrainResult:
    """What a recipe's trainer reports: the steps it took and its evaluation curve
    (``curve["step"]`` and one list per metric, as in the manifest)."""

    steps: int
    curve: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """One long-run model.

    Attributes:
        name: the recipe's name (``make models NAMES=...``), e.g. ``"ch04-cgan"``.
        summary: one line for ``make models`` and the notes.
        config: everything that fixes the model and its training (JSON values only).
        build: ``build(config)`` → the untrained model (one module, e.g. a ``ModuleDict``).
        train: ``train(model, config, seed, device, progress)`` → :class:`TrainResult`.
        evaluate: ``evaluate(model, config, seed, device)`` → metrics on the test split; the drift
            test calls it again on the shipped model.
        code: modules (or functions) whose source fixes the result; hashed into the manifest.
        seeds: the seeds ``make models`` ships.
        scored_by: other recipes whose shipped models this one's evaluation uses (its
            referees): when one of them is trained again, this one's metrics move too.
        fingerprint: ``fingerprint(model, config, seed, device)`` → a few metrics on a fixed
            subset of the test split, seconds where :attr:`evaluate` takes minutes; its keys
            are among ``evaluate``'s. The drift test recomputes these instead of the whole
            evaluation (``None``: it recomputes ``evaluate``).
        half: store the floating-point weights as float16, half the bytes (models/ has a
            budget). The trained model is rounded to them before it is scored, so the
            manifest's metrics are those of the weights shipped; it loads back as float32.
    """

    name: str
    summary: str
    config: dict[str, Any]
    build: Callable[[dict[str, Any]], nn.Module]
    train: Callable[[nn.Module, dict[str, Any], int, torch.device, bool], TrainResult]
    evaluate: Callable[[nn.Module, dict[str, Any], int, torch.device], dict[str, float]]
    code: Sequence[types.ModuleType | Callable[..., Any]]
    seeds: tuple[int, ...] = (0,)
    scored_by: tuple[str, ...] = ()
    fingerprint: (
        Callable[[nn.Module, dict[str, Any], int, torch.device], dict[str, float]] | None
    ) = None
    half: bool = False


def curve_from_history(history: History) -> dict[str, list[float]]:
    """The manifest's evaluation curve from a trainer's ``History``: its ``eval_step`` series as
    ``"step"`` (whole numbers) and each ``eval_<metric>`` series as ``<metric>``."""
    curve = {
        ("step" if key == "eval_step" else key.removeprefix("eval_")): values
        for key, values in history.steps.items()
        if key.startswith("eval_")
    }
    if "step" not in curve:
        raise ValueError("the history has no evaluations (no 'eval_step' series)")
    curve["step"] = [int(s) for s in curve["step"]]
    return curve
