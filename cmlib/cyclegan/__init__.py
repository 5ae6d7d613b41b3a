"""CycleGAN (Zhu et al., 2017): translation between two image domains without pairs (§4.1.1.1).

* :mod:`~cmlib.cyclegan.models` — the ResNet generator and the PatchGAN discriminator;
* :mod:`~cmlib.cyclegan.losses` — LSGAN, cycle and identity losses, and the image pool;
* :mod:`~cmlib.cyclegan.training` — the unpaired training loop and the paired L1 bound;
* :mod:`~cmlib.cyclegan.evaluation` — scoring translations against ShapesWorld's ground truth.

``from cmlib.cyclegan import CycleGAN`` works for every public name.
"""

from .evaluation import (
    StyleClassifier,
    TranslationScores,
    photo_sketch_pairs,
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
)
from .models import PatchDiscriminator, ResidualBlock, ResnetGenerator, init_weights
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
    "ImagePool",
    "PatchDiscriminator",
    "ResidualBlock",
    "ResnetGenerator",
    "StyleClassifier",
    "TranslationScores",
    "cycle_loss",
    "identity_loss",
    "init_weights",
    "linear_decay",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "photo_sketch_pairs",
    "score_translation",
    "ssim",
    "train_cyclegan",
    "train_paired",
    "train_style_classifier",
    "translate",
]
