"""The studio's models, by name: loaded from the registry, or trained here in compact form.

The studio works in chapter 04's world: one-object ShapesWorld scenes, 16×16 pixels, the size
its generator draws and chapter 06's CycleGAN translates. Each *role* has a registry name
(:data:`NAME_STEMS`), a config and a recipe that trains it with the course's
library functions (no model code is repeated here):

* **finder** — chapter 07's dual encoder (:func:`cmlib.shapes_retrieval.make_dual_encoder`),
  trained by chapter 10's loop (:func:`cmlib.distributed.train_retrieval`) in one process;
* **drawer** — chapter 04's CVAE with its bag-of-words prompt encoder
  (:mod:`cmlib.generation.cvae`), with chapter 04's recipe: chapter 04 saves it as
  ``ch04-cvae-<profile>-seed<seed>`` (:func:`save_role`), and the studio trains it only when
  that entry is missing or stale;
* **describer** — chapter 05's attention captioner on a frozen, pretrained grid encoder
  (:mod:`cmlib.captioning`, :mod:`cmlib.backbone`); it reads 16-pixel images upsampled to 32,
  photos and sketches alike;
* **judge** — chapter 04's reference judge (:func:`cmlib.judge.reference_judge`), the referee of
  the checkpoints: the long run ``ch04-judge`` shipped in ``models/``, which chapters 04 and 05
  use too (trained with its recipe and kept in the registry if that file is missing);
* **translator** — chapter 06's long-run CycleGAN, shipped in ``models/`` (``ch06-cyclegan``,
  this seed's run where one is shipped, else the first shipped seed's), in every profile; a
  compact one trained here only if that file is missing or corrupt.

A missing or stale entry is trained again, and a corrupt one is detected and rebuilt
(:func:`cmlib.registry.load_or_train`); every load reports its status.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import backbone, captioning, perturb, registry, runtime, shapes_retrieval
from .. import judge as judge_module
from ..cyclegan import saved as cyclegan_saved
from ..cyclegan.evaluation import photo_sketch_pairs
from ..cyclegan.training import CycleGAN, CycleGANConfig, train_cyclegan
from ..data import shapes
from ..data.shapes.captioning import CaptionData, caption_vocab, load_captioning
from ..data.shapes.prompt_text import prompt_sampler
from ..data.shapes.tasks import one_object_photos
from ..data.shapes.text import shapes_vocab
from ..data.shapes.vqa import ATTRIBUTE_LABELS, cell_attributes
from ..distributed import training as ddp_training
from ..distributed.env import init_distributed
from ..generation import cvae, prompts
from ..generation.cvae import PromptCVAERecipe
from ..longrun.recipes import get_recipe, load_long_run
from ..longrun.store import LongRunError
from ..validate import check_int
from ..vision import ConvEncoder

#: The studio's image size (chapter 04's generators and chapter 06's CycleGAN draw 16×16).
IMAGE_SIZE = 16
#: The describer reads images upsampled to this size (its grid encoder wants 4×4 cells of 8).
CAPTION_IMAGE_SIZE = 32
ROLES = ("finder", "drawer", "describer", "judge", "translator")

#: Compact recipes by run profile: what a fresh clone trains when nothing is saved.
SIZES = {
    "cpu": {
        "finder": {"num_train": 4000, "num_epochs": 12, "embed_dim": 64},
        "drawer": {"num_train": 6000, **dataclasses.asdict(PromptCVAERecipe.for_profile("cpu"))},
        "describer": {
            "num_train": 3000,
            "backbone_images": 1500,
            "backbone_epochs": 6,
            "num_epochs": 16,
            "perturbed_copies": 2,
        },
        "translator": {"num_per_domain": 1000, "num_steps": 120, "batch_size": 32},
    },
    "gpu": {
        "finder": {"num_train": 10000, "num_epochs": 10, "embed_dim": 128},
        "drawer": {"num_train": 20000, **dataclasses.asdict(PromptCVAERecipe.for_profile("gpu"))},
        "describer": {
            "num_train": 12000,
            "backbone_images": 8000,
            "backbone_epochs": 10,
            "num_epochs": 30,
            "perturbed_copies": 2,
        },
        "translator": {"num_per_domain": 4000, "num_steps": 3000, "batch_size": 64},
    },
}


#: Each role's registry name before ``-<profile>-seed<seed>``. The drawer is chapter 04's CVAE
#: with chapter 04's own recipe, so chapter 04 saves it under this name and the studio loads it.
NAME_STEMS = {
    "finder": "ch11-finder",
    "drawer": "ch04-cvae",
    "describer": "ch11-describer",
    "judge": judge_module.REFERENCE_RECIPE,  # where cmlib.judge.reference_judge trains one
    "translator": "ch11-translator",
}


def registry_name(role: str, seed: int) -> str:
    """The role's entry, e.g. ``ch11-finder-cpu-seed0`` or ``ch04-cvae-cpu-seed0``."""
    _check_role(role)
    return f"{NAME_STEMS[role]}-{runtime.profile()}-seed{seed}"


