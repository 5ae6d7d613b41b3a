"""A conditional GAN for prompt-driven generation (article §3.2.1.1 GANs在跨模态学习中的应用).

* :class:`Generator` (DCGAN-style) and :class:`GlyphGenerator` (draws a glyph
  in the object's frame and places it over a background);
* :class:`ProjectionDiscriminator` — conditioning by projection (Miyato &
  Koyama, 2018), with a strided (DCGAN) or a pooled trunk;
* :func:`train_cgan` — hinge losses (:mod:`cmlib.generation.gan_losses`, with the R1 penalty
  and the mode-seeking term it can add), the fakes detached in the discriminator
  step, auxiliary attribute heads and an EMA of the generator's weights. Its lesson is the
  loop of two players, so the loop is written out here; it returns a
  :class:`cmlib.train.History` like every other trainer.

Sampling from a trained generator is :func:`cmlib.generation.generative.generate`; the article's GAN
listing as printed is :class:`cmlib.errata.GAN`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..train import History, progress_bar, shuffled_batches
from ..validate import check_choice, check_int, check_number, check_tensor
from ..vision import check_images, permute_channels
from .decoders import ConvDecoder, CoordinateDecoder, check_condition, num_upsamplings
from .ema import WeightAverage, evaluate_during_training
from .gan_losses import (
    discriminator_hinge_loss,
    generator_hinge_loss,
    mode_seeking_loss,
    r1_penalty,
)


# ---------------------------------------------------------------- conditional GAN
class Generator(nn.Module):
    """G(z, c): a DCGAN generator fed noise and the prompt's condition.

    Args:
        cond_dim: size of the condition vector.
        noise_dim: size of z.
        image_size: output height and width (a power of two >= 8).
        out_channels: image channels.
        width: channel width.

    Shapes:
        ``forward(z (B, noise_dim), c (B, cond_dim))`` → images ``(B, C, S, S)`` in [0, 1].
    """

    def __init__(
        self,
        cond_dim: int,
        noise_dim: int = 32,
        image_size: int = 32,
        out_channels: int = 3,
        width: int = 32,
    ):
        super().__init__()
        self.cond_dim, self.noise_dim, self.image_size = cond_dim, noise_dim, image_size
        self.body = ConvDecoder(noise_dim + cond_dim, out_channels, image_size, width, cond_dim)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.noise_dim:
            raise ValueError(f"expected noise of shape (B, {self.noise_dim}), got {tuple(z.shape)}")
        check_condition(c, len(z), self.cond_dim)
        return torch.sigmoid(self.body(torch.cat([z, c], dim=1), c))


class GlyphGenerator(nn.Module):
    """G(z, c) that draws one object in its own frame, places it, and lays it over a background.

    Three learned parts (a layered generator, as in LR-GAN, Yang et al., 2017):

    * **placement** — an MLP of ``[z, c]`` gives the object's centre (cx, cy) in [−1, 1] and its
      radius r, so *where* and *how big* come from the noise and the prompt;
    * **glyph** — every pixel computes its coordinates in the object's frame, u = (p − centre) / r,
      and a per-pixel MLP of (u, c) gives its opacity α and colour (a :class:`CoordinateDecoder`
      of c evaluated at u). The glyph depends on the prompt only, so a shape is learnt once
      in its own frame instead of at every pixel offset — which a transposed-conv generator must do;
    * **background** — a :class:`ConvDecoder` of ``[z, c]``.

    The image is α · colour + (1 − α) · background.

    Args:
        cond_dim: size of the condition vector.
        noise_dim: size of z.
        image_size: output height and width (a power of two >= 8).
        out_channels: image channels.
        width: hidden units of the placement and glyph MLPs, and of the background decoder.
        depth: hidden layers of the glyph MLP after the first.

    Shapes:
        ``forward(z (B, noise_dim), c (B, cond_dim))`` → images ``(B, C, S, S)`` in [0, 1].
    """

    def __init__(
        self,
        cond_dim: int,
        noise_dim: int = 16,
        image_size: int = 16,
        out_channels: int = 3,
        width: int = 32,
        depth: int = 2,
    ):
        super().__init__()
        num_upsamplings(image_size)
        for name, value in (
            ("cond_dim", cond_dim),
            ("noise_dim", noise_dim),
            ("width", width),
            ("depth", depth),
        ):
            check_int(name, value)
        self.cond_dim, self.noise_dim, self.image_size = cond_dim, noise_dim, image_size
        # kept so that a saved generator can be rebuilt (cmlib.generation.generative.load_cgan)
        self.out_channels, self.width, self.depth = out_channels, width, depth
        self.placement = nn.Sequential(
            nn.Linear(noise_dim + cond_dim, width),
            nn.ReLU(inplace=True),
            nn.Linear(width, width),
            nn.ReLU(inplace=True),
            nn.Linear(width, 3),
        )
        # the glyph: opacity logit and colour logits, a coordinate decoder of the prompt alone
        self.glyph = CoordinateDecoder(cond_dim, 1 + out_channels, image_size, width, depth)
        self.background = ConvDecoder(
            noise_dim + cond_dim, out_channels, image_size, width, cond_dim
        )

    def place(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The object's centre ``(B, 2)`` in [−1, 1] and radius ``(B,)`` (in the same units)."""
        p = self.placement(torch.cat([z, c], dim=1))
        return torch.tanh(p[:, :2]), 0.25 * torch.exp(p[:, 2].clamp(-3, 3))

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        check_tensor("noise", z, ("B", self.noise_dim))
        check_condition(c, len(z), self.cond_dim)
        centre, radius = self.place(z, c)
        frame = (self.glyph.coords - centre[:, None, :]) / radius[:, None, None]  # (B, S·S, 2)
        glyph = self.glyph(c, coords=frame)
        alpha, colour = torch.sigmoid(glyph[:, :1]), torch.sigmoid(glyph[:, 1:])
        background = torch.sigmoid(self.background(torch.cat([z, c], dim=1), c))
        return alpha * colour + (1 - alpha) * background


