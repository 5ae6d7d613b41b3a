"""Training CycleGAN on unpaired images, and its paired (pix2pix-style) upper bound.

:func:`train_cyclegan` writes the two-player loop out, because the loop is the lesson: one step
of both generators against frozen discriminators, then one step of both discriminators on
fakes drawn from the image pools. Domain A is the first set of images (photos), domain B the
second (sketches); ``G: A → B`` and ``F: B → A``.

:func:`train_paired` trains one generator on *paired* images with an L1 loss: what the same
network reaches when it is told the answer, the upper bound an unpaired method aims for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..generation.ema import WeightAverage, evaluate_during_training
from ..train import History, endless_batches, fit_steps, progress_bar
from ..validate import check_int, check_number, check_tensor
from .losses import (
    ImagePool,
    cycle_loss,
    identity_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    object_cycle_loss,
    object_identity_loss,
)
from .models import PatchDiscriminator, ResnetGenerator

#: Which cycles a run enforces: A → B → A ("forward") and B → A → B ("backward").
CYCLES = ("forward", "backward")


@dataclass(frozen=True)
class CycleGANConfig:
    """The knobs of a CycleGAN run; the defaults are the reference recipe's, scaled down.

    Args:
        num_steps: generator (and discriminator) updates.
        batch_size: images of each domain per step.
        lr: Adam's learning rate for both players.
        betas: Adam's betas; β₁ = 0.5 damps the momentum that makes two-player games oscillate.
        lambda_cycle: weight of each cycle loss (0: no cycle loss, the "GAN alone" ablation).
        lambda_identity: identity weight *as a fraction of* ``lambda_cycle`` (0.5 → 5).
        cycles: which cycle losses to use; ``("forward",)`` is the one-direction ablation.
        object_weight: weight of the object-averaged cycle error (:func:`object_cycle_loss`)
            *as a fraction of* ``lambda_cycle``; 0, the reference's loss, leaves it out.
        object_identity: weight of the object-averaged identity error
            (:func:`object_identity_loss`) *as a fraction of* the identity weight; 0 leaves it out.
        object_identity_until: fraction of the run after which the object-averaged identity
            term stops (1: it never stops). It picks the colours early, where a cycle closed
            through a colour swap would otherwise settle; later it only competes with the cycle.
        cycle_noise: standard deviation of Gaussian noise added to a translation before it is
            translated back in the cycles named by ``noisy_cycles``: a faint hidden message
            (section 6's steganography) does not survive it, so the image itself must carry
            the content; 0, the reference's loss, draws no noise.
        noisy_cycles: the cycles whose translation is noised, a subset of ``cycles`` (default
            both; ``("forward",)`` noises G's outputs only).
        noise_from: fraction of the run after which the noise starts (0: from the first step),
            so that both generators can learn the translation first, on clean cycles.
        pool_size: past fakes kept for each discriminator (0: none).
        decay_from: fraction of the run after which the learning rate decays linearly to 0.
        width: generator width (the discriminators are twice as wide).
        num_blocks: residual blocks in each generator.
        skip: give the generators their full-resolution skip connection.
        downsample: run the generators' bodies at half resolution (``False``: at full
            resolution, :class:`~cmlib.cyclegan.models.ResnetGenerator`).
    """

    num_steps: int = 1000
    batch_size: int = 16
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    cycles: tuple[str, ...] = CYCLES
    object_weight: float = 0.0
    object_identity: float = 0.0
    object_identity_until: float = 1.0
    cycle_noise: float = 0.0
    noisy_cycles: tuple[str, ...] = CYCLES
    noise_from: float = 0.0
    pool_size: int = 50
    decay_from: float = 0.5
    width: int = 16
    num_blocks: int = 3
    skip: bool = True
    downsample: bool = True

    def __post_init__(self):
        check_int("num_steps", self.num_steps)
        check_int("batch_size", self.batch_size)
        check_number("lr", self.lr, 0.0, low_open=True)
        check_number("lambda_cycle", self.lambda_cycle, 0.0)
        check_number("lambda_identity", self.lambda_identity, 0.0)
        check_number("object_weight", self.object_weight, 0.0)
        check_number("object_identity", self.object_identity, 0.0)
        check_number("object_identity_until", self.object_identity_until, 0.0, 1.0)
        check_number("cycle_noise", self.cycle_noise, 0.0)
        check_number("noise_from", self.noise_from, 0.0, 1.0, high_open=True)
        if self.object_identity > 0 and self.lambda_identity == 0:
            raise ValueError(
                "object_identity weighs a share of the identity loss, which lambda_identity=0 "
                f"turns off; got object_identity={self.object_identity}"
            )
        check_number("decay_from", self.decay_from, 0.0, 1.0)
        for name in ("skip", "downsample"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        check_int("pool_size", self.pool_size, minimum=0)
        for name in ("cycles", "noisy_cycles"):
            if not set(getattr(self, name)) <= set(CYCLES):
                raise ValueError(
                    f"{name} must be a subset of {CYCLES}, got {getattr(self, name)!r}"
                )
        if self.cycle_noise > 0:  # noise on a cycle that is not there would do nothing, silently
            if self.lambda_cycle == 0 or not set(self.noisy_cycles) & set(self.cycles):
                raise ValueError(
                    f"cycle_noise={self.cycle_noise} needs a cycle loss to act on: noisy_cycles "
                    f"{self.noisy_cycles!r} must name one of cycles {self.cycles!r}, with "
                    f"lambda_cycle > 0 (got {self.lambda_cycle})"
                )


class CycleGAN(nn.Module):
    """The four networks of a CycleGAN: ``g`` (A → B), ``f`` (B → A), ``d_a`` and ``d_b``.

    Args:
        channels: image channels of both domains.
        width: generator width; the discriminators are twice as wide.
        num_blocks: residual blocks per generator.
        switches: ``skip`` (the generators' full-resolution skip connection, default on) and
            ``downsample`` (their bodies at half resolution, default on), by name.
    """

    def __init__(self, channels: int = 3, width: int = 16, num_blocks: int = 3, **switches: bool):
        super().__init__()
        # G and F are built alike: the switches go to both, by name (skip=..., downsample=...)
        self.g = ResnetGenerator(channels, width, num_blocks, **switches)
        self.f = ResnetGenerator(channels, width, num_blocks, **switches)
        self.d_a = PatchDiscriminator(channels, 2 * width)
        self.d_b = PatchDiscriminator(channels, 2 * width)

    @classmethod
    def from_config(cls, config: CycleGANConfig, channels: int = 3) -> CycleGAN:
        """The four networks ``config`` asks for: its width, blocks, skip and downsampling."""
        if not isinstance(config, CycleGANConfig):
            raise TypeError(f"config must be a CycleGANConfig, got {type(config).__name__}")
        return cls(
            channels,
            config.width,
            config.num_blocks,
            skip=config.skip,
            downsample=config.downsample,
        )


def linear_decay(num_steps: int, decay_from: float):
    """The LR multiplier: 1 until ``decay_from · num_steps``, then linearly down to 0 at the end.

    A constant rate leaves the game oscillating at the end; decaying it lets both players
    settle, which is why the reference halves its 200 epochs into constant and decaying."""
    start = int(decay_from * num_steps)

    def factor(step: int) -> float:
        if step < start:
            return 1.0
        return max(0.0, 1.0 - (step - start) / max(1, num_steps - start))

    return factor


def check_domains(images_a: torch.Tensor, images_b: torch.Tensor) -> None:
    """Both domains must be non-empty float image batches of one channel count and size."""
    check_tensor("images_a", images_a, ("B", "C", "H", "W"), floating=True, nonempty=True)
    check_tensor("images_b", images_b, ("B", "C", "H", "W"), floating=True, nonempty=True)
    if images_a.shape[1:] != images_b.shape[1:]:
        raise ValueError(
            f"the two domains need images of one shape, got {tuple(images_a.shape[1:])} "
            f"and {tuple(images_b.shape[1:])}"
        )


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def _generator_losses(
    model: CycleGAN,
    real_a,
    real_b,
    config: CycleGANConfig,
    noise: float | None = None,
    object_identity: float | None = None,
):
    """G and F's step: fool both Ds, close the cycles, leave own-domain images alone. The
    translations of ``config.noisy_cycles`` are noised by ``noise`` (``config.cycle_noise``
    unless given: the training loop passes 0 before ``config.noise_from``), and the
    object-averaged identity term weighs ``object_identity`` (``config.object_identity``
    unless given: the loop passes 0 after ``config.object_identity_until``)."""
    noise = config.cycle_noise if noise is None else noise
    object_identity = config.object_identity if object_identity is None else object_identity
    fake_b, fake_a = model.g(real_a), model.f(real_b)
    losses = {
        "gan_g": lsgan_generator_loss(model.d_b(fake_b)),
        "gan_f": lsgan_generator_loss(model.d_a(fake_a)),
    }
    cycles = {"forward": ("cycle_a", model.f, fake_b, real_a)}
    cycles["backward"] = ("cycle_b", model.g, fake_a, real_b)
    for direction in config.cycles:
        name, undo, fake, real = cycles[direction]
        if config.lambda_cycle == 0:
            break
        if noise > 0 and direction in config.noisy_cycles:
            # the way back must read what the translation shows, not a faint code hidden in it
            fake = fake + noise * torch.randn_like(fake)
        back = undo(fake)
        losses[name] = config.lambda_cycle * cycle_loss(back, real)
        if config.object_weight > 0:  # what the whole-image average hides: the object itself
            weight = config.lambda_cycle * config.object_weight
            losses[f"object_{name}"] = weight * object_cycle_loss(back, real)
    weight = config.lambda_cycle * config.lambda_identity
    if weight > 0:
        same_b, same_a = model.g(real_b), model.f(real_a)
        losses["identity"] = weight * (
            identity_loss(same_b, real_b) + identity_loss(same_a, real_a)
        )
        if object_identity > 0:  # a recoloured object on a white page costs little
            losses["object_identity"] = (weight * object_identity) * (
                object_identity_loss(same_b, real_b) + object_identity_loss(same_a, real_a)
            )
        elif config.object_identity > 0:  # stopped: logged as 0, so every step has each term
            losses["object_identity"] = same_b.new_zeros(())
    return fake_a, fake_b, losses


def train_cyclegan(
    model: CycleGAN,
    images_a: torch.Tensor,
    images_b: torch.Tensor,
    config: CycleGANConfig,
    device: torch.device,
    seed: int = 0,
    progress: bool = True,
    evaluate: Callable[[int], dict[str, float]] | None = None,
    eval_every: int = 0,
    ema_decay: float | None = None,
) -> History:
    """Train ``model`` on unpaired images of two domains.

    Args:
        model: the four networks; trained in place.
        images_a: domain A images ``(N, C, S, S)`` in [0, 1] (e.g. photos).
        images_b: domain B images ``(M, C, S, S)`` in [0, 1] (e.g. sketches of *other* scenes).
        config: the recipe.
        device: where to train.
        seed: fixes the batch order and the pools.
        progress: show a tqdm bar.
        evaluate: ``evaluate(step) -> metrics``, called every ``eval_every`` steps and after the
            last one, with the generators in eval mode and the random state forked (scoring
            cannot change the run); logged as ``eval_step`` and ``eval_<metric>``.
        eval_every: steps between evaluations (0: only after the last step).
        ema_decay: if set (e.g. 0.999), keep an exponential moving average of G's and F's
            weights (:class:`~cmlib.generation.ema.WeightAverage`) and load it into them at the
            end. The game itself is unchanged: the discriminators play the live generators.
            Late in training the players oscillate, and what a generator keeps of the content
            wobbles from one evaluation to the next; the average sits in the middle of the
            wobble. The evaluations then score the average (``eval_<metric>``) and the live
            generators (``eval_raw_<metric>``). The average starts from the initial weights,
            whose share after ``n`` steps is ``decay ** n``: keep ``num_steps`` well above
            ``1 / (1 - decay)`` (0.999 over 6,000 steps leaves 0.25%).

    Returns:
        A :class:`~cmlib.train.History` of one epoch: per-step ``loss`` (G and F's total),
        each of its terms, and ``d_loss`` (and the evaluations, if any).
    """
    if not isinstance(config, CycleGANConfig):
        raise TypeError(f"config must be a CycleGANConfig, got {type(config).__name__}")
    check_domains(images_a, images_b)
    check_int("batch_size", config.batch_size, 1, min(len(images_a), len(images_b)))
    device = torch.device(device)  # a string too: scoring during training asks its type
    check_int("eval_every", eval_every, minimum=0)
    if evaluate is not None and not callable(evaluate):
        raise TypeError(f"evaluate must be callable, got {type(evaluate).__name__}")
    if ema_decay is not None:
        check_number("ema_decay", ema_decay, 0.0, 1.0, low_open=True, high_open=True)
    model.to(device).train()
    generators = list(model.g.parameters()) + list(model.f.parameters())
    average = WeightAverage(generators, ema_decay) if ema_decay is not None else None
    discriminators = list(model.d_a.parameters()) + list(model.d_b.parameters())
    opt_g = torch.optim.Adam(generators, config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(discriminators, config.lr, betas=config.betas)
    factor = linear_decay(config.num_steps, config.decay_from)
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, factor) for o in (opt_g, opt_d)]
    pool_a, pool_b = ImagePool(config.pool_size, seed), ImagePool(config.pool_size, seed + 1)
    rng = torch.Generator().manual_seed(seed)
    stream_a = endless_batches(len(images_a), config.batch_size, rng)
    stream_b = endless_batches(len(images_b), config.batch_size, rng)
    history, start, scores = History(), time.perf_counter(), {}
    noise_start = int(config.noise_from * config.num_steps)
    identity_stop = round(config.object_identity_until * config.num_steps)
    for step in progress_bar(range(config.num_steps), desc="CycleGAN", disable=not progress):
        real_a = images_a[next(stream_a)].to(device)
        real_b = images_b[next(stream_b)].to(device)
        # Generators first, against discriminators that this step must not change.
        _set_requires_grad(model.d_a, False)
        _set_requires_grad(model.d_b, False)
        noise = config.cycle_noise if step >= noise_start else 0.0  # no draws before it starts
        object_identity = config.object_identity if step < identity_stop else 0.0
        fake_a, fake_b, losses = _generator_losses(
            model, real_a, real_b, config, noise, object_identity
        )
        g_loss = sum(losses.values())
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if average is not None:
            average.update()
        # Then the discriminators, on fakes from the pools (detached: D must not train G).
        _set_requires_grad(model.d_a, True)
        _set_requires_grad(model.d_b, True)
        d_loss = lsgan_discriminator_loss(model.d_a(real_a), model.d_a(pool_a.query(fake_a)))
        d_loss = d_loss + lsgan_discriminator_loss(
            model.d_b(real_b), model.d_b(pool_b.query(fake_b))
        )
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        for s in schedulers:
            s.step()
        history.log_step({"loss": g_loss, **losses, "d_loss": d_loss})
        done = step + 1
        if evaluate is not None and (
            done == config.num_steps or (eval_every and done % eval_every == 0)
        ):
            generators_now = (model.g, model.f)
            scores = evaluate_during_training(evaluate, done, generators_now, average, device)
            logged = {"eval_step": done, **{f"eval_{k}": v for k, v in scores.items()}}
            if average is not None:  # the live generators too, for the comparison
                raw = evaluate_during_training(evaluate, done, generators_now, None, device)
                logged.update({f"eval_raw_{k}": v for k, v in raw.items()})
            history.log_step(logged)
    history.train_loss.append(sum(history.steps["loss"]) / config.num_steps)
    history.metrics.append(scores)
    history.seconds.append(time.perf_counter() - start)
    if average is not None:
        average.copy_to_params()
    model.eval()
    return history


def train_paired(
    generator: ResnetGenerator,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    num_steps: int,
    device: torch.device,
    batch_size: int = 16,
    lr: float = 2e-4,
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train ``generator`` to map ``inputs[i]`` to ``targets[i]`` with an L1 loss: the paired
    bound.

    Args:
        generator: the network, trained in place.
        inputs: source images ``(N, C, S, S)`` in [0, 1].
        targets: the same scenes in the target domain, same shape.
        num_steps: updates.
        device: where to train.
        batch_size: pairs per step.
        lr: Adam's learning rate (betas 0.5, 0.999; linear decay over the second half).
        seed: fixes the batch order.
        progress: show a tqdm bar.
    """
    check_domains(inputs, targets)
    if len(inputs) != len(targets):
        raise ValueError(
            f"paired training needs as many targets as inputs, got {len(inputs)} and {len(targets)}"
        )
    check_int("num_steps", num_steps)
    generator.to(device)
    opt = torch.optim.Adam(generator.parameters(), lr, betas=(0.5, 0.999))
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, linear_decay(num_steps, 0.5))
    index_stream = endless_batches(len(inputs), batch_size, torch.Generator().manual_seed(seed))
    pairs = ((inputs[idx], targets[idx]) for idx in index_stream)
    return fit_steps(
        generator,
        pairs,
        opt,
        num_steps,
        device,
        step_fn=lambda g, batch: cycle_loss(g(batch[0]), batch[1]),
        scheduler=scheduler,
        progress=progress,
        desc="paired L1",
    )
