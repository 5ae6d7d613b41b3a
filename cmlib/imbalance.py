"""Chapter 09 part 3: modality imbalance, the greedy modality, and three repairs.

When two modalities train together, the one that lowers the loss faster takes over: once the
fused prediction is right on most items, the loss sends little gradient to the other encoder,
which stays under-trained (Wang et al., 2020, "What makes training multi-modal classification
networks hard?"; Peng et al., 2022, "Balanced multimodal learning via on-the-fly gradient
modulation"). This module builds a task where that happens and measures it:

* :func:`load_imbalance_split` — name the object (its colour and shape, 18 classes) from a
  ShapesWorld image and a short caption; some images are blank and some captions wrong, so
  each modality answers only part of the items, and the caption is far quicker to learn;
* :class:`LateFusionClassifier` — an image tower and a caption tower, each with a linear head;
  the fused logit is the sum of the two, so each modality's part of it can be read off;
* :func:`train_imbalance_model` — one recipe, with the repairs as options: OGM-GE
  (:func:`ogm_coefficients`, :class:`GradientModulation`), unimodal auxiliary losses, modality
  dropout;
* :func:`evaluate` — fused accuracy, accuracy with one modality missing, and a linear probe of
  each encoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .data.shapes import COLORS, SHAPES, ShapesWorld
from .optim.precision import in_precision
from .optim.schedules import make_scheduler
from .probes import linear_probe_accuracy
from .train import History, endless_batches, fit_steps
from .validate import check_choice, check_int, check_number, check_tensor
from .vision import ConvEncoder

NUM_CLASSES = len(COLORS) * len(SHAPES)
#: the caption's vocabulary: the colours, then the shapes
VOCAB = (*COLORS, *SHAPES)
MODALITIES = ("image", "text")


@dataclass
class ImbalanceSplit:
    """Items of the imbalance task.

    ``images`` ``(N, 3, S, S)``; ``tokens`` ``(N, 2)`` the caption's colour and shape word (indices
    into :data:`VOCAB`); ``labels`` ``(N,)`` the object's class, ``colour * 3 + shape``;
    ``visible`` ``(N,)`` False where the image is blank; ``caption_right`` ``(N,)`` False where
    the caption names another object.
    """

    images: torch.Tensor
    tokens: torch.Tensor
    labels: torch.Tensor
    visible: torch.Tensor
    caption_right: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def class_name(label: int) -> str:
    """``"red circle"`` for a class index."""
    check_int("label", label, minimum=0)
    if label >= NUM_CLASSES:
        raise ValueError(f"label must be below {NUM_CLASSES}, got {label}")
    return f"{COLORS[label // len(SHAPES)]} {SHAPES[label % len(SHAPES)]}"


def load_imbalance_split(
    split: str,
    size: int,
    blank_images: float = 0.2,
    wrong_captions: float = 0.05,
    image_noise: float = 0.15,
    image_size: int = 32,
    seed: int = 0,
) -> ImbalanceSplit:
    """``size`` one-object scenes; a share ``blank_images`` of the images are grey (the object
    hidden), a share ``wrong_captions`` of the captions name another class, drawn at random, and
    every image carries Gaussian pixel noise of standard deviation ``image_noise``.

    The two are drawn independently: the image alone can answer ``1 - blank_images`` of the
    items, the caption alone ``1 - wrong_captions``, and both together nearly all. The noise
    makes the image slower to learn (chapter 09 part 3 measured 0.05 and 0.15 as the defaults
    that show the imbalance; ``chapters/notes/09_optimisation.md``).
    """
    check_choice("split", split, ("train", "val", "test"))
    check_int("size", size)
    check_number("blank_images", blank_images, low=0.0, high=1.0, high_open=True)
    check_number("wrong_captions", wrong_captions, low=0.0, high=1.0, high_open=True)
    check_number("image_noise", image_noise, low=0.0)
    world = ShapesWorld(split, size=size, num_objects=1, image_size=image_size, seed=seed)
    images, attrs = world.tensors()
    labels = attrs["color"] * len(SHAPES) + attrs["shape"]
    generator = torch.Generator().manual_seed(
        seed * 7919 + {"train": 0, "val": 1, "test": 2}[split]
    )
    visible = torch.rand(size, generator=generator) >= blank_images
    images = torch.where(visible[:, None, None, None], images, torch.full_like(images, 0.5))
    if image_noise:  # the same noise for an item every time it is drawn: part of the data
        noise = torch.randn(images.shape, generator=generator) * image_noise
        images = (images + noise).clamp(0.0, 1.0)
    caption_right = torch.rand(size, generator=generator) >= wrong_captions
    other = (labels + torch.randint(1, NUM_CLASSES, (size,), generator=generator)) % NUM_CLASSES
    named = torch.where(caption_right, labels, other)
    tokens = torch.stack([named // len(SHAPES), len(COLORS) + named % len(SHAPES)], dim=1)
    return ImbalanceSplit(images, tokens, labels, visible, caption_right)


class CaptionEncoder(nn.Module):
    """The caption tower: each word's embedding, concatenated, through one hidden layer.

    Shapes:
        ``(B, 2)`` word indices → ``(B, embed_dim)``.
    """

    def __init__(self, embed_dim: int = 64, word_dim: int = 16):
        super().__init__()
        self.words = nn.Embedding(len(VOCAB), word_dim)
        self.mlp = nn.Sequential(nn.Linear(2 * word_dim, embed_dim), nn.ReLU())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.words(tokens).flatten(1))


class LateFusionClassifier(nn.Module):
    """Two towers and two linear heads; the fused logits are the sum of the heads' logits.

    Summing two linear heads is a linear layer on the concatenated features, the fusion of
    OGM-GE's experiments; written as a sum, each modality's part of every logit can be read.

    Shapes:
        ``forward(images (B, 3, S, S), tokens (B, 2))`` → ``(fused, image part, text part)``,
        each ``(B, NUM_CLASSES)``.
    """

    def __init__(self, image_size: int = 32, width: int = 16, embed_dim: int = 64):
        super().__init__()
        self.image_encoder = ConvEncoder(image_size=image_size, width=width, embed_dim=embed_dim)
        self.text_encoder = CaptionEncoder(embed_dim=embed_dim)
        self.image_head = nn.Linear(embed_dim, NUM_CLASSES)
        self.text_head = nn.Linear(embed_dim, NUM_CLASSES, bias=False)  # one bias, the image's

    def parts(
        self, images: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each modality's part of the logits, ``(B, NUM_CLASSES)`` twice."""
        return self.image_head(self.image_encoder(images)), self.text_head(
            self.text_encoder(tokens)
        )

    def forward(self, images: torch.Tensor, tokens: torch.Tensor):
        image_part, text_part = self.parts(images, tokens)
        return image_part + text_part, image_part, text_part