def _strided_trunk(in_channels: int, width: int, steps: int) -> tuple[list[nn.Module], int]:
    """DCGAN: 4×4 convolutions with stride 2 down to a 4×4 map."""
    layers: list[nn.Module] = []
    channels = in_channels
    for k in range(steps):
        layers += [nn.Conv2d(channels, width * 2**k, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        channels = width * 2**k
    return layers, channels


def _pooled_trunk(
    in_channels: int, width: int, steps: int, batch_norm: bool = True
) -> tuple[list[nn.Module], int]:
    """3×3 convolutions at full resolution, batch norm (optional) and max-pooling down to a 4×4
    map, one more 3×3."""
    layers: list[nn.Module] = []
    channels = in_channels
    for k in range(steps):
        layers += [
            nn.Conv2d(channels, width * 2**k, 3, 1, 1),
            nn.BatchNorm2d(width * 2**k) if batch_norm else nn.Identity(),
            nn.LeakyReLU(0.2, inplace=True),
            nn.MaxPool2d(2),
        ]
        channels = width * 2**k
    layers += [nn.Conv2d(channels, 2 * channels, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True)]
    return layers, 2 * channels


class ProjectionDiscriminator(nn.Module):
    """D(x, c) = w·φ(x) + <c, V φ(x)>: a DCGAN discriminator conditioned by projection.

    φ is a conv trunk; the condition enters through an inner product with the image
    features (Miyato & Koyama, 2018), so D scores "is this a real image *of this prompt*?".
    Two trunks:

    * ``"strided"`` — DCGAN's 4×4 convolutions with stride 2 and no batch norm. Its first layer
      already halves the image, so on 16×16 images, where an object is 3–6 pixels wide, it
      learns shape slowly (chapter 04 measures this);
    * ``"pooled"`` — 3×3 convolutions at full resolution with batch norm and max-pooling, like
      the judge: it tells a small square from a small circle after a few hundred steps. A
      discriminator that cannot see a shape cannot teach it to the generator.

    Args:
        cond_dim: size of the condition vector.
        image_size: input height and width (a power of two >= 8).
        in_channels: image channels.
        width: channels of the first conv; they double per layer.
        feature_dim: size of φ(x).
        aux_classes: optional ``{attribute: number of classes}``: auxiliary heads that also
            classify the image (AC-GAN, Odena et al., 2017), a strong, fast signal for G.
        trunk: ``"strided"`` or ``"pooled"``.
        norm: ``"batch"`` (the pooled trunk's batch norm) or ``"spectral"``: no batch norm, and
            each layer of the trunk, score and projection divided by its largest singular value
            (Miyato et al., 2018), which bounds how fast D's score can change with its input.

    Shapes:
        ``forward(x (B, C, S, S), c (B, cond_dim))`` → ``(B,)`` scores (logits);
        ``features(x)`` → ``(B, feature_dim)``; ``classify(x)`` → dict of ``(B, classes)`` logits.
    """

    def __init__(
        self,
        cond_dim: int,
        image_size: int = 32,
        in_channels: int = 3,
        width: int = 32,
        feature_dim: int = 128,
        aux_classes: dict[str, int] | None = None,
        trunk: str = "strided",
        norm: str = "batch",
    ):
        super().__init__()
        steps = num_upsamplings(image_size)
        check_choice("trunk", trunk, ("strided", "pooled"))
        check_choice("norm", norm, ("batch", "spectral"))
        self.cond_dim, self.image_size, self.in_channels = cond_dim, image_size, in_channels
        self.norm = norm
        if trunk == "pooled":
            layers, channels = _pooled_trunk(in_channels, width, steps, norm == "batch")
        else:
            layers, channels = _strided_trunk(in_channels, width, steps)
        self.trunk = nn.Sequential(
            *layers,
            nn.Flatten(),
            nn.Linear(channels * 16, feature_dim),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.score = nn.Linear(feature_dim, 1)
        self.project = nn.Linear(cond_dim, feature_dim, bias=False)
        self.aux = nn.ModuleDict(
            {k: nn.Linear(feature_dim, n) for k, n in (aux_classes or {}).items()}
        )
        if norm == "spectral":
            for module in [*self.trunk, self.score, self.project]:
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    nn.utils.parametrizations.spectral_norm(module)

    def classify(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The auxiliary heads' logits (empty without ``aux_classes``)."""
        phi = self.features(x)
        return {k: head(phi) for k, head in self.aux.items()}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x) ``(B, feature_dim)``: usable as an image embedding (article §2.1.1.2)."""
        check_images(x, self.in_channels, self.image_size)
        return self.trunk(x)

    def forward(self, x: torch.Tensor, c: torch.Tensor, with_aux: bool = False):
        check_condition(c, len(x), self.cond_dim)
        phi = self.features(x)
        score = self.score(phi).squeeze(1) + (self.project(c) * phi).sum(dim=1)
        if with_aux:
            return score, {k: head(phi) for k, head in self.aux.items()}
        return score


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
