"""Tests for cmlib.ensembles: late fusion as a product of experts."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cmlib.ensembles import LateFusionEnsemble, late_fusion


# ---------------------------------------------------------------- model-level fusion
def test_late_fusion_is_a_product_of_experts():
    a, b = torch.randn(4, 5), torch.randn(4, 5)
    prior = torch.softmax(torch.randn(5), 0).log()
    expected = F.log_softmax(a, 1) + F.log_softmax(b, 1) - prior
    assert torch.allclose(late_fusion([a, b], log_prior=prior), expected, atol=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        late_fusion([a, torch.randn(4, 6)])
    with pytest.raises(ValueError, match="weights"):
        late_fusion([a, b], weights=[1.0])


def test_ensemble_combines_complementary_members():
    # member 1 knows the first half of the classes, member 2 the parity: together they are sure
    labels = torch.arange(8)
    first = torch.where(torch.arange(8)[None, :] // 4 == labels[:, None] // 4, 3.0, 0.0)
    second = torch.where(torch.arange(8)[None, :] % 4 == labels[:, None] % 4, 3.0, 0.0)
    members = [nn.Identity(), nn.Identity()]
    ensemble = LateFusionEnsemble(members)
    pred = ensemble([(first,), (second,)]).argmax(1)
    assert (pred == labels).all()
    assert (first.argmax(1) == labels).float().mean() < 1
    with pytest.raises(ValueError, match="one input tuple per member"):
        ensemble([(first,)])
