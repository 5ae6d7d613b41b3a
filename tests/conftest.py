"""Shared fixtures."""

from __future__ import annotations

import pytest

from cmlib.data.shapes import ShapesWorld


@pytest.fixture(scope="module")
def shapes():
    """64 one-object, photo-style ShapesWorld training images and their attributes."""
    return ShapesWorld("train", size=64, num_objects=1, style="photo").tensors(cache=False)
