"""CycleGAN's two players, sized for 16–32 px ShapesWorld images.

* :class:`ResnetGenerator` — encode (one stride-2 step), a few residual blocks, decode with
  nearest-neighbour upsampling and a 3×3 convolution;
* :class:`PatchDiscriminator` — a PatchGAN: one real/fake score per image patch;
* :func:`init_weights` — N(0, 0.02), as in the reference implementation.

Why these choices, each against a failure the reference repository's users hit:

* **Instance norm** (not batch norm): a translation should depend on the image, not on the
  other images in its batch.
* **Reflection padding** keeps the borders free of the dark frame that zero padding teaches.
* **Upsample + conv** instead of a transposed convolution: transposed convolutions overlap
  unevenly and paint checkerboard artefacts (Odena, Dumoulin & Olah, 2016).
* **A PatchGAN with a small receptive field**: the default three-layer PatchGAN sees 70×70 px
  and leaves no output at all on a 16 px image. One stride-2 layer and two stride-1 layers see
  about 16 px — roughly one object — so D judges local style (filled or outlined, textured or
  plain paper) and leaves the content to the cycle loss.
"""

from __future__ import annotations

import torch
from torch import nn

from ..vision import check_images


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Draw every conv weight from N(0, ``std``) and zero its bias (the reference CycleGAN init)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _conv_block(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Reflection pad, conv, instance norm, ReLU."""
    return nn.Sequential(
        nn.ReflectionPad2d(kernel // 2),
        nn.Conv2d(in_channels, out_channels, kernel, stride),
        nn.InstanceNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """x + conv(conv(x)): the generator's body keeps the input unless a change pays.

    Shapes:
        ``forward(x (B, C, H, W))`` → ``(B, C, H, W)``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            _conv_block(channels, channels, 3),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """An image-to-image generator: c3 → residual blocks → output layer, the blocks at half
    resolution between a stride-2 downsampling and an upsampling (or, without ``downsample``,
    at full resolution).

    Images live in [0, 1] outside and in [−1, 1] inside, so the output layer is a tanh. With
    ``skip=True`` the full-resolution features of the first layer are concatenated to the
    body's output before the output layer (one U-Net skip, Ronneberger et al., 2015): at 16 px a
    shape is a few pixels across, and the skip hands its exact outline to the output instead of
    asking the half-resolution body to redraw it.

    Args:
        channels: image channels.
        width: channels of the first layer (the body has twice as many at half resolution,
            as many at full resolution).
        num_blocks: residual blocks in the body.
        skip: add the full-resolution skip connection.
        downsample: run the body at half resolution with twice the width (the reference's
            layout); ``False`` keeps it at full resolution and at ``width``, for the same
            arithmetic per block. At 16 px a small object is 3 pixels across, 1.5 at half
            resolution, where a square's corners and a circle's edge fall in one pixel.

    Shapes:
        ``forward(x (B, C, S, S))`` → ``(B, C, S, S)`` in [0, 1], S even.
    """

    def __init__(
        self,
        channels: int = 3,
        width: int = 16,
        num_blocks: int = 3,
        skip: bool = True,
        downsample: bool = True,
    ):
        super().__init__()
        self.channels, self.skip = channels, skip
        self.stem = _conv_block(channels, width, 3)
        if downsample:
            self.body = nn.Sequential(
                _conv_block(width, 2 * width, 3, stride=2),
                *[ResidualBlock(2 * width) for _ in range(num_blocks)],
                nn.Upsample(scale_factor=2, mode="nearest"),
                _conv_block(2 * width, width, 3),
            )
        else:  # 2w channels on (S/2)² pixels cost what w channels cost on S²
            self.body = nn.Sequential(*[ResidualBlock(width) for _ in range(num_blocks)])
        self.head = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(2 * width if skip else width, channels, 3),
            nn.Tanh(),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.channels)
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"image height and width must be even, got {tuple(x.shape[-2:])}")
        h = self.stem(2.0 * x - 1.0)
        out = self.body(h)
        if self.skip:
            out = torch.cat([h, out], dim=1)
        return (self.head(out) + 1.0) / 2.0


class PatchDiscriminator(nn.Module):
    """PatchGAN: a fully convolutional D that scores every patch of the image as real or fake.

    With ``num_layers`` stride-2 4×4 convolutions followed by two stride-1 ones, the receptive
    field is 16 px for one layer and 34 px for two (the reference's three layers see 70 px).

    Args:
        channels: image channels.
        width: channels of the first layer (doubling at each stride-2 layer).
        num_layers: stride-2 layers.

    Shapes:
        ``forward(x (B, C, S, S))`` → scores ``(B, 1, P, P)``, one per patch (no sigmoid: LSGAN).
    """

    def __init__(self, channels: int = 3, width: int = 32, num_layers: int = 1):
        super().__init__()
        self.channels = channels
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = width
        for _ in range(num_layers - 1):
            layers += [
                nn.Conv2d(c, 2 * c, 4, 2, 1),
                nn.InstanceNorm2d(2 * c),
                nn.LeakyReLU(0.2, True),
            ]
            c *= 2
        layers += [
            nn.Conv2d(c, 2 * c, 4, 1, 1),
            nn.InstanceNorm2d(2 * c),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * c, 1, 4, 1, 1),
        ]
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.channels)
        return self.net(2.0 * x - 1.0)
