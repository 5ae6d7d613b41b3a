"""Prompt-driven generation: a conditional VAE, generation from a prompt, and a judge.

The pieces of chapter 04 (article §3.2.1 基于条件生成模型的跨模态学习) that
both generators share, and the CVAE:

* :class:`CVAE` — q(z|x,c) and p(x|z,c) with the reparameterisation trick
  and the ELBO (:func:`elbo_loss`), with a conv or a coordinate decoder
  (:class:`CoordinateDecoder`) and an optional learned prior p(z|c);
* :func:`generate` — images for a text prompt from a CVAE or a GAN generator
  (:mod:`cmlib.gan`);
* :class:`AttributeJudge` — an attribute classifier trained on real images
  only, which scores generated images (:func:`prompt_fidelity`,
  :func:`fidelity_over`), and :func:`diversity`;
* :class:`ArticleCVAE` — the article's listing, reproduced as printed for the errata.

Prompts and prompt encoders are in :mod:`cmlib.prompts`; the conditional GAN is
in :mod:`cmlib.gan`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data.shapes import COLORS, POSITIONS, SHAPES, SIZES, ShapesWorld
from .prompts import EvalPrompt
from .train import progress_bar
from .vision import ConvEncoder, check_images, coordinate_grid


# ---------------------------------------------------------------- building blocks
def num_upsamplings(image_size: int) -> int:
    """How many 2× upsamplings take a 4×4 grid to ``image_size`` (a power of two ≥ 8)."""
    steps = math.log2(image_size / 4) if image_size >= 8 else -1
    if steps < 1 or steps != int(steps):
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
    return int(steps)


class ConvDecoder(nn.Module):
    """A DCGAN generator body: a vector → 4x4 feature map → transposed convs → an image (logits).

    With ``cond_dim > 0`` the condition also modulates every hidden layer by
    FiLM (feature-wise linear modulation: ``h * (1 + gamma(c)) + beta(c)``), so
    the prompt reaches every scale instead of only the input.

    Args:
        in_dim: size of the input vector (latent plus condition).
        out_channels: image channels.
        image_size: output height and width (a power of two >= 8).
        width: channels of the last hidden layer; they double towards the 4x4 map.
        cond_dim: size of the condition for FiLM (0: no FiLM).

    Shapes:
        ``forward(h (B, in_dim), c (B, cond_dim) or None)`` → ``(B, out_channels, image_size,
        image_size)`` (unbounded logits).
    """

    def __init__(self, in_dim: int, out_channels: int = 3, image_size: int = 32, width: int = 32,
                 cond_dim: int = 0):
        super().__init__()
        steps = num_upsamplings(image_size)
        channels = [width * 2 ** (steps - 1 - k) for k in range(steps)]  # e.g. 128, 64, 32
        self.start_channels, self.cond_dim = channels[0], cond_dim
        self.project = nn.Linear(in_dim, channels[0] * 16)
        self.norms = nn.ModuleList([nn.BatchNorm2d(channels[0])])
        self.ups = nn.ModuleList()
        for k in range(steps - 1):
            self.ups.append(nn.ConvTranspose2d(channels[k], channels[k + 1], 4, 2, 1, bias=False))
            self.norms.append(nn.BatchNorm2d(channels[k + 1]))
        self.to_image = nn.ConvTranspose2d(channels[-1], out_channels, 4, 2, 1)
        self.films = nn.ModuleList([nn.Linear(cond_dim, 2 * n.num_features) for n in self.norms]) \
            if cond_dim > 0 else None

    def forward(self, h: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = self.project(h).view(len(h), self.start_channels, 4, 4)
        for k, norm in enumerate(self.norms):
            if k > 0:
                x = self.ups[k - 1](x)
            x = norm(x)
            if self.films is not None:
                gamma, beta = self.films[k](c)[:, :, None, None].chunk(2, dim=1)
                x = x * (1 + gamma) + beta
            x = F.relu(x)
        return self.to_image(x)


def check_condition(c: torch.Tensor, batch: int | None, cond_dim: int) -> None:
    """Raise ValueError unless ``c`` is ``(batch, cond_dim)`` (any batch when ``batch`` is None)."""
    if not isinstance(c, torch.Tensor) or c.ndim != 2 or c.shape[1] != cond_dim:
        raise ValueError(f"expected a condition of shape (B, {cond_dim}), got "
                         f"{tuple(getattr(c, 'shape', ())) or type(c).__name__}")
    if batch is not None and c.shape[0] != batch:
        raise ValueError(f"expected {batch} conditions (one per image), got {c.shape[0]}")


# ---------------------------------------------------------------- conditional VAE
def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I): a sample that gradients can flow through."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor, prior_mu: torch.Tensor | None = None,
                  prior_logvar: torch.Tensor | None = None) -> torch.Tensor:
    """KL( N(mu, diag(exp(logvar))) || prior ) per row: ``(B, D)`` → ``(B,)``.

    The prior is N(0, I) unless ``prior_mu`` and ``prior_logvar`` (both ``(B, D)``) give a
    diagonal Gaussian of its own — a CVAE's learned prior p(z|c). For two diagonal Gaussians::

        KL = ½ Σ_d [ log σ_p² − log σ_q² + (σ_q² + (μ_q − μ_p)²) / σ_p² − 1 ]
    """
    if (prior_mu is None) != (prior_logvar is None):
        raise ValueError("give both prior_mu and prior_logvar, or neither")
    if prior_mu is None:
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
    if prior_mu.shape != mu.shape or prior_logvar.shape != mu.shape:
        raise ValueError(f"the prior's mean {tuple(prior_mu.shape)} and log-variance "
                         f"{tuple(prior_logvar.shape)} must match the posterior's {tuple(mu.shape)}")
    return 0.5 * (prior_logvar - logvar + (logvar.exp() + (mu - prior_mu).pow(2)) / prior_logvar.exp()
                  - 1.0).sum(dim=1)


LIKELIHOODS = ("bernoulli", "gaussian")


def reconstruction_loss(x: torch.Tensor, x_logits: torch.Tensor, likelihood: str = "bernoulli",
                        sigma: float = 0.1) -> torch.Tensor:
    """−log p(x|z,c) per image, summed over pixels, averaged over the batch (up to a constant).

    Args:
        x: images ``(B, C, S, S)`` in [0, 1].
        x_logits: the decoder's output, same shape; the pixel mean is ``sigmoid(x_logits)``.
        likelihood: ``"bernoulli"`` (binary cross-entropy) or ``"gaussian"`` with a fixed standard
            deviation ``sigma``: ``‖x − mean‖² / (2 sigma²)``. On grey photos a wrong pixel costs the
            Bernoulli far less than a sharp Gaussian, so a small ``sigma`` makes the code z worth using.
        sigma: the Gaussian's standard deviation (pixel units).
    """
    if x.shape != x_logits.shape:
        raise ValueError(f"x {tuple(x.shape)} and x_logits {tuple(x_logits.shape)} must match")
    if likelihood == "bernoulli":
        per_pixel = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none")
    elif likelihood == "gaussian":
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}")
        per_pixel = (torch.sigmoid(x_logits) - x).pow(2) / (2 * sigma ** 2)
    else:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    return per_pixel.flatten(1).sum(1).mean()


def elbo_loss(x: torch.Tensor, x_logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
              beta: float = 1.0, prior: tuple[torch.Tensor, torch.Tensor] | None = None,
              likelihood: str = "bernoulli", sigma: float = 0.1
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The negative ELBO per image: reconstruction (summed over pixels) + beta * KL.

    Args:
        x, x_logits: images and the decoder's logits, ``(B, C, S, S)``.
        mu, logvar: the posterior q(z|x,c), each ``(B, latent_dim)``.
        beta: weight of the KL term.
        prior: ``(prior_mu, prior_logvar)`` of a learned prior p(z|c); ``None`` for N(0, I).
        likelihood, sigma: see :func:`reconstruction_loss`.

    Returns:
        ``(loss, reconstruction, kl)``, each a scalar mean over the batch.
    """
    recon = reconstruction_loss(x, x_logits, likelihood, sigma)
    kl = kl_divergence(mu, logvar, *(prior if prior is not None else (None, None))).mean()
    return recon + beta * kl, recon, kl


