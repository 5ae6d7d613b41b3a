"""Training adversarial alignment, and checking it with a fresh discriminator.

* :func:`train_adversarial_alignment` — a warm-up with λ = 0, then the game, through
  :func:`cmlib.train.fit`, with the three choices that make it settle (a faster discriminator,
  weight decay on it, shrinking encoder steps);
* :func:`alignment_accuracies` — the game's own verdict on a test set;
* :func:`modality_probe` — a fresh discriminator fitted to convergence on the frozen
  embeddings: the honest measurement.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch.utils.data import DataLoader

from ..probes import fit_lbfgs
from ..train import History, fit
from ..validate import check_int, check_number, check_positive_ints
from .adversarial import AdversarialAligner, ModalityDiscriminator, modality_loss


def train_adversarial_alignment(
    aligner: AdversarialAligner,
    train_loader: DataLoader,
    warmup_epochs: int,
    adversarial_epochs: int,
    device: torch.device,
    strength: float = 1.0,
    disc_steps: int = 10,
    encoder_lr: float = 1e-3,
    final_encoder_lr: float | None = 1e-4,
    disc_lr: float = 1e-2,
    disc_weight_decay: float = 0.2,
    num_image_inputs: int = 1,
    eval_fn: Callable[[AdversarialAligner], dict[str, float]] | None = None,
    progress: bool = True,
) -> History:
    """Train an :class:`AdversarialAligner`: a warm-up with ``λ = 0``, then the adversarial game.

    Each batch is ``(*image_input, *text_input, labels)``; its first ``num_image_inputs``
    tensors are the image encoder's arguments. Per batch the discriminator first takes
    ``disc_steps − 1`` steps of its own on the batch's (frozen) embeddings, then one joint
    step on ``task + disc`` trains everyone, the encoders through :func:`grad_reverse` with
    ``λ = strength`` (``λ = 0`` during the warm-up). Three choices keep the game from circling:

    * the discriminator is the faster player (``disc_steps``, ``disc_lr > encoder_lr``), so
      it is near its best response and its accuracy measures overlap, not lag;
    * weight decay pulls its weights to zero, so once the modalities overlap the best
      discriminator is *no* discriminator and the reversed gradient fades out, instead of
      pushing the two clouds through each other;
    * the encoders' learning rate falls along a cosine from ``encoder_lr`` to
      ``final_encoder_lr`` over the adversarial epochs, so they end with small steps that the
      discriminator can follow, not with a jump it has not seen yet.

    Args:
        aligner: the model; it is moved to ``device``.
        train_loader: yields ``(*image_input, *text_input, labels)`` batches and has a length
            (a ``DataLoader``).
        warmup_epochs: epochs with ``λ = 0`` (the discriminator learns, the encoders ignore it).
        adversarial_epochs: epochs with ``λ = strength``.
        device: where to train.
        strength: the gradient-reversal strength ``λ``.
        disc_steps: discriminator steps per encoder step.
        encoder_lr: Adam learning rate of the encoders and the classifier.
        final_encoder_lr: their learning rate in the last epoch (cosine schedule, set once per
            epoch); ``None`` keeps ``encoder_lr`` throughout.
        disc_lr: Adam learning rate of the discriminator.
        disc_weight_decay: L2 weight decay of the discriminator.
        num_image_inputs: how many leading tensors of a batch go to the image encoder.
        eval_fn: called after each epoch, as :func:`cmlib.train.fit` does (eval mode, no
            gradients; :func:`modality_probe` switches them on for its own training); returns
            metrics.
        progress: show a progress bar.

    Returns:
        A :class:`cmlib.train.History` (loss = task + discriminator), warm-up epochs first.
    """
    if not isinstance(aligner, AdversarialAligner):
        raise TypeError(f"aligner must be an AdversarialAligner, got {type(aligner).__name__}")
    check_int("warmup_epochs", warmup_epochs, minimum=0)
    check_positive_ints(
        adversarial_epochs=adversarial_epochs,
        disc_steps=disc_steps,
        num_image_inputs=num_image_inputs,
    )
    for name, value in (("strength", strength), ("disc_weight_decay", disc_weight_decay)):
        check_number(name, value, low=0)
    for name, value in (("encoder_lr", encoder_lr), ("disc_lr", disc_lr)):
        check_number(name, value, low=0, low_open=True)
    if final_encoder_lr is not None and not 0 < final_encoder_lr <= encoder_lr:
        raise ValueError(
            f"final_encoder_lr must lie in (0, encoder_lr={encoder_lr}], got {final_encoder_lr!r}"
        )
    if not hasattr(train_loader, "__len__"):
        raise TypeError(
            f"train_loader must have a length (a DataLoader), got {type(train_loader).__name__}"
        )
    if len(train_loader) == 0:
        raise ValueError("train_loader has no batches")
    disc_params = list(aligner.discriminator.parameters())
    disc_ids = {id(p) for p in disc_params}
    encoder_params = [p for p in aligner.parameters() if p.requires_grad and id(p) not in disc_ids]
    optimizer = torch.optim.Adam(
        [
            {"params": encoder_params, "lr": encoder_lr},
            {"params": disc_params, "lr": disc_lr, "weight_decay": disc_weight_decay},
        ]
    )

    def game_step(
        lam: float,
    ) -> Callable[[AdversarialAligner, Sequence[torch.Tensor]], torch.Tensor]:
        def step(model: AdversarialAligner, batch: Sequence[torch.Tensor]) -> torch.Tensor:
            if len(batch) < num_image_inputs + 2:
                raise ValueError(
                    f"a batch must be (*image_input, *text_input, labels) with "
                    f"{num_image_inputs} image tensor(s), got {len(batch)} tensors"
                )
            z_img, z_txt = model.embed(batch[:num_image_inputs], batch[num_image_inputs:-1])
            for _ in range(disc_steps - 1):  # the discriminator catches up on these embeddings
                optimizer.zero_grad(
                    set_to_none=True
                )  # the encoders get no gradient: Adam skips them
                modality_loss(model.discriminator, z_img.detach(), z_txt.detach())[0].backward()
                optimizer.step()
            out = model.embedding_losses(z_img, z_txt, batch[-1], lam)
            return out["task"] + out["disc"]  # fit takes the joint step

        return step

    warmup = (
        fit(
            aligner,
            train_loader,
            optimizer,
            warmup_epochs,
            device,
            step_fn=game_step(0.0),
            eval_fn=eval_fn,
            progress=progress,
            desc="warm-up (λ = 0)",
        )
        if warmup_epochs
        else History()
    )
    scheduler = None
    if final_encoder_lr is not None:  # cosine over epochs; constant within an epoch
        steps_per_epoch = len(train_loader)
        ratio = final_encoder_lr / encoder_lr

        def encoder_factor(step: int) -> float:
            done = min(step // steps_per_epoch, adversarial_epochs - 1) / max(
                1, adversarial_epochs - 1
            )
            return ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * done))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, [encoder_factor, lambda step: 1.0])
    game = fit(
        aligner,
        train_loader,
        optimizer,
        adversarial_epochs,
        device,
        step_fn=game_step(strength),
        eval_fn=eval_fn,
        scheduler=scheduler,
        progress=progress,
        desc=f"adversarial (λ = {strength:g})",
    )
    return warmup + game


@torch.no_grad()
def alignment_accuracies(
    aligner: AdversarialAligner,
    image_input: Sequence[torch.Tensor],
    text_input: Sequence[torch.Tensor],
    labels: torch.Tensor,
    device: torch.device | None = None,
) -> dict[str, float]:
    """The aligner's own task and discriminator accuracy on a (test) set, in eval mode.

    The aligner's train/eval mode is restored afterwards.

    Args:
        image_input, text_input: the encoders' arguments for all ``N`` examples (CPU is fine).
        labels: ``(N,)`` classes.
        device: where to compute (default: where the aligner is).

    Returns:
        ``{"task_acc": ..., "disc_acc": ...}``: the shared classifier's accuracy over all ``2N``
        embeddings, and the game's discriminator's accuracy at telling their modality.
    """
    if not isinstance(aligner, AdversarialAligner):
        raise TypeError(f"aligner must be an AdversarialAligner, got {type(aligner).__name__}")
    device = device or next(aligner.parameters()).device
    was_training = aligner.training
    aligner.eval().to(device)
    z_img, z_txt = aligner.embed(
        [x.to(device) for x in image_input], [x.to(device) for x in text_input]
    )
    out = aligner.embedding_losses(z_img, z_txt, labels.to(device), strength=0.0)
    aligner.train(was_training)
    return {"task_acc": out["task_acc"].item(), "disc_acc": out["disc_acc"].item()}


def modality_probe(
    aligner: AdversarialAligner,
    train_inputs: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]],
    test_inputs: tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]],
    hidden_dim: int | None = None,
    max_iter: int = 200,
    seed: int = 0,
    device: torch.device | None = None,
) -> float:
    """Accuracy of a *fresh* discriminator trained on the aligner's frozen embeddings.

    The game's own discriminator can be behind: the encoders have just moved to where it is
    wrong. A probe (探针) trained from scratch to convergence — full-batch L-BFGS, no weight
    decay — on the training embeddings, and scored on the test embeddings, says whether the
    modalities can still be told apart by a discriminator of this kind. For the linear probe
    (logistic regression) the training problem is convex, so the answer does not depend on
    the initialisation. The global random state is left untouched.

    Args:
        aligner: the trained aligner (left unchanged).
        train_inputs: ``(image_input, text_input)`` for the probe's training set.
        test_inputs: ``(image_input, text_input)`` for its test set.
        hidden_dim: the probe's hidden width (``None``: linear).
        max_iter: L-BFGS iterations.
        seed: seeds the probe's initial weights.
        device: where to compute (default: where the aligner is).

    Returns:
        The probe's test accuracy at telling image (1) from text (0) embeddings; 0.5 is chance.
    """
    if not isinstance(aligner, AdversarialAligner):
        raise TypeError(f"aligner must be an AdversarialAligner, got {type(aligner).__name__}")
    for name, inputs in (("train_inputs", train_inputs), ("test_inputs", test_inputs)):
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            raise ValueError(f"{name} must be a pair (image_input, text_input)")
    device = device or next(aligner.parameters()).device
    was_training = aligner.training
    aligner.eval().to(device)
    with torch.no_grad():
        (tr_img, tr_txt), (te_img, te_txt) = (
            aligner.embed([x.to(device) for x in image_input], [x.to(device) for x in text_input])
            for image_input, text_input in (train_inputs, test_inputs)
        )
    aligner.train(was_training)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = ModalityDiscriminator(aligner.embed_dim, hidden_dim).to(device)
    fit_lbfgs(probe, lambda: modality_loss(probe, tr_img, tr_txt)[0], max_iter)
    with torch.no_grad():
        return modality_loss(probe.eval(), te_img, te_txt)[1].item()