def ogm_coefficients(
    image_logits: torch.Tensor, text_logits: torch.Tensor, labels: torch.Tensor, alpha: float
) -> tuple[float, float]:
    """OGM's modulation coefficients for one batch (Peng et al., 2022, eq. 6–8).

    Each modality's score is the sum over the batch of its own softmax probability of the true
    class. The ratio of the two says which one leads; the leader's gradient is multiplied by
    ``1 - tanh(alpha * ratio)`` (their eq. 10), the other's by 1. The coefficient jumps from 1
    to ``1 - tanh(alpha)`` as a modality takes the lead: the leader is always slowed by at least
    that much. At a tie, which floating-point scores almost never give, the text is slowed, as
    in the paper's code.

    Args:
        image_logits, text_logits: ``(B, C)`` each modality's part of the logits.
        labels: ``(B,)`` the true classes.
        alpha: how hard to slow the leader down (≥ 0).

    Returns:
        ``(image coefficient, text coefficient)``, each in (0, 1].
    """
    check_tensor("image_logits", image_logits, ("B", "C"), floating=True)
    check_tensor("text_logits", text_logits, tuple(image_logits.shape), floating=True)
    check_tensor("labels", labels, (image_logits.shape[0],), floating=False)
    check_number("alpha", alpha, low=0.0)
    with torch.no_grad():
        scores = [
            logits.softmax(dim=1).gather(1, labels[:, None]).sum().item()
            for logits in (image_logits, text_logits)
        ]
    image_score, text_score = scores
    ratio = image_score / max(text_score, 1e-12)
    if ratio > 1:
        return 1.0 - math.tanh(alpha * ratio), 1.0
    return 1.0, 1.0 - math.tanh(alpha / max(ratio, 1e-12))


