"""A conditional GAN for prompt-driven generation (article §3.2.1.1 GANs在跨模态学习中的应用).

* :class:`Generator` (DCGAN-style) and :class:`GlyphGenerator` (draws a glyph
  in the object's frame and places it over a background);
* :class:`ProjectionDiscriminator` — conditioning by projection (Miyato &
  Koyama, 2018), with a strided (DCGAN) or a pooled trunk.

:func:`cmlib.generation.gan_training.train_cgan` trains them (the loop of two players).

Sampling from a trained generator is :func:`cmlib.generation.generative.generate`; the article's GAN
listing as printed is :class:`cmlib.errata.GAN`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..validate import check_choice, check_int, check_tensor
from ..vision import check_images
from .decoders import ConvDecoder, CoordinateDecoder, check_condition, num_upsamplings


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
