"""Vision models: convolutional encoders, classifiers and autoencoders for images.

:class:`ConvEncoder` is the image tower the course reuses: chapters 03, 04, 05 and 07 take
its pooled embedding or its spatial feature map. Chapter 01 adds :class:`CNNClassifier` (the
article's CNN done right; its penultimate layer is an image embedding), :class:`ConvAutoencoder`
(an embedding learned without labels), the convolution arithmetic of
:func:`conv_output_size`, the augmentation :func:`random_shift`, and
:func:`with_convolution`, which runs a network's convolutions through a reader's function.

Looking inside a network is in :mod:`cmlib.hooks`, scoring embeddings in :mod:`cmlib.probes`,
the pretrained EfficientNet-Lite0 in :mod:`cmlib.pretrained`, and the article's listings as
printed in :mod:`cmlib.errata`.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .validate import check_int, check_tensor


def check_images(x: torch.Tensor, in_channels: int, image_size: int | None = None) -> None:
    """Check a float image batch ``(B, in_channels, H, W)``, square of ``image_size`` if given.

    Raises:
        TypeError: if ``x`` is not a float tensor.
        ValueError: if its shape differs.
    """
    shape = (
        ("B", in_channels, "H", "W")
        if image_size is None
        else ("B", in_channels, image_size, image_size)
    )
    check_tensor("images", x, shape, floating=True)


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


def coordinate_grid(batch: int, h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """``(batch, 2, h, w)``: each cell's x and y in [-1, 1], to tell a network *where* (CoordConv
    channels)."""
    ys = torch.linspace(-1, 1, h, device=device)
    xs = torch.linspace(-1, 1, w, device=device)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([x, y]).unsqueeze(0).expand(batch, 2, h, w)


class ConvEncoder(nn.Module):
    """A small CNN: three conv blocks, then global average pooling and a linear projection.

    Args:
        in_channels: image channels (3 for RGB, 1 for MNIST).
        image_size: expected height and width (a multiple of 8).
        width: channels of the first block; they double per block.
        embed_dim: size of the output embedding.
        pool: ``"mean"`` averages the final grid over space (what is there, wherever it is);
            ``"flatten"`` keeps the grid's layout and projects all of it (what is where: which
            of two objects is on the left). Chapter 07 part 2 compares the two.
        cell_size: pixels per side of a grid cell: 8 (each block halves the image) or 4 (the
            last block keeps its resolution: a finer grid, for scenes of many small objects).

    Shapes:
        ``forward``: ``(B, in_channels, S, S)`` → ``(B, embed_dim)``.
        ``feature_map``: ``(B, in_channels, S, S)`` → ``(B, 4 * width, S / c, S / c)``, ``c =
        cell_size``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 32,
        width: int = 32,
        embed_dim: int = 128,
        pool: str = "mean",
        cell_size: int = 8,
    ):
        super().__init__()
        if image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8, got {image_size}")
        if pool not in ("mean", "flatten"):
            raise ValueError(f"pool must be 'mean' or 'flatten', got {pool!r}")
        if cell_size not in (4, 8):
            raise ValueError(f"cell_size must be 4 or 8, got {cell_size!r}")
        self.in_channels, self.image_size, self.pool = in_channels, image_size, pool
        self.cell_size, self.grid_size = cell_size, image_size // cell_size
        self.out_channels, self.embed_dim = 4 * width, embed_dim
        self.trunk = nn.Sequential(
            conv_block(in_channels, width),
            conv_block(width, 2 * width),
            conv_block(2 * width, 4 * width),
        )
        if cell_size == 4:  # same weights, one pooling fewer (a max-pool has no parameters)
            self.trunk[-1][-1] = nn.Identity()
        cells = 1 if pool == "mean" else self.grid_size**2
        self.project = nn.Linear(4 * width * cells, embed_dim)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial features before pooling: ``(B, 4 * width, S / cell_size, S / cell_size)``."""
        check_images(x, self.in_channels, self.image_size)
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = self.feature_map(x)
        pooled = grid.mean(dim=(2, 3)) if self.pool == "mean" else grid.flatten(1)
        return self.project(pooled)


# ----------------------------------------------------------------- conv arithmetic
def conv_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Height (or width) after a convolution or pooling layer, as PyTorch computes it.

    ``floor((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1``

    Raises:
        ValueError: if an argument is out of range or the kernel does not fit.
    """
    for name, value, low in (
        ("size", size, 1),
        ("kernel_size", kernel_size, 1),
        ("stride", stride, 1),
        ("padding", padding, 0),
        ("dilation", dilation, 1),
    ):
        check_int(name, value, minimum=low)
    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(
            f"a {kernel_size}x{kernel_size} kernel (dilation {dilation}) does not fit "
            f"in {size} pixels with padding {padding}"
        )
    return out


