"""Tests for cmlib.fusion: every fusion module's interface, checks and what it computes."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from cmlib.fusion import (
    FUSIONS,
    AdditiveFusion,
    ConcatFusion,
    CrossAttentionFusion,
    FiLMFusion,
    GatedFusion,
    MultiplicativeFusion,
    make_fusion,
)

C, L, D = 8, 6, 10


def _inputs(name: str, batch: int = 3):
    spatial = FUSIONS[name].spatial
    vision = torch.randn(batch, C, 4, 4) if spatial else torch.randn(batch, C)
    return vision, torch.randn(batch, L)


@pytest.mark.parametrize("name", list(FUSIONS))
def test_every_fusion_gives_batch_by_out_dim(name):
    fusion = make_fusion(name, C, L, D)
    vision, language = _inputs(name)
    assert fusion(vision, language).shape == (3, D)


@pytest.mark.parametrize("name", list(FUSIONS))
def test_mismatched_batch_raises_naming_both_shapes(name):
    fusion = make_fusion(name, C, L, D)
    vision, _ = _inputs(name, batch=3)
    with pytest.raises(ValueError, match=r"vision \(3, 8.*language \(4, 6\)"):
        fusion(vision, torch.randn(4, L))


@pytest.mark.parametrize("name", list(FUSIONS))
def test_wrong_feature_size_raises(name):
    fusion = make_fusion(name, C, L, D)
    vision, _ = _inputs(name)
    with pytest.raises(ValueError, match="language"):
        fusion(vision, torch.randn(3, L + 1))
    bad_vision = torch.randn(3, C + 1, 4, 4) if fusion.spatial else torch.randn(3, C + 1)
    with pytest.raises(ValueError, match="vision"):
        fusion(bad_vision, torch.randn(3, L))


def test_unknown_fusion_and_bad_sizes_raise():
    with pytest.raises(ValueError, match="unknown fusion"):
        make_fusion("sum", C, L)
    with pytest.raises(ValueError, match="out_dim"):
        ConcatFusion(C, L, 0)
    with pytest.raises(TypeError):
        ConcatFusion(C, L)([1, 2], torch.randn(1, L))


def test_additive_multiplicative_concat_do_what_they_say():
    v, lang = torch.randn(2, C), torch.randn(2, L)
    add = AdditiveFusion(C, L, D)
    assert torch.allclose(add(v, lang), F.relu(add.vision_proj(v) + add.language_proj(lang)))
    mul = MultiplicativeFusion(C, L, D)
    expected = torch.tanh(mul.vision_proj(v)) * torch.tanh(mul.language_proj(lang))
    assert torch.allclose(mul(v, lang), expected)
    cat = ConcatFusion(C, L, D)
    assert torch.allclose(cat(v, lang), F.relu(cat.proj(torch.cat([v, lang], 1))))


def test_gate_lies_in_unit_interval_and_mixes():
    gated = GatedFusion(C, L, D)
    v, lang = torch.randn(4, C), torch.randn(4, L)
    g = gated.gate_values(v, lang)
    assert g.shape == (4, D) and (g > 0).all() and (g < 1).all()
    mix = g * torch.tanh(gated.vision_proj(v)) + (1 - g) * torch.tanh(gated.language_proj(lang))
    assert torch.allclose(gated(v, lang), mix)


def test_attention_maps_sum_to_one_per_head():
    attention = CrossAttentionFusion(C, L, D, grid_size=4, num_heads=3)
    maps = attention.attention(torch.randn(2, C, 4, 4), torch.randn(2, L))
    assert maps.shape == (2, 3, 4, 4)
    assert torch.allclose(maps.sum(dim=(2, 3)), torch.ones(2, 3), atol=1e-5)


def test_spatial_fusions_reject_a_wrong_grid_size():
    for fusion in (FiLMFusion(C, L, D, grid_size=4), CrossAttentionFusion(C, L, D, grid_size=4)):
        with pytest.raises(ValueError, match="4x4 grid"):
            fusion(torch.randn(2, C, 3, 3), torch.randn(2, L))


def test_film_uses_where_things_are():
    torch.manual_seed(0)
    film = FiLMFusion(C, L, D, grid_size=4).eval()
    grid, lang = torch.zeros(1, C, 4, 4), torch.randn(1, L)
    left, right = grid.clone(), grid.clone()
    left[..., 1, 0], right[..., 1, 3] = 1.0, 1.0  # the same feature in another place
    assert not torch.allclose(film(left, lang), film(right, lang))


def test_the_bilinear_layer_uses_its_rule():
    from cmlib.fusion import LowRankBilinearFusion, low_rank_bilinear

    fusion, v, lang = LowRankBilinearFusion(C, L, D, rank=5), torch.randn(3, C), torch.randn(3, L)
    expected = F.relu(
        fusion.out(torch.tanh(fusion.vision_factor(v)) * torch.tanh(fusion.language_factor(lang)))
    )
    assert torch.allclose(fusion(v, lang), expected)
    rule = low_rank_bilinear(v, lang, fusion.vision_factor, fusion.language_factor, fusion.out)
    assert torch.equal(rule, fusion(v, lang))
