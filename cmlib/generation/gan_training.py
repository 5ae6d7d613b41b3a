"""Training the conditional GAN of :mod:`cmlib.generation.gan` (article §3.2.1.1).

:func:`train_cgan` is the loop of two players, written out because it is the lesson: the hinge
losses (:mod:`cmlib.generation.gan_losses`, with the R1 penalty and the mode-seeking term it can
add), the fakes detached in the discriminator step, auxiliary attribute heads and an EMA of the
generator's weights. It returns a :class:`cmlib.train.History` like every other trainer. The
models live in :mod:`cmlib.generation.gan` (the model/train split of nanoGPT's ``model.py`` and
``train.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..train import History, progress_bar, shuffled_batches
from ..validate import check_int, check_number
from ..vision import check_images, permute_channels
from .ema import WeightAverage, evaluate_during_training
from .gan import Generator, GlyphGenerator, ProjectionDiscriminator
from .gan_losses import (
    discriminator_hinge_loss,
    generator_hinge_loss,
    mode_seeking_loss,
    r1_penalty,
)

#: ``batch size -> (prompts, labels)``: prompts G is asked to draw with no real image beside them,
#: and the class each auxiliary head should find in the fakes (see ``composed_prompts``).
PromptDraw = Callable[[int], tuple[list[str], dict[str, torch.Tensor]]]


def train_cgan(
    generator: Generator | GlyphGenerator,
    discriminator: ProjectionDiscriminator,
    g_text: nn.Module,
    d_text: nn.Module,
    images: torch.Tensor,
    prompt_fn: Callable[[torch.Tensor], list[str]],
    num_steps: int,
    device: torch.device,
    batch_size: int = 64,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    d_lr: float | None = None,
    attrs: dict[str, torch.Tensor] | None = None,
    aux_weight: float = 1.0,
    d_aux_weight: float | None = None,
    ema_decay: float | None = None,
    decay_from: float | None = None,
    color_invariant: tuple[str, ...] = (),
    seed: int = 0,
    progress: bool = True,
    evaluate: Callable[[int], dict[str, float]] | None = None,
    eval_every: int = 0,
    r1_weight: float = 0.0,
    mode_seeking: float = 0.0,
    composed_prompts: PromptDraw | None = None,
    doubt_weight: float = 0.0,
) -> History:
    """Train a conditional GAN with the hinge loss, alternating one D step and one G step.

    In the D step the fakes are **detached**: D's loss must not push gradients
    into G (G would be trained to *help* D). Each player has its own prompt encoder.

    Args:
        generator: G(z, c).
        discriminator: D(x, c).
        g_text: the generator's prompt encoder (trained with G).
        d_text: the discriminator's prompt encoder (trained with D).
        images: real images ``(N, C, S, S)`` in [0, 1].
        prompt_fn: ``indices (B,) -> B prompts`` for those real images.
        num_steps: D+G updates.
        device: where to train.
        batch_size: real images per step (and as many fakes).
        lr: Adam's learning rate for G (and for D unless ``d_lr`` is given).
        betas: Adam's betas.
        d_lr: D's learning rate, when it differs from G's (the two time-scale update rule,
            Heusel et al., 2017: a faster D keeps up with G).
        attrs: labels of the real images for the discriminator's auxiliary heads (each ``(N,)``);
            the fakes carry the labels of the real images whose prompts they were drawn for.
        aux_weight: weight of the auxiliary classification loss in G's step.
        d_aux_weight: its weight in D's step (default: ``aux_weight``). A larger weight makes D
            learn *what* the images show sooner, and G can only learn what D already knows.
        ema_decay: if set (e.g. 0.99), keep an exponential moving average of G's and its prompt
            encoder's weights and load it into them at the end. The average smooths out the
            oscillation of the game: its samples are steadier than the last step's.
        decay_from: if set (e.g. 0.5), both learning rates fall linearly from their value at this
            fraction of the steps towards 0 (the last update runs at 1/(steps left) of it), as
            CycleGAN's schedule does, so that the players may settle.
        color_invariant: auxiliary heads whose label does not depend on colour (``("shape",)``).
            D's step also trains them on the real images with their colour channels shuffled
            (:func:`~cmlib.vision.permute_channels`), so they cannot read a shape off its
            colour. G learns shapes from these heads: one that says "red, so not a triangle"
            would teach G never to draw a red triangle.
        seed: fixes the batch order.
        progress: show a tqdm bar.
        evaluate: ``evaluate(step) -> metrics``, called every ``eval_every`` steps and after the
            last, with the generator training would return then (EMA weights) in eval mode and
            under a forked random state, so evaluating does not change the run.
        eval_every: steps between evaluations (0: only after the last step).
        r1_weight: γ of the R1 penalty in D's step, ``γ/2 · E‖∇ₓD(x, c)‖²`` over real images
            (:func:`r1_penalty`; 0: none).
        mode_seeking: weight of :func:`mode_seeking_loss` in G's step, from a second noise
            drawn for the same prompts (0: none).
        composed_prompts: if set, G's step also draws a batch of prompts from it, with the
            labels they name, and adds ``aux_weight`` times the auxiliary heads' cross-entropy
            on fakes drawn for them. It has no adversarial term: there need be no real image of
            those prompts. Drawing every colour–shape pair the vocabulary can name (as StarGAN
            draws target labels at random, Choi et al., 2018) teaches G pairs no training image
            shows, from heads that learnt each attribute on the pairs it does.
        doubt_weight: with ``composed_prompts``, the weight of a term in D's step that trains
            its heads to be unsure (a uniform guess, CatGAN's entropy term, Springenberg, 2016)
            about fakes drawn for such prompts, while sure about real images. Heads that only
            ever saw real images can be fooled: G learns to draw what makes them say "red
            triangle" rather than a red triangle. Heads that doubt G's samples must be shown
            images they cannot tell from real ones of the pair (0: none).

    Returns:
        The :class:`~cmlib.train.History` of the run as one epoch: per-step ``d_loss``, ``g_loss``,
        ``d_real`` and ``d_fake`` (mean scores) in ``steps``, the mean G loss and the seconds; the
        evaluations in ``steps["eval_step"]`` and ``steps["eval_<name>"]``, the last in ``metrics``.
    """
    check_images(images, discriminator.in_channels, discriminator.image_size)
    check_int("num_steps", num_steps)
    check_int("eval_every", eval_every, minimum=0)
    if evaluate is not None and not callable(evaluate):
        raise TypeError(f"evaluate must be callable, got {type(evaluate).__name__}")
    if decay_from is not None:
        check_number("decay_from", decay_from, 0, 1, high_open=True)
    check_number("r1_weight", r1_weight, 0.0)
    check_number("mode_seeking", mode_seeking, 0.0)
    check_number("doubt_weight", doubt_weight, 0.0)
    if ema_decay is not None:
        check_number("ema_decay", ema_decay, 0.0, 1.0, low_open=True, high_open=True)
    for m in (generator, discriminator, g_text, d_text):
        m.to(device).train()
    g_params = list(generator.parameters()) + list(g_text.parameters())
    opt_g = torch.optim.Adam(g_params, lr, betas=betas)
    opt_d = torch.optim.Adam(
        list(discriminator.parameters()) + list(d_text.parameters()),
        lr if d_lr is None else d_lr,
        betas=betas,
    )
    d_aux_weight = aux_weight if d_aux_weight is None else d_aux_weight
    schedules = []
    if decay_from is not None:  # the factor for update `step` (0-based): 1, then down to 1/left
        left = num_steps - int(decay_from * num_steps)
        schedules = [
            torch.optim.lr_scheduler.LambdaLR(o, lambda step: min(1.0, (num_steps - step) / left))
            for o in (opt_g, opt_d)
        ]
    average = WeightAverage(g_params, ema_decay) if ema_decay is not None else None
    aux = len(discriminator.aux) > 0
    if composed_prompts is not None and not callable(composed_prompts):
        raise TypeError(f"composed_prompts must be callable, got {type(composed_prompts).__name__}")
    if composed_prompts is not None and not aux:
        raise ValueError("composed_prompts needs a discriminator with auxiliary heads")
    if doubt_weight > 0 and composed_prompts is None:
        raise ValueError("doubt_weight > 0 needs composed_prompts: it doubts their fakes")
    if aux and (attrs is None or set(discriminator.aux) - set(attrs)):
        raise ValueError(
            f"the discriminator's auxiliary heads need attrs with keys {sorted(discriminator.aux)}"
        )
    unknown = set(color_invariant) - set(discriminator.aux)
    if unknown:
        raise ValueError(
            f"color_invariant names heads the discriminator lacks: {sorted(unknown)} "
            f"(its heads: {sorted(discriminator.aux)})"
        )
    g = torch.Generator().manual_seed(seed)
    history = History()
    start, batches = time.perf_counter(), iter(())
    curve: dict[str, float] = {}
    for step in progress_bar(range(num_steps), desc="cGAN", disable=not progress):
        idx = next(batches, None)
        if idx is None:
            batches = shuffled_batches(len(images), batch_size, g)
            idx = next(batches)
        real = images[idx].to(device).requires_grad_(r1_weight > 0)
        prompts = prompt_fn(idx)  # the fakes are drawn for the same prompts as the reals
        z = torch.randn(len(idx), generator.noise_dim, device=device)
        c_g = g_text(prompts)
        fake = generator(z, c_g)
        # D step: real vs (detached) fake, both with their prompt.
        labels = {k: attrs[k][idx].to(device) for k in discriminator.aux} if aux else {}
        c_d = d_text(prompts)
        d_real, aux_real = discriminator(real, c_d, with_aux=True)
        d_fake = discriminator(fake.detach(), c_d)
        d_loss = discriminator_hinge_loss(d_real, d_fake)
        if r1_weight > 0:
            d_loss = d_loss + r1_weight / 2 * r1_penalty(d_real, real)
        if aux:
            d_loss = d_loss + d_aux_weight * sum(
                F.cross_entropy(aux_real[k], labels[k]) for k in labels
            )
        if color_invariant:
            shuffled = discriminator.classify(permute_channels(real.detach(), g))
            d_loss = d_loss + d_aux_weight * sum(
                F.cross_entropy(shuffled[k], labels[k]) for k in color_invariant
            )
        if doubt_weight > 0:  # cross-entropy against a uniform guess, for every head
            texts, _ = _draw_composed(composed_prompts, len(idx), discriminator)
            with torch.no_grad():
                z_c = torch.randn(len(texts), generator.noise_dim, device=device)
                doubted = generator(z_c, g_text(texts))
            d_loss = d_loss - doubt_weight * sum(
                F.log_softmax(h, dim=1).mean() for h in discriminator.classify(doubted).values()
            )
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # G step: make D score the fakes as real images of their prompt (and classify them so).
        d_gen, aux_gen = discriminator(fake, d_text(prompts).detach(), with_aux=True)
        g_loss = generator_hinge_loss(d_gen)
        if mode_seeking > 0:
            z_b = torch.randn(len(idx), generator.noise_dim, device=device)
            g_loss = g_loss + mode_seeking * mode_seeking_loss(fake, generator(z_b, c_g), z, z_b)
        if aux:
            g_loss = g_loss + aux_weight * sum(
                F.cross_entropy(aux_gen[k], labels[k]) for k in labels
            )
        if composed_prompts is not None:
            texts, targets = _draw_composed(composed_prompts, len(idx), discriminator)
            z_c = torch.randn(len(texts), generator.noise_dim, device=device)
            heads = discriminator.classify(generator(z_c, g_text(texts)))
            g_loss = g_loss + aux_weight * sum(
                F.cross_entropy(heads[k], targets[k].to(device)) for k in targets
            )
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for schedule in schedules:
            schedule.step()
        if average is not None:
            average.update()
        history.log_step(
            {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real.mean(), "d_fake": d_fake.mean()}
        )
        done = step + 1
        if evaluate is not None and (done == num_steps or (eval_every and done % eval_every == 0)):
            curve = evaluate_during_training(evaluate, done, (generator, g_text), average, device)
            history.log_step({"eval_step": done, **{f"eval_{k}": v for k, v in curve.items()}})
    history.train_loss.append(sum(history.steps["g_loss"]) / num_steps)
    history.metrics.append(curve)
    history.seconds.append(time.perf_counter() - start)
    if average is not None:
        average.copy_to_params()
    for m in (generator, discriminator, g_text, d_text):
        m.eval()
    return history


def _draw_composed(
    draw: PromptDraw, n: int, discriminator: ProjectionDiscriminator
) -> tuple[list[str], dict[str, torch.Tensor]]:
    """``n`` composed prompts and their labels, checked against the discriminator's heads."""
    texts, targets = draw(n)
    if set(targets) - set(discriminator.aux):
        raise ValueError(
            f"composed_prompts gave labels {sorted(targets)}; the discriminator's heads "
            f"are {sorted(discriminator.aux)}"
        )
    return texts, targets