def role_config(role: str, seed: int) -> dict:
    """Everything that fixes a role's weights: its sizes and the seed (the registry records the
    thread count beside them)."""
    _check_role(role)
    if role == "judge":
        return {**judge_module.REFERENCE_CONFIG, "seed": seed}
    return {
        **SIZES[runtime.profile()][role],
        "image_size": IMAGE_SIZE,
        "seed": seed,
    }


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")


def upsample_for_captions(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 16, 16)`` → ``(B, 3, 32, 32)``, nearest neighbour, for the describer."""
    return F.interpolate(images, size=CAPTION_IMAGE_SIZE, mode="nearest")


# ---------------------------------------------------------------- the models
class Drawer(nn.Module):
    """Chapter 04's CVAE with its bag-of-words prompt encoder (both trained together).

    Shapes:
        ``text(prompts)``: ``B`` strings → ``(B, 32)``; ``cvae.sample(c, z)`` → ``(B, 3, 16, 16)``.
    """

    def __init__(self, recipe: PromptCVAERecipe | None = None):
        super().__init__()
        recipe = recipe or PromptCVAERecipe()
        self.text = prompts.BagOfWordsEncoder(shapes_vocab(), recipe.cond_dim)
        self.cvae = recipe.build()

    @classmethod
    def from_parts(cls, cvae_model: cvae.CVAE, text: prompts.BagOfWordsEncoder) -> Drawer:
        """A drawer holding an already trained CVAE and its prompt encoder (chapter 04's)."""
        if not isinstance(cvae_model, cvae.CVAE):
            raise TypeError(f"cvae_model must be a CVAE, got {type(cvae_model).__name__}")
        if not isinstance(text, prompts.BagOfWordsEncoder):
            raise TypeError(f"text must be a BagOfWordsEncoder, got {type(text).__name__}")
        drawer = cls(PromptCVAERecipe(cond_dim=text.cond_dim))
        drawer.cvae, drawer.text = cvae_model, text
        return drawer


class Describer(nn.Module):
    """Chapter 05's attention captioner and the frozen grid encoder it reads.

    Shapes:
        ``encoder.feature_map``: ``(B, 3, 32, 32)`` → ``(B, 64, 4, 4)``; the captioner decodes
        those grids (:func:`cmlib.captioning.caption_images`).
    """

    def __init__(self):
        super().__init__()
        self.encoder = ConvEncoder(image_size=CAPTION_IMAGE_SIZE, width=16, embed_dim=64)
        self.captioner = captioning.AttentionCaptioner(
            len(caption_vocab()), self.encoder.out_channels, grid_size=4
        )


BUILDERS: dict[str, Callable[[dict], nn.Module]] = {
    "finder": lambda c: shapes_retrieval.make_dual_encoder(IMAGE_SIZE, 16, c["embed_dim"]),
    "drawer": lambda c: Drawer(drawer_recipe(c)),
    "describer": lambda c: Describer(),
    "judge": lambda c: judge_module.build_reference_judge(judge_module.REFERENCE_CONFIG),
    "translator": lambda c: CycleGAN(),
}


# ---------------------------------------------------------------- the recipes
def _train_finder(model: nn.Module, config: dict, device: torch.device, progress: bool) -> dict:
    run = ddp_training.DDPConfig(
        num_train=config["num_train"],
        num_test=500,
        image_size=IMAGE_SIZE,
        embed_dim=config["embed_dim"],
        num_epochs=config["num_epochs"],
        seed=config["seed"],
    )
    trained, history = ddp_training.train_retrieval(
        run, init_distributed(use_cuda=device.type == "cuda"), progress=progress
    )
    model.load_state_dict(trained.state_dict())
    return {"test R@1": history.metrics[-1]["R@1"]}


def _train_drawer(model: Drawer, config: dict, device: torch.device, progress: bool) -> dict:
    seed = config["seed"]
    images, attrs = one_object_photos("train", config["num_train"], IMAGE_SIZE, seed)
    runtime.seed_everything(seed)
    sampler = prompt_sampler(attrs, np.random.default_rng(seed))  # fresh wording each epoch
    drawer_recipe(config).train(
        model.cvae, model.text, images, sampler, device, seed=seed, progress=progress
    )
    return {}


def drawer_recipe(config: dict) -> PromptCVAERecipe:
    """The CVAE recipe a drawer config names (its other keys are sizes and the seed)."""
    return PromptCVAERecipe(
        **{f.name: config[f.name] for f in dataclasses.fields(PromptCVAERecipe)}
    )


def studio_caption_data(
    split: str, num_images: int, seed: int = 0, perturbed_copies: int = 0
) -> CaptionData:
    """One-object scenes in both styles at 16 pixels, upsampled to 32, with 4×4 cell labels.

    With ``perturbed_copies`` k, k more copies of every scene follow the clean ones (rows
    ``N…2N−1`` are the first copy, and so on), each image perturbed at 16 pixels by
    :func:`cmlib.perturb.content_keeping` (noise, a 3×3 blur, a one-pixel shift: colour, shape
    and size survive and an object moves by at most one pixel, so the captions and, but for
    that pixel, the cell labels stay true), drawn from a generator seeded with ``seed``.
    """
    check_int("perturbed_copies", perturbed_copies, minimum=0)
    data = load_captioning(split, num_images, IMAGE_SIZE, num_objects=1, style="mixed", seed=seed)
    world = shapes.ShapesWorld(
        split, size=num_images, image_size=IMAGE_SIZE, num_objects=1, style="mixed", seed=seed
    )
    cells = cell_attributes(world, grid_size=4)
    k = perturbed_copies
    if k:
        generator = torch.Generator().manual_seed(seed)
        copies = [perturb.content_keeping(data.images, generator) for _ in range(k)]
        data = dataclasses.replace(
            data,
            images=torch.cat([data.images, *copies]),
            scenes=data.scenes * (k + 1),
            references=data.references * (k + 1),
            ids=data.ids.repeat(k + 1, 1, 1),
            brief_ids=data.brief_ids.repeat(k + 1, 1),
            detailed_ids=data.detailed_ids.repeat(k + 1, 1),
        )
        cells = {name: labels.repeat(k + 1, 1, 1) for name, labels in cells.items()}
    return dataclasses.replace(data, images=upsample_for_captions(data.images), cells=cells)


def _train_describer(model: Describer, config: dict, device: torch.device, progress: bool) -> dict:
    seed, n, copies = config["seed"], config["backbone_images"], config["perturbed_copies"]
    # The verdict is a referee of drawn images, which are never pixel-perfect: like chapter
    # 04's judge, it learns from copies that keep colour and shape but not sharpness.
    data = studio_caption_data("train", config["num_train"], seed, copies)
    # the backbone's images: the first n scenes, clean and in every perturbed copy
    rows = torch.cat([torch.arange(n) + c * config["num_train"] for c in range(copies + 1)])
    runtime.seed_everything(seed)
    tagger, _ = backbone.pretrain_backbone(
        data.images[rows],
        {k: v[rows] for k, v in data.cells.items()},
        ATTRIBUTE_LABELS,
        config["backbone_epochs"],
        device,
        seed=seed,
        progress=progress,
    )
    model.encoder.load_state_dict(tagger.encoder.state_dict())
    grids = backbone.grid_features(model.encoder, data.images, device)
    runtime.seed_everything(seed)
    captioning.train_captioner(
        model.captioner,
        data,
        grids,
        config["num_epochs"],
        device,
        seed=seed,
        progress=progress,
        desc="describer",
    )
    return {}


def _translator_config(config: dict) -> CycleGANConfig:
    return CycleGANConfig(
        num_steps=config["num_steps"], batch_size=config["batch_size"], lr=cyclegan_saved.LR
    )


def _train_translator(model: CycleGAN, config: dict, device: torch.device, progress: bool) -> dict:
    n = config["num_per_domain"]
    photos, sketches, _ = photo_sketch_pairs("train", 2 * n, IMAGE_SIZE, seed=config["seed"])
    # Unpaired, as in chapter 06: photos of scenes 0…n−1, sketches of scenes n…2n−1.
    train_cyclegan(
        model,
        photos[:n],
        sketches[n:],
        _translator_config(config),
        device,
        seed=config["seed"],
        progress=progress,
    )
    return {}


RECIPES = {
    "finder": (_train_finder, lambda: [shapes, shapes_retrieval, ddp_training]),
    "drawer": (_train_drawer, lambda: [shapes, cvae, prompts]),
    "describer": (_train_describer, lambda: [shapes, backbone, captioning, perturb]),
    "translator": (_train_translator, lambda: cyclegan_saved._code("cyclegan")),
}


# ---------------------------------------------------------------- saving and loading
def save_role(
    role: str,
    model: nn.Module,
    seed: int,
    recipe: dict,
    metrics: dict[str, float] | None = None,
) -> registry.SavedModel:
    """Save a model a chapter trained as the studio's ``role``, if it followed the role's recipe.

    Args:
        role: one of :data:`ROLES`.
        model: the trained model (for the drawer, :meth:`Drawer.from_parts`).
        seed: the run's seed.
        recipe: the sizes it was trained with; they must equal the role's :data:`SIZES`.
        metrics: stored with it.

    Raises:
        ValueError: if the recipe is not the role's (the studio would then train its own).
    """
    _check_role(role)
    if role == "judge":
        raise ValueError("the judge is not saved by role: cmlib.judge.reference_judge saves it")
    wanted = SIZES[runtime.profile()][role]
    if recipe != wanted:
        raise ValueError(
            f"the {role} was trained with {recipe}, not the studio's recipe {wanted}; "
            "save it under another name"
        )
    code = RECIPES[role][1]()
    return registry.save_model(
        registry_name(role, seed), model, role_config(role, seed), code, metrics
    )


#: The translator's long run (chapter 06 part 1, section 5), loaded, never trained here.
TRANSLATOR_RECIPE = "ch06-cyclegan"


def _long_run_translator(seed: int, device: torch.device) -> tuple[nn.Module | None, str]:
    """Chapter 06's shipped long-run CycleGAN: this seed's, else the first shipped seed's."""
    shipped = get_recipe(TRANSLATOR_RECIPE).seeds
    chosen = seed if seed in shipped or not shipped else shipped[0]
    try:
        model, _ = load_long_run(TRANSLATOR_RECIPE, chosen, device)
    except LongRunError as err:
        return None, f"the long run is not usable ({err})"
    return model, f"loaded the long run {TRANSLATOR_RECIPE}-seed{chosen} (models/)"


def load_role(
    role: str, seed: int, device: torch.device, progress: bool = True
) -> tuple[nn.Module, str]:
    """One role's model, on ``device`` in eval mode, and how it was obtained.

    The translator is chapter 06's shipped long-run CycleGAN (:data:`TRANSLATOR_RECIPE`) and the
    judge chapter 04's shipped reference judge (:func:`cmlib.judge.reference_judge`, which trains
    its recipe into the registry if the file is missing or corrupt); every other role (and the
    translator if its file is missing or corrupt) is a registry entry, trained if missing, stale
    or corrupt.
    """
    _check_role(role)
    before = ""
    if role == "judge":  # chapter 04's shipped long run (trained with its recipe if missing)
        return judge_module.reference_judge(device, seed, progress)
    if role == "translator":
        model, status = _long_run_translator(seed, device)
        if model is not None:
            return model.to(device).eval(), status
        before = f"{status}; "
    train_fn, code = RECIPES[role]
    config = role_config(role, seed)
    model, status = registry.load_or_train(
        registry_name(role, seed),
        config,
        BUILDERS[role],
        lambda m: train_fn(m.to(device), config, device, progress),
        code(),
    )
    if status.startswith("loaded"):
        status = f"loaded {registry_name(role, seed)}{status[len('loaded') :]}"
    return model.to(device).eval(), before + status
