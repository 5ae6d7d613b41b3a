"""Chapter 06's trained networks in the model registry, so later parts reuse what part 1 trained.

Part 1 trains the CycleGAN and saves it; the ablation parts compare against it without training
it again, and the capstone studio translates with it. Each entry is named by what it is, the run
profile and the seed (``ch06-cyclegan-cpu-seed0``), and is reused only when its settings and the
code that made it (this package's models and training loop, ShapesWorld) are unchanged;
otherwise it is trained again, with the same function, so a fresh clone gets the same model
either way. Every part scores with the same shipped referees (:mod:`cmlib.cyclegan.referees`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .. import registry, runtime
from ..judge import AttributeJudge
from ..train import History
from .evaluation import (
    StyleClassifier,
    photo_sketch_pairs,
    score_both_directions,
)
from .referees import RECIPE_NAME, shipped_referees
from .referees import SEED as REFEREE_SEED
from .training import CycleGAN, CycleGANConfig, train_cyclegan


def _code(kind: str) -> list:
    """The source that fixes the CycleGAN's weights: the data, and the modules that define and
    train it (evaluation code is not in the list: changing how translations are scored does not
    change the model)."""
    from ..data import shapes
    from . import losses, models, training

    if kind != "cyclegan":
        raise ValueError(f"kind must be 'cyclegan', got {kind!r}")
    return [shapes, models, losses, training]


def registry_name(kind: str, seed: int) -> str:
    """``ch06-<kind>-<profile>-seed<seed>``, e.g. ``ch06-cyclegan-cpu-seed0``."""
    return f"ch06-{kind}-{runtime.profile()}-seed{seed}"


def cyclegan_settings(
    config: CycleGANConfig, num_per_domain: int, image_size: int, seed: int
) -> dict:
    """Everything that fixes a trained CycleGAN: its config, the data size and the seed (the
    registry records the thread count beside them)."""
    return {
        **asdict(config),
        "num_per_domain": num_per_domain,
        "image_size": image_size,
        "seed": seed,
    }


def save_cyclegan(
    model: CycleGAN,
    config: CycleGANConfig,
    photos: torch.Tensor,
    seed: int,
    metrics: dict[str, float] | None = None,
) -> registry.SavedModel:
    """Save a CycleGAN trained on ``photos`` (and as many sketches) with ``config`` and ``seed``."""
    settings = cyclegan_settings(config, len(photos), photos.shape[-1], seed)
    return registry.save_model(
        registry_name("cyclegan", seed), model, settings, _code("cyclegan"), metrics
    )


def load_or_train_cyclegan(
    config: CycleGANConfig,
    photos: torch.Tensor,
    sketches: torch.Tensor,
    seed: int,
    device: torch.device,
    progress: bool = True,
) -> tuple[CycleGAN, str]:
    """Part 1's CycleGAN from the registry, or trained here exactly as part 1 trains it.

    Returns:
        ``(model, status)``; status is ``"loaded"`` or why it was trained.
    """
    settings = cyclegan_settings(config, len(photos), photos.shape[-1], seed)

    def train(model: CycleGAN) -> dict[str, float]:
        train_cyclegan(model, photos, sketches, config, device, seed=seed, progress=progress)
        return {}

    model, status = registry.load_or_train(
        registry_name("cyclegan", seed),
        settings,
        lambda _: CycleGAN.from_config(config),  # the settings are this config's
        train,
        _code("cyclegan"),
    )
    return model.to(device).eval(), status


@dataclass
class PartOne:
    """Everything part 1 of chapter 06 made that the later parts compare against.

    Attributes:
        photos_all, sketches_all, attrs_all: scenes 0…2N−1 in both styles (N per domain).
        photos: domain A, scenes 0…N−1; ``sketches``: domain B, scenes N…2N−1.
        test_photos, test_sketches, test_attrs: the test pairs, for evaluation only.
        held_photos, held_sketches, held_attrs: the ``heldout`` split.
        config: part 1's CycleGAN config.
        model: part 1's CycleGAN (loaded from the registry, or trained as part 1 trains it).
        judges, style_classifier: the referees.
        statuses: ``"CycleGAN"``: ``"loaded"`` or why it was trained; ``"referees"``: which
            shipped referees score the panel.
    """

    photos_all: torch.Tensor
    sketches_all: torch.Tensor
    attrs_all: dict[str, torch.Tensor]
    photos: torch.Tensor
    sketches: torch.Tensor
    test_photos: torch.Tensor
    test_sketches: torch.Tensor
    test_attrs: dict[str, torch.Tensor]
    held_photos: torch.Tensor
    held_sketches: torch.Tensor
    held_attrs: dict[str, torch.Tensor]
    config: CycleGANConfig
    model: CycleGAN
    judges: dict[str, AttributeJudge]
    style_classifier: StyleClassifier
    statuses: dict[str, str]

    def score(self, g: nn.Module | None, f: nn.Module | None) -> dict[str, dict[str, float]]:
        """Part 1's panel for G and F on the test pairs (``None``: the identity map)."""
        device = next(self.judges["sketch"].parameters()).device
        return score_both_directions(
            g,
            f,
            self.test_photos,
            self.test_sketches,
            self.test_attrs,
            self.judges,
            self.style_classifier,
            device,
        )

    def ablation(
        self, seed: int, device: torch.device, progress: bool = True, **changes: Any
    ) -> tuple[CycleGAN, History]:
        """Part 1's CycleGAN trained again with ``changes`` to its config, all else equal.

        The same data, steps, batch, learning rate and seed: the global random state is reset
        to ``seed`` first, so the new model starts as part 1's did whether part 1's model was
        loaded or trained in this run.

        Args:
            seed: the run's seed.
            device: where to train.
            progress: show a tqdm bar.
            changes: fields of :class:`CycleGANConfig`, e.g. ``cycles=()`` or
                ``lambda_identity=0.0``.

        Raises:
            ValueError: without changes, or for a name that is not a config field.
        """
        fields = {f.name for f in dataclasses.fields(CycleGANConfig)}
        if not changes or set(changes) - fields:
            raise ValueError(
                f"an ablation changes config fields {sorted(fields)}, got {sorted(changes)}"
            )
        config = dataclasses.replace(self.config, **changes)
        runtime.seed_everything(seed)
        model = CycleGAN.from_config(config)
        history = train_cyclegan(
            model, self.photos, self.sketches, config, device, seed=seed, progress=progress
        )
        return model, history


