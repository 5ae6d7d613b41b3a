"""cmlib.hooks: traced shapes, captured feature maps, first-layer filters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cmlib.hooks import capture_features, first_layer_filters, trace_shapes
from cmlib.vision import CNNClassifier


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ----------------------------------------------------------------- hooks
def test_trace_shapes_records_layers():
    trace = trace_shapes(CNNClassifier(channels=(4, 8)), torch.rand(2, 1, 28, 28))
    names = [row[0] for row in trace.rows]
    assert names[:4] == ["features.conv1", "features.bn1", "features.relu1", "features.pool1"]
    assert dict((r[0], r[2]) for r in trace.rows)["features.pool2"] == (2, 8, 7, 7)
    assert trace.error is None and "output shape" in str(trace)


def test_capture_features_and_hooks_removed():
    model = CNNClassifier(channels=(4, 8))
    maps = capture_features(
        model, torch.rand(3, 1, 28, 28), ["features.relu1", "features.pool2", "fc1"]
    )
    assert list(maps) == ["features.relu1", "features.pool2", "fc1"]
    assert maps["features.relu1"].shape == (3, 4, 28, 28) and maps["fc1"].shape == (3, 128)
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        capture_features(model, torch.rand(1, 1, 28, 28), ["nope"])
    assert all(not m._forward_hooks for m in model.modules())


def test_first_layer_filters():
    assert first_layer_filters(CNNClassifier(channels=(6,))).shape == (6, 1, 3, 3)
    with pytest.raises(ValueError, match="no Conv2d"):
        first_layer_filters(nn.Linear(2, 2))
