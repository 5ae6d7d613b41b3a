"""Tests for cmlib.vqa: the VQA model, the grid tagger, grid features and accuracy by kind."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cmlib.backbone import GridTagger, grid_features, pretrain_backbone
from cmlib.fusion import ConcatFusion
from cmlib.sequence import TextEncoder
from cmlib.vision import ConvEncoder
from cmlib.vqa import VQAModel, accuracy_by_kind, make_vqa_model

C, L, D = 8, 6, 10


def _toy_vqa(name: str):
    torch.manual_seed(0)
    model = make_vqa_model(
        name, vocab_size=12, num_answers=3, grid_channels=C, text_dim=16, embed_dim=8, fused_dim=16
    )
    grids = torch.randn(64, C, 4, 4)
    ids = torch.randint(1, 12, (64, 5))
    lengths = torch.full((64,), 5)
    answers = (grids[:, 0].mean(dim=(1, 2)) > 0).long() + (ids[:, 0] > 6).long()
    return model, grids, ids, lengths, answers


@pytest.mark.parametrize("name", ["concat", "film", "attention"])
def test_a_few_steps_lower_the_vqa_loss(name):
    model, grids, ids, lengths, answers = _toy_vqa(name)
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    model.train()
    first = F.cross_entropy(model(grids, ids, lengths), answers).item()
    for _ in range(30):
        loss = F.cross_entropy(model(grids, ids, lengths), answers)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.7 * first


def test_vqa_model_checks_its_parts_and_inputs():
    with pytest.raises(ValueError, match="text encoder gives 16"):
        VQAModel(ConcatFusion(C, L, D), TextEncoder(12, 8, 16), 3)
    with pytest.raises(TypeError):
        VQAModel(nn.Linear(2, 2), TextEncoder(12, 8, 16), 3)
    model, grids, ids, lengths, _ = _toy_vqa("add")
    with pytest.raises(ValueError, match="feature grid"):
        model(grids.mean(dim=(2, 3)), ids, lengths)


def test_accuracy_by_kind_reports_each_kind():
    model, grids, ids, lengths, answers = _toy_vqa("mul")
    kinds = torch.arange(64) % 2
    acc = accuracy_by_kind(
        model, grids, ids, lengths, answers, kinds, ["a", "b"], torch.device("cpu")
    )
    assert set(acc) == {"overall", "a", "b"} and all(0 <= v <= 1 for v in acc.values())
    with pytest.raises(ValueError, match="same number of rows"):
        accuracy_by_kind(
            model, grids[:10], ids, lengths, answers, kinds, ["a", "b"], torch.device("cpu")
        )


def test_grid_tagger_and_grid_features_shapes():
    encoder = ConvEncoder(width=4, embed_dim=8)
    tagger = GridTagger(encoder, {"pair": 19, "size": 3})
    out = tagger(torch.rand(2, 3, 32, 32))
    assert out["pair"].shape == (2, 19, 4, 4) and out["size"].shape == (2, 3, 4, 4)
    grids = grid_features(encoder, torch.rand(5, 3, 32, 32), torch.device("cpu"), batch_size=2)
    assert grids.shape == (5, 16, 4, 4)
    with pytest.raises(TypeError):
        GridTagger(nn.Linear(2, 2), {"pair": 3})
    with pytest.raises(TypeError):
        GridTagger(encoder, 3)


def test_pretrain_backbone_learns_cells_and_freezes():
    torch.manual_seed(0)
    images = torch.rand(16, 3, 32, 32)
    cells = {"size": (images[:, 0, ::8, ::8] > 0.5).long()}  # a label readable from the pixels
    tagger, history = pretrain_backbone(
        images,
        cells,
        {"size": 3},
        15,
        torch.device("cpu"),
        width=4,
        batch_size=16,
        lr=2e-2,
        progress=False,
    )
    assert history.train_loss[-1] < history.train_loss[0] * 0.5
    assert not any(p.requires_grad for p in tagger.encoder.parameters())
    with pytest.raises(ValueError, match="same heads"):
        pretrain_backbone(images, cells, {"pair": 3}, 1, torch.device("cpu"), progress=False)


def _red_or_green_spots(num: int, channel: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose bright cells (the label) are lit in one colour channel only."""
    g = torch.Generator().manual_seed(seed)
    label = (torch.rand(num, 4, 4, generator=g) > 0.5).long()
    images = torch.zeros(num, 3, 32, 32)
    images[:, channel] = label.repeat_interleave(8, 1).repeat_interleave(8, 2).float()
    return images, label


