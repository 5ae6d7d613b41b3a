"""CycleGAN (Zhu et al., 2017): translation between two image domains without pairs (§4.1.1.1).

* :mod:`~cmlib.cyclegan.models` — the ResNet generator and the PatchGAN discriminator;
* :mod:`~cmlib.cyclegan.losses` — LSGAN, cycle and identity losses, and the image pool;
* :mod:`~cmlib.cyclegan.training` — the unpaired training loop and the paired L1 bound;
* :mod:`~cmlib.cyclegan.evaluation` — scoring translations against ShapesWorld's ground truth;
* :mod:`~cmlib.cyclegan.referees` — the shipped referees that score every translation;
* :mod:`~cmlib.cyclegan.saved` — part 1's model in the model registry, for the later parts.

``from cmlib.cyclegan import CycleGAN`` works for every public name.
"""

from .evaluation import (
    DIRECTIONS,
    StyleClassifier,
    TranslationScores,
    photo_sketch_pairs,
    score_both_directions,
    score_translation,
    ssim,
    train_style_classifier,
    translate,
)
from .losses import (
    ImagePool,
    cycle_loss,
    identity_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    object_cycle_loss,
    object_identity_loss,
    object_mask,
)
from .models import PatchDiscriminator, ResidualBlock, ResnetGenerator, init_weights
from .referees import build_referees, shipped_referees
from .saved import (
    PART_ONE_SIZES,
    PartOne,
    cyclegan_settings,
    load_or_train_cyclegan,
    load_part_one,
    part_one_config,
    registry_name,
    save_cyclegan,
)
from .training import (
    CYCLES,
    CycleGAN,
    CycleGANConfig,
    linear_decay,
    train_cyclegan,
    train_paired,
)

__all__ = [
    "CYCLES",
    "CycleGAN",
    "CycleGANConfig",
    "DIRECTIONS",
    "ImagePool",
    "PART_ONE_SIZES",
    "PartOne",
    "PatchDiscriminator",
    "ResidualBlock",
    "ResnetGenerator",
    "StyleClassifier",
    "TranslationScores",
    "cycle_loss",
    "cyclegan_settings",
    "identity_loss",
    "init_weights",
    "linear_decay",
    "object_cycle_loss",
    "object_identity_loss",
    "object_mask",
    "load_part_one",
    "load_or_train_cyclegan",
    "shipped_referees",
    "build_referees",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "part_one_config",
    "photo_sketch_pairs",
    "registry_name",
    "save_cyclegan",
    "score_both_directions",
    "score_translation",
    "ssim",
    "train_cyclegan",
    "train_paired",
    "train_style_classifier",
    "translate",
]