class GradientModulation:
    """OGM-GE as a training step (Peng et al., 2022).

    :meth:`step` computes the loss and the batch's two coefficients (:func:`ogm_coefficients`);
    after the backward pass, :meth:`after_backward` multiplies each modality's gradients by its
    coefficient and, for generalisation enhancement (GE), adds to the gradient of each of its
    weight matrices and kernels Gaussian noise with that gradient's own standard deviation.

    Peng et al.'s code modulates the encoders' convolution kernels and leaves the shared fusion
    layer alone. Here the caption tower has no convolutions, the fusion is a sum, and each head
    belongs to its modality: a caption's two words are told apart even by an untrained caption
    tower, so slowing that tower alone would leave its head free to learn the whole caption
    shortcut. Every parameter of each modality's branch, tower and head, is modulated.
    """

    def __init__(
        self, alpha: float = 0.5, noise: bool = True, generator=None, coefficients_fn=None
    ):
        self.alpha = check_number("alpha", alpha, low=0.0)
        self.noise, self.generator = bool(noise), generator
        self.coefficients_fn = coefficients_fn or ogm_coefficients  # a reader's, exercise 9.5
        self.coefficients = (1.0, 1.0)

    def step(self, model: LateFusionClassifier, batch) -> dict[str, torch.Tensor]:
        images, tokens, labels = batch
        fused, image_part, text_part = model(images, tokens)
        self.coefficients = tuple(
            float(k) for k in self.coefficients_fn(image_part, text_part, labels, self.alpha)
        )
        return {
            "loss": F.cross_entropy(fused, labels),
            **margins(image_part, text_part, labels),
            "image coefficient": torch.tensor(self.coefficients[0]),
            "text coefficient": torch.tensor(self.coefficients[1]),
        }

    @torch.no_grad()
    def after_backward(self, model: LateFusionClassifier) -> None:
        branches = (
            (model.image_encoder, model.image_head),
            (model.text_encoder, model.text_head),
        )
        for branch, coefficient in zip(branches, self.coefficients):
            for weight in (p for module in branch for p in module.parameters()):
                if weight.grad is None:
                    continue
                spread = weight.grad.std().item() if weight.grad.dim() > 1 else 0.0
                weight.grad.mul_(coefficient)
                if self.noise and spread > 0:
                    noise = torch.randn(weight.grad.shape, generator=self.generator)
                    weight.grad.add_(noise.to(weight.grad.device) * spread)