@pytest.mark.parametrize("invariant", [False, True])
def test_pretrain_backbone_color_invariant_heads_ignore_colour(invariant):
    # Trained on red spots only, a head reads green spots too only when trained colour-invariant.
    images, cells = _red_or_green_spots(32, channel=0, seed=0)
    torch.manual_seed(0)
    tagger, _ = pretrain_backbone(
        images,
        {"lit": cells},
        {"lit": 2},
        12,
        torch.device("cpu"),
        width=4,
        batch_size=16,
        lr=2e-2,
        background_weight=1.0,
        color_invariant=("lit",) if invariant else (),
        progress=False,
    )
    green, green_cells = _red_or_green_spots(32, channel=1, seed=1)
    with torch.no_grad():
        accuracy = (tagger(green)["lit"].argmax(1) == green_cells).float().mean().item()
    if invariant:
        assert accuracy > 0.95
    else:
        assert accuracy < 0.75  # it learnt "red", and green cells look like background
    with pytest.raises(ValueError, match="color_invariant"):
        pretrain_backbone(
            images,
            {"lit": cells},
            {"lit": 2},
            1,
            torch.device("cpu"),
            color_invariant=("shape",),
            progress=False,
        )


def test_chapter_five_backbone_is_pretrained_once_and_loading_leaves_the_random_state(
    tmp_path, monkeypatch
):
    from conftest import train_then_load

    from cmlib import backbone

    tiny = {"num_train": 80, "backbone_images": 64, "num_epochs": 1}
    monkeypatch.setitem(backbone.CHAPTER_FIVE_SIZES, "cpu", tiny)
    cpu = torch.device("cpu")
    runs = train_then_load(backbone.chapter_five_backbone, 2, monkeypatch, tmp_path)
    for tagger, _ in runs:
        assert not any(p.requires_grad for p in tagger.encoder.parameters())
    assert backbone.chapter_five_backbone_name(2) == "ch05-backbone-cpu-seed2"
    with pytest.raises(TypeError, match="GridTagger"):
        backbone.train_backbone(nn.Linear(2, 2), torch.rand(2, 3, 16, 16), {}, 1, cpu)


def test_a_readers_fusion_class_replaces_the_named_one():
    from cmlib.fusion import LowRankBilinearFusion, low_rank_bilinear

    calls = []

    class Mine(LowRankBilinearFusion):
        def fuse(self, vision, language):
            calls.append(len(vision))
            return low_rank_bilinear(
                vision, language, self.vision_factor, self.language_factor, self.out
            )

    model = make_vqa_model("bilinear", 12, 3, C, text_dim=16, embed_dim=8, fusion_class=Mine)
    assert type(model.fusion) is Mine
    out = model(torch.randn(4, C, 4, 4), torch.randint(1, 12, (4, 5)), torch.full((4,), 5))
    assert out.shape == (4, 3) and calls == [4]
    with pytest.raises(TypeError, match="fusion_class must be a Fusion subclass"):
        make_vqa_model("bilinear", 12, 3, C, fusion_class=nn.Linear)
    with pytest.raises(TypeError, match="fusion_class must be a Fusion subclass"):
        make_vqa_model("bilinear", 12, 3, C, fusion_class=Mine(C, 16, 8))