# ----------------------------------------------------------------- a CNN classifier
class CNNClassifier(nn.Module):
    """The article's CNN done right: (conv → ReLU → max-pool) blocks, then fully connected layers.

    Each block keeps the size with a padded 3×3 convolution and halves it
    with 2×2 max-pooling; the classifier's input size is computed from
    ``image_size``, and inputs are checked. The penultimate layer (after
    ``fc1`` and ReLU) is the image embedding.

    Args:
        in_channels: image channels (1 for MNIST, 3 for RGB).
        image_size: height and width; divisible by ``2 ** len(channels)``.
        num_classes: outputs of the last layer.
        channels: output channels of each conv block.
        embed_dim: width of the penultimate (embedding) layer.
        dropout: dropout before the last layer.
        batch_norm: batch normalisation after each convolution.

    Shapes:
        ``forward``: ``(B, in_channels, S, S)`` → logits ``(B, num_classes)``.
        ``embed``: ``(B, in_channels, S, S)`` → ``(B, embed_dim)``.
        ``features``: ``(B, in_channels, S, S)`` → ``(B, channels[-1], S / 2**k, S / 2**k)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        channels: tuple[int, ...] = (32, 64),
        embed_dim: int = 128,
        dropout: float = 0.25,
        batch_norm: bool = True,
    ):
        super().__init__()
        if not channels:
            raise ValueError("channels must list at least one conv block")
        if image_size % (2 ** len(channels)):
            raise ValueError(
                f"image_size must be divisible by {2 ** len(channels)} for "
                f"{len(channels)} pooling steps, got {image_size}"
            )
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes
        self.embed_dim = embed_dim
        layers: list[tuple[str, nn.Module]] = []
        previous = in_channels
        for i, width in enumerate(channels, start=1):
            layers.append(
                (f"conv{i}", nn.Conv2d(previous, width, 3, padding=1, bias=not batch_norm))
            )
            if batch_norm:
                layers.append((f"bn{i}", nn.BatchNorm2d(width)))
            layers += [(f"relu{i}", nn.ReLU()), (f"pool{i}", nn.MaxPool2d(2))]
            previous = width
        self.features = nn.Sequential(OrderedDict(layers))
        grid = image_size // 2 ** len(channels)
        self.fc1 = nn.Linear(previous * grid * grid, embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(embed_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate features ``(B, embed_dim)``: the CNN's image embedding."""
        check_images(x, self.in_channels, self.image_size)
        return torch.relu(self.fc1(self.features(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.embed(x)))


class FunctionalConv2d(nn.Module):
    """An ``nn.Conv2d``'s parameters, with the convolution itself done by a function you pass.

    Chapter 01's build exercise: the reader's ``conv_fn(x, weight, bias)`` (stride 1, no
    padding; :func:`cmlib.exercises.ch01.conv2d_unfold` is the reference) runs every
    convolution of a CNN that then trains. The layer pads its input as the convolution it
    replaces did, and passes a zero bias where that one had none.

    Args:
        conv: the layer to replace: stride 1, no dilation, one group, the same padding on
            every side (``padding_mode="zeros"``). Its weight and bias are shared, not copied.
        conv_fn: ``conv_fn(x (B, C_in, H, W), weight (C_out, C_in, k, k), bias (C_out,))`` →
            ``(B, C_out, H − k + 1, W − k + 1)``.

    Raises:
        TypeError: if ``conv`` is not an ``nn.Conv2d`` or ``conv_fn`` is not callable.
        ValueError: for a convolution this layer cannot stand in for.
    """

    def __init__(self, conv: nn.Conv2d, conv_fn):
        super().__init__()
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"conv must be an nn.Conv2d, got {type(conv).__name__}")
        if not callable(conv_fn):
            raise TypeError(f"conv_fn must be a function, got {type(conv_fn).__name__}")
        padding = 0 if conv.padding == "valid" else conv.padding
        pads = set(padding) if isinstance(padding, tuple) else {padding}
        plain = conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
        square = conv.kernel_size[0] == conv.kernel_size[1]
        zeros = conv.padding_mode == "zeros" and len(pads) == 1 and "same" not in pads
        if not (plain and square and zeros):
            raise ValueError(
                "FunctionalConv2d stands in for a stride-1, undilated, ungrouped convolution "
                f"with a square kernel and equal zero padding on every side; got {conv}"
            )
        self.weight, self.bias = conv.weight, conv.bias
        self.padding, self.conv_fn = pads.pop(), conv_fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("images", x, ("B", self.weight.shape[1], "H", "W"), floating=True)
        bias = self.bias if self.bias is not None else x.new_zeros(self.weight.shape[0])
        return self.conv_fn(nn.functional.pad(x, (self.padding,) * 4), self.weight, bias)