#: Part 1's sizes by run profile; its notebook prints them.
PART_ONE_SIZES = {
    "cpu": {"num_per_domain": 2000, "num_steps": 700, "batch_size": 32},
    "gpu": {"num_per_domain": 8000, "num_steps": 6000, "batch_size": 64},
}
IMAGE_SIZE, NUM_TEST, LR = 16, 500, 5e-4


def part_one_config() -> CycleGANConfig:
    """Part 1's CycleGAN recipe in the current run profile."""
    sizes = PART_ONE_SIZES[runtime.profile()]
    return CycleGANConfig(num_steps=sizes["num_steps"], batch_size=sizes["batch_size"], lr=LR)


def load_part_one(seed: int, device: torch.device, progress: bool = True) -> PartOne:
    """Part 1's data, model and referees: loaded where saved and fresh, trained otherwise."""
    sizes = PART_ONE_SIZES[runtime.profile()]
    n = sizes["num_per_domain"]
    photos_all, sketches_all, attrs_all = photo_sketch_pairs("train", 2 * n, IMAGE_SIZE, seed=seed)
    photos, sketches = photos_all[:n], sketches_all[n:]
    test = photo_sketch_pairs("test", NUM_TEST, IMAGE_SIZE)
    held = photo_sketch_pairs("heldout", 3 * NUM_TEST, IMAGE_SIZE)
    config = part_one_config()
    model, status = load_or_train_cyclegan(config, photos, sketches, seed, device, progress)
    judges, style_classifier, _ = shipped_referees(device)
    return PartOne(
        photos_all,
        sketches_all,
        attrs_all,
        photos,
        sketches,
        *test,
        *held,
        config,
        model,
        judges,
        style_classifier,
        {"CycleGAN": status, "referees": f"shipped ({RECIPE_NAME}, seed {REFEREE_SEED})"},
    )
