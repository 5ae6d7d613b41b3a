"""Tests for cmlib.retrieval: CLIP's loss, the dual encoder, metrics and cross-modal search."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cmlib import retrieval
from cmlib.text import Vocab


def unit(n, d, seed=0):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


# ---------------------------------------------------------------- loss
def test_clip_loss_matches_the_definition_and_is_symmetric():
    img, txt = unit(6, 8, 0), unit(6, 8, 1)
    logits = 10.0 * img @ txt.T
    labels = torch.arange(6)
    expected = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    assert torch.allclose(retrieval.clip_loss(img, txt, 10.0), expected)
    assert torch.allclose(retrieval.clip_loss(img, txt, 10.0), retrieval.clip_loss(txt, img, 10.0))


def test_clip_loss_is_small_for_aligned_pairs_and_large_for_shuffled():
    img = unit(16, 32)
    aligned = retrieval.clip_loss(img, img, 100.0)
    shuffled = retrieval.clip_loss(img, img[torch.randperm(16)], 100.0)
    assert aligned < 0.05 < math.log(16) < shuffled


@pytest.mark.parametrize(
    "bad",
    [
        lambda: retrieval.clip_loss(unit(4, 8), unit(5, 8), 10.0),
        lambda: retrieval.clip_loss(unit(4, 8), unit(4, 6), 10.0),
        lambda: retrieval.clip_loss(unit(1, 8), unit(1, 8), 10.0),
        lambda: retrieval.clip_loss(unit(4, 8)[0], unit(4, 8)[0], 10.0),
    ],
)
def test_clip_loss_rejects_bad_shapes(bad):
    with pytest.raises(ValueError):
        bad()


# ---------------------------------------------------------------- model
def test_dual_encoder_shapes_scale_and_clamp():
    model = retrieval.DualEncoder(nn.Identity(), nn.Identity(), 10, 6, embed_dim=4)
    img, txt, scale = model(torch.randn(3, 10), torch.randn(3, 6))
    assert img.shape == txt.shape == (3, 4)
    assert torch.allclose(img.norm(dim=1), torch.ones(3))
    assert scale.item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        model.log_logit_scale.fill_(50.0)
    assert model.logit_scale.item() == pytest.approx(100.0, rel=1e-5)
    with pytest.raises(ValueError, match="identity"):
        retrieval.DualEncoder(
            nn.Identity(), nn.Identity(), 10, 6, embed_dim=4, text_head="identity"
        )
    with pytest.raises(ValueError, match="kind"):
        retrieval.projection_head(4, 4, "conv")


def test_a_few_training_steps_lower_the_loss():
    torch.manual_seed(0)
    latent = torch.randn(64, 8)
    images, texts = latent @ torch.randn(8, 20), latent @ torch.randn(8, 12)
    model = retrieval.DualEncoder(nn.Identity(), nn.Identity(), 20, 12, embed_dim=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = retrieval.contrastive_step(model, (images, texts)).item()
    for _ in range(30):
        loss = retrieval.contrastive_step(model, (images, texts))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first


def test_the_readers_info_nce_trains_the_temperature_as_clip_loss_does():
    from functools import partial

    from conftest import chapter_solution

    from cmlib.exercises import check

    solution = chapter_solution("07_retrieval", "def info_nce(", "7.1", "info_nce")
    assert check("7.1", solution, quiet=True, raise_on_failure=False)
    runs = []
    for step in (retrieval.contrastive_step, partial(retrieval.contrastive_step, loss_fn=solution)):
        torch.manual_seed(0)
        latent = torch.randn(32, 8)
        images, texts = latent @ torch.randn(8, 20), latent @ torch.randn(8, 12)
        model = retrieval.DualEncoder(nn.Identity(), nn.Identity(), 20, 12, embed_dim=16)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(5):
            loss = step(model, (images, texts))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        runs.append([p.detach().clone() for p in model.parameters()])
        # the temperature learned through the reader's loss too
        assert model.log_logit_scale.item() != pytest.approx(math.log(1 / 0.07), abs=1e-4)
    assert all(torch.equal(a, b) for a, b in zip(*runs))


def test_captioned_images_and_caption_tensors():
    vocab = Vocab.build(["a red circle", "a big blue square"])
    ids, lengths = retrieval.caption_tensors(
        vocab, [["a red circle", "red circle"], ["a big blue square", "blue square"]]
    )
    assert ids.shape[:2] == (2, 2) and lengths.tolist() == [[3, 2], [4, 2]]
    data = retrieval.CaptionedImages(torch.zeros(2, 3, 8, 8), ids, lengths)
    image, caption_ids, length = data[1]
    assert image.shape == (3, 8, 8) and caption_ids.shape == (ids.shape[2],) and length in (2, 4)
    features = retrieval.CaptionedImages(torch.zeros(2, 5), torch.zeros(2, 3, 7))
    assert [t.shape for t in features[0]] == [(5,), (7,)]
    with pytest.raises(ValueError):
        retrieval.caption_tensors(vocab, [["a"], ["a", "b"]])
    with pytest.raises(ValueError):
        retrieval.CaptionedImages(torch.zeros(3, 5), torch.zeros(2, 3, 7))


# ---------------------------------------------------------------- metrics
def test_ranks_recall_and_median_with_attribute_relevance():
    query = {"color": torch.tensor([0, 1]), "shape": torch.tensor([0, 0])}
    gallery = {"color": torch.tensor([0, 1, 0, 1]), "shape": torch.tensor([1, 0, 0, 0])}
    relevant = retrieval.attribute_relevance(query, gallery, ("color", "shape"))
    assert relevant.tolist() == [[False, False, True, False], [False, True, False, True]]
    scores = torch.tensor(
        [
            [0.9, 0.8, 0.7, 0.1],  # first relevant (index 2) ranked 3rd
            [0.1, 0.2, 0.3, 0.9],
        ]
    )  # index 3 relevant and best → rank 1
    ranks = retrieval.first_relevant_rank(scores, relevant)
    assert ranks.tolist() == [3, 1]
    assert retrieval.recall_at_k(ranks, 1) == 0.5
    assert retrieval.recall_at_k(ranks, 3) == 1.0
    assert retrieval.median_rank(ranks) == 1.0  # torch's lower median of [1, 3]
    metrics = retrieval.retrieval_metrics(scores, relevant, ks=(1, 3))
    assert metrics == {"R@1": 0.5, "R@3": 1.0, "median_rank": 1.0}


def test_exact_pair_vs_attribute_relevance():
    """Duplicates cap exact-pair R@1: a perfect 'meaning' model still misses the exact one."""
    attrs = {"color": torch.tensor([0, 0, 1, 1])}
    relevant = retrieval.attribute_relevance(attrs, attrs, ("color",))
    scores = relevant.float() + torch.tensor([0.0, 0.1, 0.0, 0.1])  # prefers the twin each time
    exact = retrieval.retrieval_metrics(scores, torch.eye(4, dtype=torch.bool), ks=(1,))
    by_attribute = retrieval.retrieval_metrics(scores, relevant, ks=(1,))
    assert by_attribute["R@1"] == 1.0 and exact["R@1"] == 0.5


def test_chance_recall():
    relevant = torch.eye(10, dtype=torch.bool)
    assert retrieval.chance_recall_at_k(relevant, 1) == pytest.approx(0.1)
    assert retrieval.chance_recall_at_k(relevant, 3) == pytest.approx(0.3)
    two = torch.zeros(1, 4, dtype=torch.bool)
    two[0, :2] = True
    assert retrieval.chance_recall_at_k(two, 2) == pytest.approx(1 - (2 / 4) * (1 / 3))


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="no relevant"):
        retrieval.first_relevant_rank(
            torch.zeros(2, 3), torch.tensor([[True, False, False], [False, False, False]])
        )
    with pytest.raises(ValueError):
        retrieval.first_relevant_rank(torch.zeros(2, 3), torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError):
        retrieval.recall_at_k(torch.tensor([1, 2]), 0)
    with pytest.raises(ValueError):
        retrieval.attribute_relevance({"a": torch.zeros(2)}, {"b": torch.zeros(2)}, ("a",))


def test_cross_modal_search_and_empty_query():
    texts = ["red", "green", "blue"]
    table = {t: unit(3, 8, 5)[i] for i, t in enumerate(texts)}
    encode = lambda batch: torch.stack([table[t] for t in batch])  # noqa: E731
    search = retrieval.CrossModalSearch(
        encode, torch.stack([table[t] for t in texts]), encode(texts), texts
    )
    assert search.text_to_image("green", k=1)[0][0] == 1
    assert search.image_to_text(table["blue"], k=1)[0][0] == "blue"
    for empty in ("", "   "):
        with pytest.raises(ValueError, match="empty"):
            search.text_to_image(empty)
    with pytest.raises(ValueError):
        retrieval.CrossModalSearch(encode, unit(3, 8), encode(texts), None)