def margins(
    image_part: torch.Tensor, text_part: torch.Tensor, labels: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Each modality's part of the true class's logit, above its mean over the classes,
    averaged over the batch: the fused margin is their sum, so the two show each one's share."""
    out = {}
    for name, part in zip(MODALITIES, (image_part, text_part)):
        centred = part.detach() - part.detach().mean(dim=1, keepdim=True)
        out[f"{name} margin"] = centred.gather(1, labels[:, None]).mean()
    return out


REPAIRS = ("none", "ogm-ge", "auxiliary heads", "modality dropout")


def _step(repair: str, dropout: float, auxiliary_weight: float, generator: torch.Generator):
    """The training step of each repair but OGM-GE's (which needs its own object)."""

    def step(model: LateFusionClassifier, batch) -> dict[str, torch.Tensor]:
        images, tokens, labels = batch
        image_part, text_part = model.parts(images, tokens)
        logged = margins(image_part, text_part, labels)
        if repair == "modality dropout":
            # each item loses its image part, its text part, or (most often) neither
            draw = torch.rand(len(labels), generator=generator).to(labels.device)
            keep_image = (draw >= dropout / 2)[:, None]
            keep_text = ((draw < dropout / 2) | (draw >= dropout))[:, None]
            image_part, text_part = image_part * keep_image, text_part * keep_text
        loss = F.cross_entropy(image_part + text_part, labels)
        if repair == "auxiliary heads":
            unimodal = F.cross_entropy(image_part, labels) + F.cross_entropy(text_part, labels)
            loss = loss + auxiliary_weight * unimodal
        return {"loss": loss, **logged}

    return step


def train_imbalance_model(
    train: ImbalanceSplit,
    device: torch.device,
    *,
    modalities: tuple[str, ...] = MODALITIES,
    repair: str = "none",
    num_steps: int = 400,
    batch_size: int = 64,
    lr: float = 2e-3,
    alpha: float = 0.5,
    dropout: float = 0.5,
    auxiliary_weight: float = 1.0,
    seed: int = 0,
    desc: str = "train",
    progress: bool = True,
    coefficients_fn=None,
    schedule: str | torch.Tensor = "one-cycle",
    precision: str = "fp32",
) -> tuple[LateFusionClassifier, History]:
    """Train a :class:`LateFusionClassifier` on both modalities, or on one alone.

    Adam with a one-cycle schedule (peak ``lr``), ``num_steps`` batches. With one modality,
    the other's head is set to zero and its tower never trains: its part of the logits is 0, and
    the model is that modality's encoder trained alone.

    Args:
        modalities: ``("image", "text")``, ``("image",)`` or ``("text",)``.
        repair: one of :data:`REPAIRS` (with both modalities only): OGM-GE with ``alpha``,
            the fused loss plus ``auxiliary_weight`` times each modality's own cross-entropy,
            or modality dropout (each item loses its image part with probability
            ``dropout / 2``, or its text part with probability ``dropout / 2``).
        coefficients_fn: OGM's coefficients (default :func:`ogm_coefficients`; a reader's own
            from exercise 9.5).
        seed: seeds the weights, the batches and the repairs' draws.
        schedule: the rate's schedule (:data:`cmlib.optim.schedules.KINDS`, warm-ups over a
            fifth of the steps, or every step's factor); ``precision``: ``"bf16"`` runs the
            forward pass under bf16 autocast (chapter 09 part 5).

    Returns:
        the model (eval mode) and its :class:`~cmlib.train.History`, whose ``steps`` hold the
        loss and each modality's margin (:func:`margins`) at every step.
    """
    if not isinstance(train, ImbalanceSplit):
        raise TypeError(f"expected an ImbalanceSplit, got {type(train).__name__}")
    if tuple(modalities) not in (MODALITIES, ("image",), ("text",)):
        raise ValueError(
            f"modalities must be {MODALITIES}, ('image',) or ('text',), got {modalities!r}"
        )
    check_choice("repair", repair, REPAIRS)
    if repair != "none" and tuple(modalities) != MODALITIES:
        raise ValueError(f"the repair {repair!r} needs both modalities")
    check_int("num_steps", num_steps)
    check_int("batch_size", batch_size, minimum=2)
    check_number("dropout", dropout, low=0.0, high=1.0)
    check_number("lr", lr, low=0.0, low_open=True)
    torch.manual_seed(check_int("seed", seed, minimum=0))
    generator = torch.Generator().manual_seed(seed)
    model = LateFusionClassifier(image_size=train.images.shape[-1]).to(device)
    data = (train.images, train.tokens, train.labels)
    batches = (
        tuple(tensor[index] for tensor in data)
        for index in endless_batches(len(train), batch_size, generator)
    )
    modulation = None
    if tuple(modalities) != MODALITIES:
        only = modalities[0]
        with torch.no_grad():  # the other modality's part of the logits: exactly 0
            for weight in (model.text_head if only == "image" else model.image_head).parameters():
                weight.zero_()

        def step(model, batch):
            images, tokens, labels = batch
            image_part, text_part = model.parts(images, tokens)
            part = image_part if only == "image" else text_part
            return {"loss": F.cross_entropy(part, labels), **margins(image_part, text_part, labels)}
    elif repair == "ogm-ge":
        modulation = GradientModulation(alpha, generator=generator, coefficients_fn=coefficients_fn)
        step = modulation.step
    else:
        step = _step(repair, dropout, auxiliary_weight, generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    # one-cycle by default: warm up for a fifth of the steps, then anneal to nearly 0, so that
    # every run ends on a settled model rather than wherever a constant rate's last step left it
    scheduler = make_scheduler(optimizer, schedule, num_steps, warmup=0.2)
    history = fit_steps(
        model,
        batches,
        optimizer,
        num_steps,
        device,
        step_fn=in_precision(step, device, precision),
        scheduler=scheduler,
        after_backward=modulation.after_backward if modulation else None,
        progress=progress,
        desc=desc,
    )
    return model, history


@torch.no_grad()
def _features(model: LateFusionClassifier, split: ImbalanceSplit, device, batch_size=500):
    image, text = [], []
    for index in torch.arange(len(split)).split(batch_size):
        image.append(model.image_encoder(split.images[index].to(device)).cpu())
        text.append(model.text_encoder(split.tokens[index].to(device)).cpu())
    return torch.cat(image), torch.cat(text)


@torch.no_grad()
def evaluate(
    model: LateFusionClassifier,
    probe_train: ImbalanceSplit,
    test: ImbalanceSplit,
    device: torch.device,
) -> dict[str, float]:
    """Accuracy on ``test``: fused; with the text or the image missing (its part of the logits
    left out); and a linear probe of each encoder, fitted on ``probe_train``'s features.

    The image probe is fitted and scored on the items whose image is visible, the text probe on
    the items whose caption is right: what each encoder could tell a linear classifier about
    the object when its modality carries it. ``"image colour"`` and ``"image shape"``: how often
    the image's part alone names the right colour, and the right shape, on the visible items.
    """
    for name, split in (("probe_train", probe_train), ("test", test)):
        if not isinstance(split, ImbalanceSplit):
            raise TypeError(f"{name} must be an ImbalanceSplit, got {type(split).__name__}")
    model.eval()
    # each encoder runs once per split: the probes read the features, the heads the same ones
    train_image, train_text = _features(model, probe_train, device)
    test_image, test_text = _features(model, test, device)
    image_part = model.image_head(test_image.to(device)).cpu()
    text_part = model.text_head(test_text.to(device)).cpu()

    def accuracy(logits):
        return (logits.argmax(dim=1) == test.labels).float().mean().item()

    v, w = probe_train.visible, test.visible
    r, s = probe_train.caption_right, test.caption_right
    named, truth = image_part[w].argmax(dim=1), test.labels[w]
    shapes = len(SHAPES)
    return {
        "fused": accuracy(image_part + text_part),
        "image only (text missing)": accuracy(image_part),
        "text only (image missing)": accuracy(text_part),
        "image colour": (named // shapes == truth // shapes).float().mean().item(),
        "image shape": (named % shapes == truth % shapes).float().mean().item(),
        "image probe": linear_probe_accuracy(
            train_image[v], probe_train.labels[v], test_image[w], test.labels[w]
        ),
        "text probe": linear_probe_accuracy(
            train_text[r], probe_train.labels[r], test_text[s], test.labels[s]
        ),
    }