def with_convolution(model: nn.Module, conv_fn) -> nn.Module:
    """``model`` with every ``nn.Conv2d`` inside it replaced, in place, by a
    :class:`FunctionalConv2d` that shares its parameters and runs ``conv_fn``.

    Returns:
        ``model`` itself.

    Raises:
        ValueError: if ``model`` has no ``nn.Conv2d``, or one ``FunctionalConv2d`` cannot replace.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if isinstance(model, nn.Conv2d):
        raise ValueError(
            "with_convolution replaces the convolutions inside a network; for one layer, "
            "build FunctionalConv2d(conv, conv_fn)"
        )
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("the model has no nn.Conv2d to replace")
    for name, conv in convs:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, FunctionalConv2d(conv, conv_fn))
    return model


def random_shift(
    images: torch.Tensor, max_shift: int = 2, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Data augmentation: move each image by a random whole number of pixels (zeros fill in).

    Args:
        images: ``(B, C, H, W)`` float batch.
        max_shift: largest shift, in pixels, along each axis.
        generator: for reproducible shifts (on the CPU).

    Returns:
        A new ``(B, C, H, W)`` batch; each image shifted by ``(dy, dx)`` in
        ``[-max_shift, max_shift]``.
    """
    check_tensor("images", images, ("B", "C", "H", "W"))
    check_int("max_shift", max_shift, minimum=0)
    if max_shift == 0:
        return images.clone()
    b, _, h, w = images.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (b, 2), generator=generator)
    padded = nn.functional.pad(images, (max_shift,) * 4)
    rows = (torch.arange(h)[None, :] + max_shift - shifts[:, :1]).to(images.device)  # (B, H)
    cols = (torch.arange(w)[None, :] + max_shift - shifts[:, 1:]).to(images.device)  # (B, W)
    batch = torch.arange(b, device=images.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def permute_channels(
    images: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Data augmentation: shuffle each image's colour channels (a red object turns green or blue).

    A label that does not depend on colour — a shape, a size — stays true, so training a head on
    these images teaches it to ignore colour. Without it, a shape classifier that saw only red
    circles and squares may read any red object as "not a triangle": a shortcut through colour
    that breaks on new colour–shape pairs.

    Args:
        images: ``(B, C, H, W)`` float batch.
        generator: for reproducible permutations (on the CPU).

    Returns:
        A new ``(B, C, H, W)`` batch; image ``i``'s channels in a random order of its own.
    """
    check_tensor("images", images, ("B", "C", "H", "W"))
    order = torch.argsort(torch.rand(images.shape[:2], generator=generator), dim=1)
    order = order.to(images.device)[:, :, None, None].expand_as(images)
    return images.gather(1, order)


# ----------------------------------------------------------------- a convolutional autoencoder
class ConvAutoencoder(nn.Module):
    """A convolutional autoencoder: strided convs down to a vector ``z``, transposed convs back.

    What the article's ``ImageEmbedder`` meant: ``forward`` returns ``(z, x_recon)``.
    Train it to make ``x_recon`` close to ``x`` (:func:`autoencoder_loss`); ``z`` is an
    embedding learned without labels.

    Args:
        in_channels: image channels.
        image_size: height and width, divisible by 4.
        latent_dim: size of the embedding ``z``.
        width: channels of the first conv (the second has twice as many).
        batch_norm: batch normalisation after each hidden conv (steadier training).

    Shapes:
        ``encode``: ``(B, in_channels, S, S)`` → ``(B, latent_dim)``.
        ``decode``: ``(B, latent_dim)`` → ``(B, in_channels, S, S)`` in [0, 1].
        ``forward``: ``x`` → ``(z, x_recon)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        latent_dim: int = 32,
        width: int = 32,
        batch_norm: bool = True,
    ):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {image_size}")
        self.in_channels, self.image_size, self.latent_dim = in_channels, image_size, latent_dim
        grid = image_size // 4

        def norm(channels: int) -> nn.Module:
            return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()

        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1),
            norm(width),
            nn.ReLU(),  # S → S/2
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            norm(2 * width),
            nn.ReLU(),  # → S/4
            nn.Flatten(),
            nn.Linear(2 * width * grid * grid, latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 2 * width * grid * grid),
            nn.Unflatten(1, (2 * width, grid, grid)),
            norm(2 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),
            norm(width),
            nn.ReLU(),  # → S/2
            nn.ConvTranspose2d(width, in_channels, 4, stride=2, padding=1),  # → S
            nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.in_channels, self.image_size)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        check_tensor("codes", z, ("B", self.latent_dim))
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decode(z)


def autoencoder_loss(model: ConvAutoencoder, batch) -> torch.Tensor:
    """A :func:`cmlib.train.fit` step: mean squared reconstruction error of ``batch[0]``."""
    images = batch[0]
    _, recon = model(images)
    return nn.functional.mse_loss(recon, images)
