"""Feature alignment (特征对齐): bring two modalities' representations into one space.

* :mod:`~cmlib.alignment.adversarial` — adversarial alignment: gradient reversal, a modality
  discriminator and the aligner (chapter 03, §2.3.2; chapter 06, §4.1);
* :mod:`~cmlib.alignment.training` — its training game and the probes that check it;
* :mod:`~cmlib.alignment.procrustes` — rotations between embedding spaces: Procrustes, CSLS and
  refinement (chapter 06, §4.1);
* :mod:`~cmlib.alignment.unsupervised` — the same with no pairs: adversarial maps with a cycle
  (MUSE), then refinement;
* :mod:`~cmlib.alignment.transport` — the same by comparing distances within each space:
  Gromov–Wasserstein, then Wasserstein Procrustes;
* :mod:`~cmlib.alignment.dann` — domain-adversarial training of a classifier (DANN).

``from cmlib.alignment import AdversarialAligner`` works for every public name.
"""

from .adversarial import (
    AdversarialAligner,
    CosineClassifier,
    ModalityDiscriminator,
    grad_reverse,
    modality_loss,
)
from .dann import (
    DANN_HEADS,
    DomainAdaptationNet,
    grl_schedule,
    label_accuracy,
    lr_annealing,
    train_dann,
)
from .procrustes import (
    cosine_scores,
    csls_scores,
    mutual_nearest_pairs,
    precision_at_1,
    procrustes,
    refine,
)
from .training import alignment_accuracies, modality_probe, train_adversarial_alignment
from .transport import (
    align_by_distances,
    cosine_distances,
    distance_mismatch,
    gromov_wasserstein,
    plan_rotation,
    sinkhorn,
    wasserstein_procrustes,
)
from .unsupervised import (
    OrthogonalMap,
    align_without_pairs,
    mean_csls_similarity,
    train_adversarial_maps,
)

__all__ = [
    "AdversarialAligner",
    "CosineClassifier",
    "DANN_HEADS",
    "DomainAdaptationNet",
    "ModalityDiscriminator",
    "OrthogonalMap",
    "align_by_distances",
    "align_without_pairs",
    "alignment_accuracies",
    "cosine_distances",
    "cosine_scores",
    "csls_scores",
    "distance_mismatch",
    "grad_reverse",
    "grl_schedule",
    "gromov_wasserstein",
    "label_accuracy",
    "lr_annealing",
    "mean_csls_similarity",
    "modality_loss",
    "modality_probe",
    "mutual_nearest_pairs",
    "plan_rotation",
    "precision_at_1",
    "procrustes",
    "refine",
    "sinkhorn",
    "train_adversarial_alignment",
    "train_adversarial_maps",
    "train_dann",
    "wasserstein_procrustes",
]
