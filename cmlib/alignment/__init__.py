"""Feature alignment (特征对齐): bring two modalities' representations into one space.

* :mod:`~cmlib.alignment.adversarial` — adversarial alignment: gradient reversal, a modality
  discriminator and the aligner (chapter 03, §2.3.2; chapter 06, §4.1);
* :mod:`~cmlib.alignment.training` — its training game and the probes that check it.

``from cmlib.alignment import AdversarialAligner`` works for every public name.
"""

from .adversarial import (
    AdversarialAligner,
    CosineClassifier,
    ModalityDiscriminator,
    grad_reverse,
    modality_loss,
)
from .training import alignment_accuracies, modality_probe, train_adversarial_alignment

__all__ = [
    "AdversarialAligner",
    "CosineClassifier",
    "ModalityDiscriminator",
    "alignment_accuracies",
    "grad_reverse",
    "modality_loss",
    "modality_probe",
    "train_adversarial_alignment",
]
