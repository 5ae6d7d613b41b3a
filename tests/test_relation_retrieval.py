"""Chapter 07 part 2: swapped captions, scene keys, the hard-negative loss, the swap test."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cmlib import relation_retrieval as rr
from cmlib.data.shapes.world import Obj, Scene
from cmlib.retrieval import clip_loss
from cmlib.shapes_retrieval import make_dual_encoder
from cmlib.train import fit

RED_CIRCLE = Obj("circle", "red", "large", 0.2, 0.5, 0.15)
BLUE_SQUARE = Obj("square", "blue", "small", 0.8, 0.5, 0.1)


def test_swapped_caption_exchanges_the_objects_and_keeps_the_words():
    scene = Scene((RED_CIRCLE, BLUE_SQUARE), "photo", relation="left of")
    assert rr.swapped_caption(scene) == "a small blue square to the left of a large red circle"
    original = "a large red circle to the left of a small blue square"
    assert sorted(rr.swapped_caption(scene).split()) == sorted(original.split())
    with pytest.raises(ValueError, match="two-object"):
        rr.swapped_caption(Scene((RED_CIRCLE,), "photo", position="on the left"))


def test_scene_key_is_the_same_for_both_ways_of_saying_a_scene():
    left = Scene((RED_CIRCLE, BLUE_SQUARE), "photo", relation="left of")
    right = Scene((BLUE_SQUARE, RED_CIRCLE), "sketch", relation="right of")
    mirrored = Scene((BLUE_SQUARE, RED_CIRCLE), "photo", relation="left of")
    assert rr.scene_key(left) == rr.scene_key(right)
    assert rr.scene_key(left) != rr.scene_key(mirrored)


def test_hard_negative_loss_adds_the_negatives_to_the_image_side_only():
    g = torch.Generator().manual_seed(0)
    images = F.normalize(torch.randn(4, 8, generator=g), dim=1)
    texts = F.normalize(images + 0.3 * torch.randn(4, 8, generator=g), dim=1)
    negatives = F.normalize(torch.randn(4, 8, generator=g), dim=1)
    scale = 10.0
    own = scale * (images * texts).sum(1)
    # image i: -log softmax over the 4 captions and the 4 negatives; caption i: CLIP's term
    image_side = (torch.logsumexp(scale * images @ torch.cat([texts, negatives]).T, 1) - own).mean()
    text_side = (torch.logsumexp(scale * texts @ images.T, 1) - own).mean()
    expected = (image_side + text_side) / 2
    got = rr.hard_negative_clip_loss(images, texts, negatives, scale)
    assert math.isclose(got.item(), expected.item(), rel_tol=1e-5)
    # more than CLIP's loss, and a negative identical to the true caption costs more still
    assert got > clip_loss(images, texts, scale)
    assert rr.hard_negative_clip_loss(images, texts, texts, scale) > got
    with pytest.raises(ValueError):
        rr.hard_negative_clip_loss(images, texts, negatives[:3], scale)


def test_swap_accuracy_counts_only_scenes_a_swap_changes():
    images = torch.eye(3)
    own = torch.eye(3)
    swapped = torch.tensor([[0.0, 1, 0], [1, 0, 0], [1, 0, 0]])
    swapped[2] = images[2]  # a tie is not a win
    symmetric = torch.tensor([False, False, False])
    assert rr.swap_accuracy(images, own, swapped, symmetric) == pytest.approx(2 / 3)
    assert rr.swap_accuracy(images, own, swapped, torch.tensor([False, False, True])) == 1.0
    with pytest.raises(ValueError, match="symmetric"):
        rr.swap_accuracy(images, own, swapped, torch.tensor([True, True, True]))


def test_a_few_hard_negative_steps_train_and_the_metrics_are_in_range():
    split = rr.load_relation_split("train", 64, image_size=16, seed=0)
    assert split.swapped_ids.shape[0] == 64 and split.scene_ids.shape == (64,)
    assert not split.symmetric.all()
    torch.manual_seed(0)
    model = make_dual_encoder(image_size=16, cnn_width=8, embed_dim=16)
    loader = torch.utils.data.DataLoader(rr.CaptionsWithSwaps(split), batch_size=16, shuffle=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = fit(
        model,
        loader,
        optimizer,
        2,
        torch.device("cpu"),
        step_fn=rr.hard_negative_step,
        progress=False,
    )
    assert math.isfinite(history.last["train_loss"])
    metrics = rr.relation_metrics(model, split, torch.device("cpu"))
    assert 0.0 <= metrics["swap accuracy"] <= 1.0 and 0.0 <= metrics["t2i R@1"] <= 1.0
    with pytest.raises(TypeError, match="RelationSplit"):
        rr.CaptionsWithSwaps(object())


def test_the_readers_loss_trains_the_layout_model_as_cmlibs_does():
    from functools import partial

    from conftest import chapter_solution

    from cmlib.exercises import check

    solution = chapter_solution(
        "07_retrieval_relations", "def hard_negative_loss(", "7.7", "hard_negative_loss"
    )
    assert check("7.7", solution, quiet=True, raise_on_failure=False)
    split = rr.load_relation_split("train", 32, image_size=16, seed=0)
    runs = []
    for step in (rr.hard_negative_step, partial(rr.hard_negative_step, loss_fn=solution)):
        torch.manual_seed(0)
        model = make_dual_encoder(image_size=16, cnn_width=8, embed_dim=16, pool="flatten")
        loader = torch.utils.data.DataLoader(rr.CaptionsWithSwaps(split), batch_size=8)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        fit(model, loader, optimizer, 1, torch.device("cpu"), step_fn=step, progress=False)
        runs.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*runs))
