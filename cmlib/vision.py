"""Vision models: convolutional encoders for images.

:class:`ConvEncoder` is the image tower the course reuses: chapters 03, 04
and 07 take its pooled embedding or its spatial feature map.
"""

from __future__ import annotations

import torch
from torch import nn


def check_images(x: torch.Tensor, in_channels: int, image_size: int | None = None) -> None:
    """Raise ValueError unless ``x`` is a float batch ``(B, in_channels, H, W)`` of the expected size."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of images, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(f"expected images of shape (B, {in_channels}, H, W), got {tuple(x.shape)}")
    if image_size is not None and tuple(x.shape[-2:]) != (image_size, image_size):
        raise ValueError(f"expected {image_size}x{image_size} images, got "
                         f"{x.shape[-2]}x{x.shape[-1]}")
    if not x.is_floating_point():
        raise TypeError(f"expected float images in [0, 1], got dtype {x.dtype}")


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """conv 3x3 → batch norm → ReLU → conv 3x3 → batch norm → ReLU → max-pool 2 (halves H and W)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class ConvEncoder(nn.Module):
    """A small CNN: three conv blocks, then global average pooling and a linear projection.

    Args:
        in_channels: image channels (3 for RGB, 1 for MNIST).
        image_size: expected height and width (a multiple of 8).
        width: channels of the first block; they double per block.
        embed_dim: size of the output embedding.

    Shapes:
        ``forward``: ``(B, in_channels, S, S)`` → ``(B, embed_dim)``.
        ``feature_map``: ``(B, in_channels, S, S)`` → ``(B, 4 * width, S / 8, S / 8)``.
    """

    def __init__(self, in_channels: int = 3, image_size: int = 32, width: int = 32,
                 embed_dim: int = 128):
        super().__init__()
        if image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8, got {image_size}")
        self.in_channels, self.image_size = in_channels, image_size
        self.out_channels, self.grid_size, self.embed_dim = 4 * width, image_size // 8, embed_dim
        self.trunk = nn.Sequential(
            conv_block(in_channels, width),
            conv_block(width, 2 * width),
            conv_block(2 * width, 4 * width),
        )
        self.project = nn.Linear(4 * width, embed_dim)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial features before pooling: ``(B, 4 * width, S / 8, S / 8)``."""
        check_images(x, self.in_channels, self.image_size)
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.feature_map(x).mean(dim=(2, 3)))
