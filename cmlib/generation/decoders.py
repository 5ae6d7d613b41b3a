"""Image decoders: a vector (a latent code plus a condition) becomes an image.

The building blocks of the course's generators — the CVAE of :mod:`cmlib.generation.cvae`, the
GANs of :mod:`cmlib.generation.gan` and the translators of chapter 06:

* :class:`ConvDecoder` — DCGAN's body: a 4×4 map, then transposed convolutions, with the
  condition applied at every scale by FiLM;
* :class:`CoordinateDecoder` — a spatial-broadcast decoder: one small MLP per pixel, fed its
  (x, y), which draws small shapes crisply;
* :func:`check_condition` and :func:`num_upsamplings` — the shared checks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..validate import check_positive_ints, check_tensor
from ..vision import coordinate_grid


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

    def __init__(
        self,
        in_dim: int,
        out_channels: int = 3,
        image_size: int = 32,
        width: int = 32,
        cond_dim: int = 0,
    ):
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
        self.films = (
            nn.ModuleList([nn.Linear(cond_dim, 2 * n.num_features) for n in self.norms])
            if cond_dim > 0
            else None
        )

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
    check_tensor("condition", c, ("B", cond_dim))
    if batch is not None and c.shape[0] != batch:
        raise ValueError(f"expected {batch} conditions (one per image), got {c.shape[0]}")


class CoordinateDecoder(nn.Module):
    """A coordinate (spatial-broadcast) decoder: every pixel runs one small MLP on its (x, y) and
    the code.

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
        ``forward(code (B, in_dim), c ignored)`` → ``(B, out_channels, image_size, image_size)``
        logits.
        ``forward(code, coords=(B, S·S, 2))`` evaluates the MLP at other coordinates than the pixel
        grid, e.g. each pixel's position in an object's own frame
        (:class:`cmlib.generation.gan.GlyphGenerator`).
    """

    def __init__(
        self,
        in_dim: int,
        out_channels: int = 3,
        image_size: int = 16,
        width: int = 64,
        depth: int = 3,
    ):
        super().__init__()
        check_positive_ints(
            in_dim=in_dim,
            out_channels=out_channels,
            image_size=image_size,
            width=width,
            depth=depth,
        )
        self.in_dim, self.image_size = in_dim, image_size
        grid = coordinate_grid(1, image_size, image_size)  # (1, 2, S, S)
        self.register_buffer("coords", grid.flatten(2).transpose(1, 2).contiguous())  # (1, S·S, 2)
        self.from_coords = nn.Linear(2, width)
        self.from_code = nn.ModuleList(nn.Linear(in_dim, width) for _ in range(depth + 1))
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.to_image = nn.Linear(width, out_channels)

    def forward(
        self, code: torch.Tensor, c: torch.Tensor | None = None, coords: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_tensor("code", code, ("B", self.in_dim))
        if coords is None:
            coords = self.coords
        elif coords.shape[1:] != self.coords.shape[1:] or coords.shape[0] not in (1, len(code)):
            raise ValueError(
                f"expected coords (B, {self.coords.shape[1]}, 2), got {tuple(coords.shape)}"
            )
        h = F.relu(self.from_coords(coords) + self.from_code[0](code)[:, None, :])
        for layer, from_code in zip(self.hidden, self.from_code[1:]):
            h = F.relu(layer(h) + from_code(code)[:, None, :])
        out = self.to_image(h)  # (B, S·S, C)
        return out.transpose(1, 2).reshape(len(code), -1, self.image_size, self.image_size)
