"""Domain-adversarial training (DANN, Ganin & Lempitsky, 2015): adapt a classifier to a new
domain that has no labels (chapter 06, §4.1.1 对抗性训练算法).

A classifier learns colour and shape from labelled *photos* and is then applied to unlabelled
*sketches*. Its features differ between the two styles, so what it learnt may not carry over.
DANN adds a domain discriminator on the features, behind a gradient reversal layer: the
discriminator learns to tell photo features from sketch features, and the encoder, receiving the
reversed gradient, learns features the discriminator cannot tell apart — aligned features,
which the label heads trained on photos can then read on sketches too.

* :class:`DomainAdaptationNet` — encoder, label heads and the domain discriminator;
* :func:`grl_schedule` — the reversal strength, ramped from 0 to 1 over training;
* :func:`lr_annealing` — the paper's learning-rate schedule, which lets the weights settle;
* :func:`train_dann` — the training loop (``adapt=False`` gives the source-only baseline);
* :func:`label_accuracy` — per attribute and for colour and shape together.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..generation.ema import evaluate_during_training
from ..train import History, endless_batches, fit_steps, predict
from ..validate import check_int, check_number, check_tensor
from ..vision import ConvEncoder, check_images
from .adversarial import grad_reverse

#: The attributes the classifier predicts, and their class counts.
DANN_HEADS = {"color": 6, "shape": 3}


class DomainAdaptationNet(nn.Module):
    """A ConvEncoder with colour and shape heads, and a domain discriminator on its features.

    Args:
        image_size: input height and width (a multiple of 8).
        width: ConvEncoder width.
        feature_dim: size of the shared features.

    Shapes:
        ``forward(x (B, 3, S, S))`` → dict of logits, ``"color"`` ``(B, 6)``, ``"shape"``
        ``(B, 3)``; ``features(x)`` → ``(B, feature_dim)``; ``domain_logits(h)`` → ``(B,)``.
    """

    def __init__(self, image_size: int = 16, width: int = 16, feature_dim: int = 64):
        super().__init__()
        self.image_size = image_size
        self.encoder = ConvEncoder(3, image_size, width, embed_dim=feature_dim)
        self.heads = nn.ModuleDict({k: nn.Linear(feature_dim, n) for k, n in DANN_HEADS.items()})
        self.domain = nn.Sequential(nn.Linear(feature_dim, 64), nn.ReLU(), nn.Linear(64, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, 3, self.image_size)
        return F.relu(self.encoder(x))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(x)
        return {k: head(h) for k, head in self.heads.items()}

    def domain_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.domain(h).squeeze(1)


def grl_schedule(progress: float, gamma: float = 10.0) -> float:
    """λ(p) = 2 / (1 + e^(−γp)) − 1: 0 at the start, near 1 by the end.

    Early on the features are noise and aligning them is pointless; the ramp lets the label
    heads learn first (Ganin et al., 2016)."""
    check_number("progress", progress, 0.0, 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


def lr_annealing(progress: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """The learning-rate multiplier 1 / (1 + α·p)^β: 1 at the start, 11^−0.75 ≈ 0.17 at the end.

    Ganin et al. (2016) anneal the rate so: a constant one keeps the features moving to the
    last step, and with them how well the photo-trained heads happen to read the other domain."""
    check_number("progress", progress, 0.0, 1.0)
    check_number("alpha", alpha, 0.0)
    check_number("beta", beta, 0.0)
    return (1.0 + alpha * progress) ** -beta


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean entropy of the softmax of ``logits`` ``(B, C)``."""
    return -(F.softmax(logits, 1) * F.log_softmax(logits, 1)).sum(1).mean()


