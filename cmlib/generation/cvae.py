"""The conditional VAE (条件VAE, Sohn et al., 2015): draw an image from a prompt's condition.

* the ELBO's parts — :func:`reparameterize`, :func:`kl_divergence` (to N(0, I) or a learned
  prior), :func:`reconstruction_loss` (Bernoulli or Gaussian) and :func:`elbo_loss`;
* :class:`CVAE` — q(z|x,c), p(x|z,c) with a conv or a coordinate decoder, and p(z|c);
* :func:`train_cvae` — trains the CVAE with its prompt encoder through :func:`cmlib.train.fit`.

Drawing from a prompt is :func:`cmlib.generation.generative.generate`. Chapter 04, §3.2.1.2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..train import History, IndexBatches, fit
from ..validate import check_choice, check_int, check_number
from ..vision import ConvEncoder, check_images, coordinate_grid
from .decoders import ConvDecoder, CoordinateDecoder, check_condition, num_upsamplings


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I): a sample that gradients can flow through."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def kl_divergence(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior_mu: torch.Tensor | None = None,
    prior_logvar: torch.Tensor | None = None,
) -> torch.Tensor:
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
        raise ValueError(
            f"the prior's mean {tuple(prior_mu.shape)} and log-variance "
            f"{tuple(prior_logvar.shape)} must match the posterior's {tuple(mu.shape)}"
        )
    return 0.5 * (
        prior_logvar - logvar + (logvar.exp() + (mu - prior_mu).pow(2)) / prior_logvar.exp() - 1.0
    ).sum(dim=1)


LIKELIHOODS = ("bernoulli", "gaussian")


def reconstruction_loss(
    x: torch.Tensor, x_logits: torch.Tensor, likelihood: str = "bernoulli", sigma: float = 0.1
) -> torch.Tensor:
    """−log p(x|z,c) per image, summed over pixels, averaged over the batch (up to a constant).

    Args:
        x: images ``(B, C, S, S)`` in [0, 1].
        x_logits: the decoder's output, same shape; the pixel mean is ``sigmoid(x_logits)``.
        likelihood: ``"bernoulli"`` (binary cross-entropy) or ``"gaussian"`` with a fixed standard
            deviation ``sigma``: ``‖x − mean‖² / (2 sigma²)``. On grey photos a wrong pixel costs
            the
            Bernoulli far less than a sharp Gaussian, so a small ``sigma`` makes the code z worth
            using.
        sigma: the Gaussian's standard deviation (pixel units).
    """
    if x.shape != x_logits.shape:
        raise ValueError(f"x {tuple(x.shape)} and x_logits {tuple(x_logits.shape)} must match")
    if likelihood == "bernoulli":
        per_pixel = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none")
    elif likelihood == "gaussian":
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}")
        per_pixel = (torch.sigmoid(x_logits) - x).pow(2) / (2 * sigma**2)
    else:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    return per_pixel.flatten(1).sum(1).mean()


def elbo_loss(
    x: torch.Tensor,
    x_logits: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float = 1.0,
    prior: tuple[torch.Tensor, torch.Tensor] | None = None,
    likelihood: str = "bernoulli",
    sigma: float = 0.1,
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

    def __init__(
        self,
        cond_dim: int,
        latent_dim: int = 16,
        image_size: int = 32,
        in_channels: int = 3,
        width: int = 32,
        decoder: str = "conv",
        learned_prior: bool = False,
    ):
        super().__init__()
        if decoder not in self.DECODERS:
            raise ValueError(f"decoder must be one of {self.DECODERS}, got {decoder!r}")
        num_upsamplings(image_size)
        self.cond_dim, self.latent_dim = cond_dim, latent_dim
        self.image_size, self.in_channels = image_size, in_channels
        self.coordinates, self.learned_prior = decoder == "coordinate", bool(learned_prior)
        encoder_channels = in_channels + (2 if self.coordinates else 0)
        self.encoder = ConvEncoder(
            encoder_channels, image_size, width=max(8, width // 2), embed_dim=128
        )
        grid_features = self.encoder.out_channels * self.encoder.grid_size**2
        self.to_stats = nn.Sequential(
            nn.Linear(grid_features + cond_dim, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, 2 * latent_dim),
        )
        if self.coordinates:
            self.decoder = CoordinateDecoder(
                latent_dim + cond_dim, in_channels, image_size, 2 * width
            )
        else:
            self.decoder = ConvDecoder(
                latent_dim + cond_dim, in_channels, image_size, width, cond_dim
            )
        self.prior_net = (
            nn.Sequential(
                nn.Linear(cond_dim, 64), nn.ReLU(inplace=True), nn.Linear(64, 2 * latent_dim)
            )
            if self.learned_prior
            else None
        )

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x,c): ``(mu, logvar)``, each ``(B, latent_dim)``."""
        check_images(x, self.in_channels, self.image_size)
        check_condition(c, len(x), self.cond_dim)
        if self.coordinates:
            x = torch.cat(
                [x, coordinate_grid(len(x), self.image_size, self.image_size, x.device)], dim=1
            )
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
    def sample(
        self, c: torch.Tensor, noise: torch.Tensor | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
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


def train_cvae(
    model: CVAE,
    text_encoder: nn.Module,
    images: torch.Tensor,
    prompt_fn: Callable[[torch.Tensor], list[str]],
    num_epochs: int,
    device: torch.device,
    batch_size: int = 64,
    lr: float = 2e-3,
    beta: float = 1.0,
    kl_warmup: float = 0.0,
    likelihood: str = "bernoulli",
    sigma: float = 0.1,
    seed: int = 0,
    progress: bool = True,
    loss_fn: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None,
) -> History:
    """Train a CVAE and its prompt encoder by minimising the negative ELBO.

    Args:
        model: the CVAE.
        text_encoder: turns prompts into conditions; trained jointly (it may have no parameters).
        images: ``(N, C, S, S)`` in [0, 1].
        prompt_fn: ``indices (B,) -> B prompts`` for those images (fresh wording each epoch).
        num_epochs: passes over the images.
        device: where to train.
        batch_size: images per step.
        lr: Adam's learning rate (one-cycle: a short warm-up, then a cosine decay to zero).
        beta: weight of the KL term (β-VAE); ramped up from 0 over the first ``kl_warmup`` of
            training.
        kl_warmup: the share of steps over which β ramps up.
        likelihood: ``"bernoulli"`` or ``"gaussian"`` (see :func:`reconstruction_loss`).
        sigma: the Gaussian likelihood's standard deviation.
        seed: fixes the batch order.
        progress: show a tqdm bar.
        loss_fn: ``(x, x_logits, mu, logvar, beta) -> (loss, recon, kl)`` in place of
            :func:`elbo_loss`, for a model with the prior N(0, I) and the Bernoulli likelihood
            (a reader's own negative ELBO, exercise 4.4).

    Returns:
        The :class:`~cmlib.train.History`, with per-step ``loss``, ``recon`` and ``kl``.

    Raises:
        TypeError: if ``loss_fn`` is given and is not callable.
        ValueError: if ``loss_fn`` is given for a learned prior or a Gaussian likelihood.
    """
    check_images(images, model.in_channels, model.image_size)
    check_int("num_epochs", num_epochs)
    check_choice("likelihood", likelihood, LIKELIHOODS)
    check_number("kl_warmup", kl_warmup, 0, 1)
    if loss_fn is not None:
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be a function, got {type(loss_fn).__name__}")
        if model.learned_prior or likelihood != "bernoulli":
            raise ValueError(
                "loss_fn replaces the negative ELBO with the prior N(0, I) and the Bernoulli "
                f"likelihood; this model has learned_prior={model.learned_prior} and "
                f"likelihood={likelihood!r}"
            )
    batches = IndexBatches(len(images), batch_size, seed)
    total = num_epochs * len(batches)
    trainable = nn.ModuleDict({"cvae": model, "text_encoder": text_encoder})
    params = list(model.parameters()) + [p for p in text_encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=total, pct_start=0.1)
    steps_done = [0]

    def step(_: nn.Module, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        x = images[idx].to(device)
        c = text_encoder(prompt_fn(idx))
        x_logits, mu, logvar = model(x, c)
        weight = beta * min(1.0, steps_done[0] / max(1.0, kl_warmup * total))  # KL warm-up
        if loss_fn is not None:
            loss, recon, kl = loss_fn(x, x_logits, mu, logvar, weight)
        else:
            prior = model.prior(c) if model.learned_prior else None
            loss, recon, kl = elbo_loss(x, x_logits, mu, logvar, weight, prior, likelihood, sigma)
        steps_done[0] += 1
        return {"loss": loss, "recon": recon, "kl": kl}

    return fit(
        trainable,
        batches,
        optimizer,
        num_epochs,
        device,
        step_fn=step,
        scheduler=scheduler,
        progress=progress,
        desc="CVAE",
    )


@dataclass(frozen=True)
class PromptCVAERecipe:
    """Chapter 04's prompt-to-image CVAE, written once: its architecture and its training.

    Chapter 04 part 1 trains it, the studio's drawer is it, and part 3 and chapter 05 load what
    part 1 saved. The defaults are the cpu profile's; :meth:`for_profile` gives the gpu one.

    Shapes:
        :meth:`build` gives a :class:`CVAE` for ``(B, 3, image_size, image_size)`` images and
        ``(B, cond_dim)`` conditions.
    """

    cond_dim: int = 32
    latent_dim: int = 8
    image_size: int = 16
    width: int = 32
    decoder: str = "coordinate"
    learned_prior: bool = True
    num_epochs: int = 20
    batch_size: int = 32
    lr: float = 2e-3
    likelihood: str = "gaussian"
    sigma: float = 0.1

    @classmethod
    def for_profile(cls, profile: str) -> PromptCVAERecipe:
        """The recipe of run profile ``"cpu"`` or ``"gpu"`` (which trains twice as long)."""
        check_choice("profile", profile, ("cpu", "gpu"))
        return cls() if profile == "cpu" else cls(num_epochs=40)

    def build(self) -> CVAE:
        """A new, untrained CVAE of this architecture."""
        return CVAE(
            self.cond_dim,
            latent_dim=self.latent_dim,
            image_size=self.image_size,
            width=self.width,
            decoder=self.decoder,
            learned_prior=self.learned_prior,
        )

    def train(
        self,
        model: CVAE,
        text_encoder: nn.Module,
        images: torch.Tensor,
        prompt_fn: Callable[[torch.Tensor], list[str]],
        device: torch.device,
        seed: int = 0,
        progress: bool = True,
    ) -> History:
        """:func:`train_cvae` with this recipe's settings; arguments as there."""
        return train_cvae(
            model,
            text_encoder,
            images,
            prompt_fn,
            self.num_epochs,
            device,
            batch_size=self.batch_size,
            lr=self.lr,
            likelihood=self.likelihood,
            sigma=self.sigma,
            seed=seed,
            progress=progress,
        )