class CoordinateDecoder(nn.Module):
    """A coordinate (spatial-broadcast) decoder: every pixel runs one small MLP on its (x, y) and the code.

    Layer ``k`` computes ``ReLU(W_k h_{k−1} + U_k code)`` at every pixel, starting from the
    pixel's coordinates in [−1, 1]. A shape is a simple function of where a pixel lies
    relative to the object ("inside a triangle of radius r centred at (cx, cy)?"), which this
    decoder can express directly; a transposed-conv decoder must learn to paint each glyph at
    every sub-cell offset (Watters et al., 2019, *Spatial Broadcast Decoder*). The layers are
    matrix products over ``(B, S·S, width)`` — the same as 1×1 convolutions, faster on a CPU.

    Args:
        in_dim: size of the code (latent plus condition).
        out_channels: image channels.
        image_size: output height and width.
        width: hidden units per pixel.
        depth: hidden layers after the first.

    Shapes:
        ``forward(code (B, in_dim), c ignored)`` → ``(B, out_channels, image_size, image_size)`` logits.
        ``forward(code, coords=(B, S·S, 2))`` evaluates the MLP at other coordinates than the pixel
        grid, e.g. each pixel's position in an object's own frame (:class:`cmlib.gan.GlyphGenerator`).
    """

    def __init__(self, in_dim: int, out_channels: int = 3, image_size: int = 16, width: int = 64,
                 depth: int = 3):
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_channels", out_channels),
                            ("image_size", image_size), ("width", width), ("depth", depth)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.in_dim, self.image_size = in_dim, image_size
        grid = coordinate_grid(1, image_size, image_size)  # (1, 2, S, S)
        self.register_buffer("coords", grid.flatten(2).transpose(1, 2).contiguous())  # (1, S·S, 2)
        self.from_coords = nn.Linear(2, width)
        self.from_code = nn.ModuleList(nn.Linear(in_dim, width) for _ in range(depth + 1))
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.to_image = nn.Linear(width, out_channels)

    def forward(self, code: torch.Tensor, c: torch.Tensor | None = None,
                coords: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(code, torch.Tensor) or code.ndim != 2 or code.shape[1] != self.in_dim:
            raise ValueError(f"expected a code (B, {self.in_dim}), got "
                             f"{tuple(getattr(code, 'shape', ())) or type(code).__name__}")
        if coords is None:
            coords = self.coords
        elif coords.shape[1:] != self.coords.shape[1:] or coords.shape[0] not in (1, len(code)):
            raise ValueError(f"expected coords (B, {self.coords.shape[1]}, 2), got {tuple(coords.shape)}")
        h = F.relu(self.from_coords(coords) + self.from_code[0](code)[:, None, :])
        for layer, from_code in zip(self.hidden, self.from_code[1:]):
            h = F.relu(layer(h) + from_code(code)[:, None, :])
        out = self.to_image(h)  # (B, S·S, C)
        return out.transpose(1, 2).reshape(len(code), -1, self.image_size, self.image_size)


class CVAE(nn.Module):
    """A convolutional conditional VAE: encoder q(z|x,c), decoder p(x|z,c), prior p(z|c).

    The encoder is the conv trunk of a :class:`cmlib.vision.ConvEncoder`; its
    feature map is **flattened, not average-pooled** — pooling would throw away
    *where* the object is, which is exactly what z must carry when the prompt
    does not say it — then concatenated with the condition and mapped to the
    mean and log-variance of z. The decoder is fed ``[z, c]``, so it can draw
    from the prompt alone: z from the prior, x = decoder(z, c).

    Two options turn the textbook model into one that draws small objects crisply
    (chapter 04 compares them):

    * ``decoder="coordinate"`` — a :class:`CoordinateDecoder` instead of the transposed-conv
      :class:`ConvDecoder`, and two coordinate channels appended to the encoder's input
      (CoordConv), so that both sides can say precisely *where*;
    * ``learned_prior=True`` — the prior is p(z|c) = N(μ_p(c), σ_p(c)²), a small MLP of the
      condition (Sohn et al., 2015), instead of N(0, I). The KL term then pulls each posterior
      towards the region of z-space that belongs to its prompt, so that "on the left" in the
      prompt and the position carried by z agree when sampling.

    Args:
        cond_dim: size of the condition vector.
        latent_dim: size of z.
        image_size: height and width (a power of two >= 8).
        in_channels: image channels.
        width: channel width of encoder and decoder (the coordinate decoder has ``2 * width``
            units per pixel).
        decoder: ``"conv"`` or ``"coordinate"``.
        learned_prior: learn p(z|c) instead of using N(0, I).

    Shapes:
        ``forward(x (B, C, S, S), c (B, cond_dim))`` → ``(x_logits (B, C, S, S), mu (B, latent),
        logvar (B, latent))``; ``prior(c)`` → ``(mu_p, logvar_p)``; ``decode(z, c)`` → logits;
        ``sample(c)`` → images in [0, 1].
    """

    DECODERS = ("conv", "coordinate")

    def __init__(self, cond_dim: int, latent_dim: int = 16, image_size: int = 32,
                 in_channels: int = 3, width: int = 32, decoder: str = "conv",
                 learned_prior: bool = False):
        super().__init__()
        if decoder not in self.DECODERS:
            raise ValueError(f"decoder must be one of {self.DECODERS}, got {decoder!r}")
        num_upsamplings(image_size)
        self.cond_dim, self.latent_dim = cond_dim, latent_dim
        self.image_size, self.in_channels = image_size, in_channels
        self.coordinates, self.learned_prior = decoder == "coordinate", bool(learned_prior)
        encoder_channels = in_channels + (2 if self.coordinates else 0)
        self.encoder = ConvEncoder(encoder_channels, image_size, width=max(8, width // 2),
                                   embed_dim=128)
        grid_features = self.encoder.out_channels * self.encoder.grid_size ** 2
        self.to_stats = nn.Sequential(nn.Linear(grid_features + cond_dim, 128), nn.ReLU(inplace=True),
                                      nn.Linear(128, 2 * latent_dim))
        if self.coordinates:
            self.decoder = CoordinateDecoder(latent_dim + cond_dim, in_channels, image_size, 2 * width)
        else:
            self.decoder = ConvDecoder(latent_dim + cond_dim, in_channels, image_size, width, cond_dim)
        self.prior_net = nn.Sequential(nn.Linear(cond_dim, 64), nn.ReLU(inplace=True),
                                       nn.Linear(64, 2 * latent_dim)) if self.learned_prior else None

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x,c): ``(mu, logvar)``, each ``(B, latent_dim)``."""
        check_images(x, self.in_channels, self.image_size)
        check_condition(c, len(x), self.cond_dim)
        if self.coordinates:
            x = torch.cat([x, coordinate_grid(len(x), self.image_size, self.image_size, x.device)], dim=1)
        grid = self.encoder.feature_map(x).flatten(1)  # keeps where things are
        mu, logvar = self.to_stats(torch.cat([grid, c], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)

    def prior(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(z|c): ``(mu_p, logvar_p)``, each ``(B, latent_dim)`` — zeros for the N(0, I) prior."""
        check_condition(c, None, self.cond_dim)
        if self.prior_net is None:
            zeros = c.new_zeros(len(c), self.latent_dim)
            return zeros, zeros
        mu, logvar = self.prior_net(c).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """p(x|z,c) as pixel logits ``(B, C, S, S)``."""
        check_condition(c, len(z), self.cond_dim)
        return self.decoder(torch.cat([z, c], dim=1), c)

    def forward(self, x: torch.Tensor, c: torch.Tensor):
        mu, logvar = self.encode(x, c)
        return self.decode(reparameterize(mu, logvar), c), mu, logvar

    @torch.no_grad()
    def sample(self, c: torch.Tensor, noise: torch.Tensor | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """Images in [0, 1] for conditions ``c`` ``(B, cond_dim)``.

        z = μ_p(c) + temperature · σ_p(c) · noise, with ``noise`` ~ N(0, I) unless given. A
        temperature below 1 draws from the prior's dense core: cleaner, less varied samples.
        """
        check_condition(c, None, self.cond_dim)
        if not temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {temperature!r}")
        if noise is None:
            noise = torch.randn(len(c), self.latent_dim, device=c.device)
        mu, logvar = self.prior(c)
        return torch.sigmoid(self.decode(mu + temperature * torch.exp(0.5 * logvar) * noise, c))


# ---------------------------------------------------------------- training
def shuffled_batches(n: int, batch_size: int, generator: torch.Generator):
    """Index tensors ``(batch_size,)`` covering a fresh permutation of ``range(n)`` (last partial batch dropped)."""
    order = torch.randperm(n, generator=generator)
    for start in range(0, n - batch_size + 1, batch_size):
        yield order[start:start + batch_size]


def train_cvae(model: CVAE, text_encoder: nn.Module, images: torch.Tensor,
               prompt_fn: Callable[[torch.Tensor], list[str]], num_epochs: int, device: torch.device,
               batch_size: int = 64, lr: float = 2e-3, beta: float = 1.0, kl_warmup: float = 0.0,
               likelihood: str = "bernoulli", sigma: float = 0.1, seed: int = 0,
               progress: bool = True) -> dict[str, list[float]]:
    """Train a CVAE and its prompt encoder by minimising the negative ELBO.

    Args:
        model: the CVAE.
        text_encoder: turns prompts into conditions; trained jointly (it may have no parameters).
        images: ``(N, C, S, S)`` in [0, 1].
        prompt_fn: ``indices (B,) -> B prompts`` for those images (fresh wording each epoch).
        num_epochs: passes over the images.
        device: where to train.
        batch_size: images per step.
        lr: Adam's learning rate (cosine-decayed to zero).
        beta: weight of the KL term (β-VAE); ramped up from 0 over the first ``kl_warmup`` of training.
        kl_warmup: the share of steps over which β ramps up.
        likelihood: ``"bernoulli"`` or ``"gaussian"`` (see :func:`reconstruction_loss`).
        sigma: the Gaussian likelihood's standard deviation.
        seed: fixes the batch order.
        progress: show a tqdm bar.

    Returns:
        Per-step ``loss``, ``recon`` and ``kl``, plus ``seconds``.
    """
    check_images(images, model.in_channels, model.image_size)
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive int, got {num_epochs!r}")
    model.to(device).train()
    text_encoder.to(device).train()
    params = list(model.parameters()) + [p for p in text_encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    steps_per_epoch = len(images) // batch_size
    total = num_epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=total, pct_start=0.1)
    g = torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {"loss": [], "recon": [], "kl": []}
    start, step = time.perf_counter(), 0
    with progress_bar(total=total, desc="CVAE", disable=not progress) as bar:
        for _ in range(num_epochs):
            for idx in shuffled_batches(len(images), batch_size, g):
                x = images[idx].to(device)
                c = text_encoder(prompt_fn(idx))
                x_logits, mu, logvar = model(x, c)
                weight = beta * min(1.0, step / max(1.0, kl_warmup * total))
                prior = model.prior(c) if model.learned_prior else None
                loss, recon, kl = elbo_loss(x, x_logits, mu, logvar, weight, prior, likelihood, sigma)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
                for key, value in (("loss", loss), ("recon", recon), ("kl", kl)):
                    history[key].append(value.item())
                bar.update(1)
                bar.set_postfix(recon=f"{recon.item():.1f}", kl=f"{kl.item():.1f}", refresh=False)
    history["seconds"] = [time.perf_counter() - start]
    model.eval()
    text_encoder.eval()
    return history


# ---------------------------------------------------------------- generation
def _check_num_samples(n: int) -> None:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"the number of samples must be a positive int, got {n!r}")


@torch.no_grad()
def generate_from_condition(model: nn.Module, condition: torch.Tensor, n: int,
                            seed: int | None = None, temperature: float = 1.0) -> torch.Tensor:
    """``n`` images in [0, 1] on the CPU for one condition vector ``(cond_dim,)`` or ``(1, cond_dim)``.

    ``model`` is a :class:`CVAE` (it has ``latent_dim`` and ``sample(c, z, temperature)``) or a GAN
    generator of :mod:`cmlib.gan` (it has ``noise_dim`` and is called as ``model(z, c)``).
    ``temperature`` scales a CVAE's prior noise (see :meth:`CVAE.sample`); a GAN ignores it.

    Raises:
        ValueError: if ``n`` is not positive or the condition has the wrong size.
    """
    _check_num_samples(n)
    if not isinstance(condition, torch.Tensor):
        raise TypeError(f"condition must be a tensor, got {type(condition).__name__}")
    c = condition.reshape(1, -1) if condition.ndim == 1 else condition
    if c.ndim != 2 or c.shape != (1, model.cond_dim):
        raise ValueError(f"expected one condition of size {model.cond_dim}, got shape "
                         f"{tuple(condition.shape)}")
    device = next(model.parameters()).device
    c = c.to(device).expand(n, -1)
    is_vae = isinstance(model, CVAE)
    noise_dim = model.latent_dim if is_vae else model.noise_dim
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    z = torch.randn(n, noise_dim, generator=gen).to(device)
    model.eval()
    out = model.sample(c, z, temperature) if is_vae else model(z, c)
    return out.cpu()


@torch.no_grad()
def generate(model: nn.Module, text_encoder: nn.Module, prompt: str, n: int,
             seed: int | None = None, temperature: float = 1.0) -> torch.Tensor:
    """Draw ``n`` images ``(n, C, S, S)`` in [0, 1] for a text ``prompt`` (``temperature``: CVAE only).

    Raises:
        ValueError: on an empty prompt, a prompt with no known word (bag-of-words
            encoder), a non-positive ``n``, or an encoder whose condition size does not fit the model.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
    _check_num_samples(n)
    text_encoder.eval()
    return generate_from_condition(model, text_encoder([prompt]), n, seed, temperature)


# ---------------------------------------------------------------- data of chapter 04
def one_object_photos(split: str, size: int, image_size: int = 16,
                      seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Chapter 04's data: one-object, photo-style ShapesWorld images ``(N, 3, S, S)`` and their labels."""
    data = ShapesWorld(split, size=size, image_size=image_size, num_objects=1, style="photo", seed=seed)
    return data.tensors(cache=False)


def judge_training_set(x_train: torch.Tensor, a_train: dict[str, torch.Tensor], x_heldout: torch.Tensor,
                       a_heldout: dict[str, torch.Tensor],
                       num_kept: int = 500) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The judge's training images: the generators' training set plus ``heldout[num_kept:]``.

    The judge must know all 18 colour–shape pairs, so it also learns from held-out pairs, which the
    generators never see; ``heldout[:num_kept]`` stays unseen by everyone, to score the judge on.
    """
    if not 0 <= num_kept < len(x_heldout):
        raise ValueError(f"num_kept must be in [0, {len(x_heldout)}), got {num_kept}")
    return (torch.cat([x_train, x_heldout[num_kept:]]),
            {k: torch.cat([a_train[k], a_heldout[k][num_kept:]]) for k in a_train})


# ---------------------------------------------------------------- the judge
JUDGE_HEADS = {"color": len(COLORS), "shape": len(SHAPES), "size": len(SIZES),
               "position": len(POSITIONS)}


class AttributeJudge(nn.Module):
    """An attribute classifier for one-object ShapesWorld images: colour, shape, size, position.

    A :class:`cmlib.vision.ConvEncoder` with one linear head per attribute.
    Trained on real images only, it then scores generated ones.

    Args:
        image_size: input height and width.
        width: ConvEncoder width.

    Shapes:
        ``forward(x (B, 3, S, S))`` → dict of logits, ``"color"`` ``(B, 6)``, ``"shape"`` ``(B, 3)``,
        ``"size"`` ``(B, 2)``, ``"position"`` ``(B, 5)``.
    """

    def __init__(self, image_size: int = 32, width: int = 16):
        super().__init__()
        self.encoder = ConvEncoder(3, image_size, width, embed_dim=64)
        self.heads = nn.ModuleDict({k: nn.Linear(64, n) for k, n in JUDGE_HEADS.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = F.relu(self.encoder(x))
        return {k: head(h) for k, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 500) -> dict[str, torch.Tensor]:
        """Predicted class ids per attribute, each ``(N,)`` on the CPU."""
        self.eval()
        device = next(self.parameters()).device
        outs = [self(images[i:i + batch_size].to(device)) for i in range(0, len(images), batch_size)]
        return {k: torch.cat([o[k] for o in outs]).argmax(1).cpu() for k in JUDGE_HEADS}


def train_judge(judge: AttributeJudge, images: torch.Tensor, attrs: dict[str, torch.Tensor],
                num_epochs: int, device: torch.device, batch_size: int = 64, lr: float = 3e-3,
                seed: int = 0, progress: bool = True) -> list[float]:
    """Train the judge on real images (sum of the four cross-entropies); return per-epoch losses."""
    check_images(images, 3)
    missing = set(JUDGE_HEADS) - set(attrs)
    if missing:
        raise ValueError(f"attrs lacks {sorted(missing)}")
    judge.to(device).train()
    optimizer = torch.optim.AdamW(judge.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = len(images) // batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=num_epochs * steps_per_epoch)
    g = torch.Generator().manual_seed(seed)
    losses = []
    with progress_bar(total=num_epochs * steps_per_epoch, desc="judge", disable=not progress) as bar:
        for _ in range(num_epochs):
            total = 0.0
            for idx in shuffled_batches(len(images), batch_size, g):
                logits = judge(images[idx].to(device))
                loss = sum(F.cross_entropy(logits[k], attrs[k][idx].to(device)) for k in JUDGE_HEADS)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                total += loss.item()
                bar.update(1)
            losses.append(total / steps_per_epoch)
    judge.eval()
    return losses


def judge_accuracy(judge: AttributeJudge, images: torch.Tensor,
                   attrs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Accuracy per attribute and for colour+shape together, on labelled images."""
    pred = judge.predict(images)
    out = {k: (pred[k] == attrs[k]).float().mean().item() for k in JUDGE_HEADS}
    both = (pred["color"] == attrs["color"]) & (pred["shape"] == attrs["shape"])
    out["color+shape"] = both.float().mean().item()
    return out


def prompt_fidelity(judge: AttributeJudge, images: torch.Tensor, color: str, shape: str,
                    size: str | None = None, position: str | None = None) -> dict[str, float]:
    """The share of ``images`` the judge sees as the prompted colour, shape (and size, position).

    Returns:
        ``color``, ``shape`` and ``color+shape`` rates, plus ``size`` and ``position`` when prompted.
    """
    pred = judge.predict(images)
    hit_color = pred["color"] == COLORS.index(color)
    hit_shape = pred["shape"] == SHAPES.index(shape)
    out = {"color": hit_color.float().mean().item(), "shape": hit_shape.float().mean().item(),
           "color+shape": (hit_color & hit_shape).float().mean().item()}
    if size is not None:
        out["size"] = (pred["size"] == SIZES.index(size)).float().mean().item()
    if position is not None:
        out["position"] = (pred["position"] == POSITIONS.index(position)).float().mean().item()
    return out



def fidelity_over(judge: AttributeJudge, model: nn.Module, encoder: nn.Module,
                  prompts: Sequence[EvalPrompt], n: int, seed: int = 0,
                  temperature: float = 1.0) -> dict[str, float]:
    """Mean :func:`prompt_fidelity` over ``prompts``, ``n`` samples each (noise seeds from ``seed``).

    Returns:
        ``color``, ``shape`` and ``color+shape``, plus ``size`` and ``position`` when prompted.
    """
    if not prompts:
        raise ValueError("fidelity_over needs at least one prompt")
    scores: dict[str, list[float]] = {}
    for k, (text, color, shape, size, position) in enumerate(prompts):
        images = generate(model, encoder, text, n, seed=seed * 1000 + k, temperature=temperature)
        for key, value in prompt_fidelity(judge, images, color, shape, size, position).items():
            scores.setdefault(key, []).append(value)
    return {key: float(np.mean(values)) for key, values in scores.items()}


def diversity(images: torch.Tensor) -> float:
    """Mean pixel distance (RMS) between pairs of images: 0 means every sample is the same."""
    if images.ndim != 4 or len(images) < 2:
        raise ValueError(f"expected at least two images (N, C, H, W), got {tuple(images.shape)}")
    flat = images.flatten(1).float()
    d = torch.cdist(flat, flat) / math.sqrt(flat.shape[1])
    n = len(flat)
    return float(d.sum() / (n * (n - 1)))


def real_diversity(images: torch.Tensor, attrs: dict[str, torch.Tensor], color: str, shape: str,
                   n: int = 40) -> float:
    """:func:`diversity` of (at most ``n``) real images of one colour and shape: the yardstick for samples."""
    keep = (attrs["color"] == COLORS.index(color)) & (attrs["shape"] == SHAPES.index(shape))
    if int(keep.sum()) < 2:
        raise ValueError(f"fewer than two real images of a {color} {shape}")
    return diversity(images[keep][:n])


# ---------------------------------------------------------------- the article's listing (errata)
class ArticleCVAE(nn.Module):
    """The §3.2.1.2 ``CVAE`` listing, as printed (only the Chinese comments translated).

    Kept for the errata: the encoder emits 2 numbers with no mean/log-variance
    split, no sampling and no KL term; ``self.embed`` is never defined; the
    decoder never sees the prompt.
    """

    def __init__(self, vis_dim, lang_dim):
        super(ArticleCVAE, self).__init__()
        self.encoder = nn.Sequential(
            nn.Linear(vis_dim + lang_dim, 20),
            nn.ReLU(),
            nn.Linear(20, 10),
            nn.ReLU(),
            nn.Linear(10, 2)  # the encoder's latent variable
        )
        self.decoder = nn.Sequential(
            nn.Linear(2, 10),
            nn.ReLU(),
            nn.Linear(10, 20),
            nn.ReLU(),
            nn.Linear(20, vis_dim)  # the decoder's output
        )

    def forward(self, text, vis_data):
        z = self.encoder(torch.cat([vis_data, self.embed(text)], dim=1))
        x_recon = self.decoder(z)
        return x_recon, z
