"""The judge (评判器): an attribute classifier trained on real images, scoring generated ones.

A generator's prompt fidelity is the share of its images that a classifier, trained on real
ShapesWorld images only, sees as the prompted colour and shape:

* :class:`AttributeJudge`, :func:`train_judge` and :func:`judge_accuracy`;
* :func:`reference_judge` — the course's one trained judge, from the model registry;
* :func:`prompt_fidelity` — fidelity for one prompt
  (:func:`cmlib.generation.generative.fidelity_over` averages it over a prompt set);
* :func:`diversity` and :func:`real_diversity` — how varied the samples are, and the yardstick.
"""

from __future__ import annotations

import math
import sys

import torch
import torch.nn.functional as F
from torch import nn

from . import perturb, registry, runtime, train, vision
from .data.shapes import tasks
from .data.shapes.tasks import judge_training_set, one_object_photos
from .data.shapes.world import COLORS, POSITIONS, SHAPES, SIZES
from .train import History, IndexBatches, fit, predict
from .vision import ConvEncoder, check_images

JUDGE_HEADS = {
    "color": len(COLORS),
    "shape": len(SHAPES),
    "size": len(SIZES),
    "position": len(POSITIONS),
}


class AttributeJudge(nn.Module):
    """An attribute classifier for one-object ShapesWorld images: colour, shape, size, position.

    A :class:`cmlib.vision.ConvEncoder` with one linear head per attribute.
    Trained on real images only, it then scores generated ones.

    Args:
        image_size: input height and width.
        width: ConvEncoder width.

    Shapes:
        ``forward(x (B, 3, S, S))`` → dict of logits, ``"color"`` ``(B, 6)``, ``"shape"`` ``(B,
        3)``,
        ``"size"`` ``(B, 2)``, ``"position"`` ``(B, 5)``.
    """

    def __init__(self, image_size: int = 32, width: int = 16):
        super().__init__()
        self.encoder = ConvEncoder(3, image_size, width, embed_dim=64)
        self.heads = nn.ModuleDict({k: nn.Linear(64, n) for k, n in JUDGE_HEADS.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = F.relu(self.encoder(x))
        return {k: head(h) for k, head in self.heads.items()}

    def predict(self, images: torch.Tensor, batch_size: int = 500) -> dict[str, torch.Tensor]:
        """Predicted class ids per attribute, each ``(N,)`` on the CPU."""
        device = next(self.parameters()).device
        logits = predict(self, images, device, batch_size)
        return {k: logits[k].argmax(1) for k in JUDGE_HEADS}


def train_judge(
    judge: AttributeJudge,
    images: torch.Tensor,
    attrs: dict[str, torch.Tensor],
    num_epochs: int,
    device: torch.device,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
    augment: bool = False,
) -> History:
    """Train the judge on real images (sum of the four cross-entropies) through :func:`fit`.

    A referee of *generated* images should be trained with ``augment=True``: each batch is
    perturbed in ways that keep colour and shape (:func:`cmlib.perturb.content_keeping`: a
    3×3 blur, a one-pixel shift, a little noise). Trained on clean images only, a judge reads a
    slightly blurred true image much worse than a sharp one, and so scores a generator's
    sharpness instead of its content.

    Args:
        judge: the classifier.
        images: ``(N, 3, S, S)`` real images in [0, 1].
        attrs: their labels, with a ``(N,)`` tensor for each of :data:`JUDGE_HEADS`.
        num_epochs: passes over the images.
        device: where to train.
        batch_size: images per step.
        lr: AdamW's peak learning rate (one-cycle schedule).
        seed: fixes the batch order (and the perturbations).
        progress: show a tqdm bar.
        augment: train on perturbed copies that keep colour and shape.
    """
    check_images(images, 3)
    if not isinstance(augment, bool):
        raise TypeError(f"augment must be a bool, got {type(augment).__name__}")
    missing = set(JUDGE_HEADS) - set(attrs)
    if missing:
        raise ValueError(f"attrs lacks {sorted(missing)}")
    batches = IndexBatches(
        len(images), batch_size, seed, (images, *(attrs[k] for k in JUDGE_HEADS))
    )
    optimizer = torch.optim.AdamW(judge.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, lr, total_steps=num_epochs * len(batches)
    )

    perturbations = torch.Generator().manual_seed(seed + 1)  # on the CPU, for any device

    def step(model: AttributeJudge, batch) -> torch.Tensor:
        x, *labels = batch
        if augment:
            x = perturb.content_keeping(x, perturbations)
        logits = model(x)
        return sum(F.cross_entropy(logits[k], y) for k, y in zip(JUDGE_HEADS, labels))

    return fit(
        judge,
        batches,
        optimizer,
        num_epochs,
        device,
        step_fn=step,
        scheduler=scheduler,
        progress=progress,
        desc="judge",
    )


#: The reference judge's sizes by run profile: chapter 04's recipe. Chapter 04 trains it once;
#: chapter 05 and the studio load the same registry entry (chapter 04 part 3 trains its own with
#: these sizes, while its cGAN is repaired).
REFERENCE_SIZES = {
    "cpu": {"num_train": 6000, "num_epochs": 4},
    "gpu": {"num_train": 20000, "num_epochs": 8},
}
#: The reference judge reads chapter 04's 16×16 one-object photos.
REFERENCE_IMAGE_SIZE = 16
REFERENCE_WIDTH = 16


def reference_judge_name(seed: int) -> str:
    """The reference judge's registry entry, e.g. ``ch04-judge-cpu-seed0``."""
    return f"ch04-judge-{runtime.profile()}-seed{seed}"


def reference_judge_config(seed: int) -> dict:
    """Everything that fixes the reference judge's weights: sizes and seed (the registry records
    the thread count beside them)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return {
        **REFERENCE_SIZES[runtime.profile()],
        "image_size": REFERENCE_IMAGE_SIZE,
        "width": REFERENCE_WIDTH,
        "seed": seed,
    }


def reference_judge(
    device: torch.device, seed: int, progress: bool = True
) -> tuple[AttributeJudge, str]:
    """The course's reference judge, loaded from the model registry or trained once and saved.

    Its training set is chapter 04's: ``num_train`` one-object photos of the seen pairs plus the
    second half of 1,000 held-out-pair photos (:func:`judge_training_set`), so it knows all 18
    colour–shape pairs while ``heldout[:500]`` stays unseen. Building the model draws its initial
    weights from the global random state whether it is then loaded or trained, and training uses
    its own seeded batch order, so what runs after this call sees the same random state either way.

    Returns:
        ``(judge, status)`` with the judge on ``device`` in eval mode; status is ``"loaded"`` or
        says why it was trained (see :func:`cmlib.registry.load_or_train`).
    """
    config = reference_judge_config(seed)

    def build(cfg: dict) -> AttributeJudge:
        return AttributeJudge(cfg["image_size"], cfg["width"]).to(device)

    def fit_judge(judge: AttributeJudge) -> dict[str, float]:
        size = config["image_size"]
        x_train, a_train = one_object_photos("train", config["num_train"], size, seed)
        x_heldout, a_heldout = one_object_photos("heldout", 1000, size, seed)
        x, a = judge_training_set(x_train, a_train, x_heldout, a_heldout)
        history = train_judge(
            judge, x, a, config["num_epochs"], device, seed=seed, progress=progress
        )
        return history.last

    code = [sys.modules[__name__], tasks, train, vision]
    judge, status = registry.load_or_train(
        reference_judge_name(seed), config, build, fit_judge, code
    )
    return judge.to(device).eval(), status


def judge_accuracy(
    judge: AttributeJudge, images: torch.Tensor, attrs: dict[str, torch.Tensor]
) -> dict[str, float]:
    """Accuracy per attribute and for colour+shape together, on labelled images."""
    pred = judge.predict(images)
    out = {k: (pred[k] == attrs[k]).float().mean().item() for k in JUDGE_HEADS}
    both = (pred["color"] == attrs["color"]) & (pred["shape"] == attrs["shape"])
    out["color+shape"] = both.float().mean().item()
    return out


def prompt_fidelity(
    judge: AttributeJudge,
    images: torch.Tensor,
    color: str,
    shape: str,
    size: str | None = None,
    position: str | None = None,
) -> dict[str, float]:
    """The share of ``images`` the judge sees as the prompted colour, shape (and size, position).

    Returns:
        ``color``, ``shape`` and ``color+shape`` rates, plus ``size`` and ``position`` when
        prompted.
    """
    pred = judge.predict(images)
    hit_color = pred["color"] == COLORS.index(color)
    hit_shape = pred["shape"] == SHAPES.index(shape)
    out = {
        "color": hit_color.float().mean().item(),
        "shape": hit_shape.float().mean().item(),
        "color+shape": (hit_color & hit_shape).float().mean().item(),
    }
    if size is not None:
        out["size"] = (pred["size"] == SIZES.index(size)).float().mean().item()
    if position is not None:
        out["position"] = (pred["position"] == POSITIONS.index(position)).float().mean().item()
    return out


def diversity(images: torch.Tensor) -> float:
    """Mean pixel distance (RMS) between pairs of images: 0 means every sample is the same."""
    if images.ndim != 4 or len(images) < 2:
        raise ValueError(f"expected at least two images (N, C, H, W), got {tuple(images.shape)}")
    flat = images.flatten(1).float()
    d = torch.cdist(flat, flat) / math.sqrt(flat.shape[1])
    n = len(flat)
    return float(d.sum() / (n * (n - 1)))


def real_diversity(
    images: torch.Tensor, attrs: dict[str, torch.Tensor], color: str, shape: str, n: int = 40
) -> float:
    """:func:`diversity` of (at most ``n``) real images of one colour and shape: the yardstick for
    samples."""
    keep = (attrs["color"] == COLORS.index(color)) & (attrs["shape"] == SHAPES.index(shape))
    if int(keep.sum()) < 2:
        raise ValueError(f"fewer than two real images of a {color} {shape}")
    return diversity(images[keep][:n])