def train_dann(
    model: DomainAdaptationNet,
    source_images: torch.Tensor,
    source_attrs: dict[str, torch.Tensor],
    target_images: torch.Tensor | None,
    num_steps: int,
    device: torch.device,
    adapt: bool = True,
    batch_size: int = 64,
    lr: float = 1e-3,
    domain_weight: float = 1.0,
    entropy_weight: float = 0.0,
    seed: int = 0,
    progress: bool = True,
    evaluate: Callable[[int], dict[str, float]] | None = None,
    eval_every: int = 0,
    anneal_lr: bool = False,
) -> History:
    """Train on labelled source images, and (``adapt=True``) align with unlabelled target images.

    Args:
        model: the network, trained in place.
        source_images: labelled images ``(N, 3, S, S)``.
        source_attrs: their labels, ``"color"`` and ``"shape"``, each ``(N,)``.
        target_images: unlabelled images of the other domain ``(M, 3, S, S)``; their labels are
            never seen. Not needed when ``adapt=False``.
        num_steps: updates.
        device: where to train.
        adapt: add the domain-adversarial loss; ``False`` is the source-only baseline.
        batch_size: images of each domain per step.
        lr: Adam's learning rate.
        domain_weight: weight of the domain loss.
        entropy_weight: weight of the mean prediction entropy on target images (DANN+Ent):
            aligned marginals can still leave target features between classes; asking for
            confident target predictions pushes them into one class or another.
        seed: fixes the batch order.
        progress: show a tqdm bar.
        evaluate: ``evaluate(step) -> metrics``, called every ``eval_every`` steps and after the
            last, with the model in eval mode and the random state forked (a long run's curve).
        eval_every: steps between evaluations (0: only after the last step).
        anneal_lr: decay the learning rate by :func:`lr_annealing` (``False``: constant).

    Returns:
        A :class:`~cmlib.train.History` of one epoch: per-step ``loss``, ``label_loss`` and,
        when adapting, ``domain_loss``, ``domain_accuracy`` and ``lambda``; with ``evaluate``,
        also ``eval_step`` and ``eval_<metric>`` for each evaluation.
    """
    check_tensor("source_images", source_images, ("N", 3, "S", "S"), floating=True, nonempty=True)
    for k in DANN_HEADS:
        check_tensor(f"source_attrs[{k!r}]", source_attrs.get(k), (len(source_images),))
    if adapt:
        check_tensor(
            "target_images",
            target_images,
            ("M",) + tuple(source_images.shape[1:]),
            floating=True,
            nonempty=True,
        )
    check_int("num_steps", num_steps)
    check_int("eval_every", eval_every, minimum=0)
    if evaluate is not None and not callable(evaluate):
        raise TypeError(f"evaluate must be callable, got {type(evaluate).__name__}")
    if not isinstance(anneal_lr, bool):
        raise TypeError(f"anneal_lr must be a bool, got {type(anneal_lr).__name__}")
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr)
    scheduler = None
    if anneal_lr:  # stepped after each update: step s trains at lr_annealing(s / (num_steps - 1))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_annealing(min(1.0, step / max(1, num_steps - 1)))
        )
    rng = torch.Generator().manual_seed(seed)
    source_stream = endless_batches(len(source_images), batch_size, rng)
    target_stream = endless_batches(len(target_images), batch_size, rng) if adapt else None

    evaluations: list[dict[str, float]] = []

    def score(done: int) -> None:
        scores = evaluate_during_training(evaluate, done, (model,), None, device)
        evaluations.append({"eval_step": done, **{f"eval_{k}": v for k, v in scores.items()}})

    def batches():
        # per step: the source batch's indices, then the target's (one generator draws both)
        for done in itertools.count():
            # the next batch is drawn once the last update is done: the moment to look
            if evaluate is not None and eval_every and done and done % eval_every == 0:
                score(done)
            idx = next(source_stream)
            source = (source_images[idx], *(source_attrs[k][idx] for k in model.heads))
            yield source, (target_images[next(target_stream)] if adapt else None)

    steps = itertools.count()

    def step_fn(model: DomainAdaptationNet, batch) -> dict[str, torch.Tensor]:
        (images, *labels), target = batch
        h_source = model.features(images)
        label_loss = sum(
            F.cross_entropy(head(h_source), y) for head, y in zip(model.heads.values(), labels)
        )
        out = {"loss": label_loss, "label_loss": label_loss}
        if not adapt:
            return out
        lam = grl_schedule(next(steps) / max(1, num_steps - 1))
        h_target = model.features(target)
        h = grad_reverse(torch.cat([h_source, h_target]), lam)
        domain = torch.cat([torch.ones(len(h_source)), torch.zeros(len(h_target))]).to(h.device)
        logits = model.domain_logits(h)
        domain_loss = F.binary_cross_entropy_with_logits(logits, domain)
        out["loss"] = label_loss + domain_weight * domain_loss
        if entropy_weight > 0:
            entropy = sum(_entropy(head(h_target)) for head in model.heads.values())
            out["loss"] = out["loss"] + entropy_weight * entropy
            out["target_entropy"] = entropy
        return out | {
            "domain_loss": domain_loss,
            "domain_accuracy": ((logits > 0).float() == domain).float().mean(),
            "lambda": torch.tensor(lam),
        }

    history = fit_steps(
        model,
        batches(),
        optimizer,
        num_steps,
        device,
        step_fn,
        scheduler=scheduler,
        progress=progress,
        desc="DANN" if adapt else "source only",
    )
    if evaluate is not None:
        if not evaluations or evaluations[-1]["eval_step"] != num_steps:
            score(num_steps)
        for row in evaluations:
            history.log_step(row)
    return history


@torch.no_grad()
def label_accuracy(
    model: DomainAdaptationNet, images: torch.Tensor, attrs: dict[str, torch.Tensor]
) -> dict[str, float]:
    """Accuracy per attribute and for ``"color+shape"`` together."""
    logits = predict(model, images, next(model.parameters()).device)
    right = {k: logits[k].argmax(1) == attrs[k] for k in DANN_HEADS}
    out = {k: v.float().mean().item() for k, v in right.items()}
    out["color+shape"] = (right["color"] & right["shape"]).float().mean().item()
    return out
