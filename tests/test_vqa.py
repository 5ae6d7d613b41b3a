"""Tests for cmlib.data.shapes.vqa (VQA tensors, cell labels, majority rates) and partial views."""

from __future__ import annotations

import pytest
import torch

from cmlib.data.shapes import ALL_PAIRS, COLORS, ShapesWorld
from cmlib.data.shapes.tasks import load_partial_views
from cmlib.data.shapes.text import ANSWERS, QUESTION_KINDS
from cmlib.data.shapes.vqa import BACKGROUND, cell_labels, load_vqa, majority_rates


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))


def test_load_vqa_shapes_and_five_questions_per_image():
    data = load_vqa("val", num_images=12)
    assert data.images.shape == (12, 3, 32, 32)
    assert len(data) == 60
    assert data.ids.shape[0] == 60 and data.ids.shape[1] == int(data.lengths.max())
    assert torch.equal(data.image_index, torch.arange(12).repeat_interleave(5))
    assert torch.equal(data.kinds, torch.arange(5).repeat(12))
    assert int(data.answers.max()) < len(ANSWERS) and int(data.answers.min()) >= 0
    assert data.cells.shape == (12, 4, 4)


def test_load_vqa_matches_the_generator_and_is_cached(tmp_path):
    data = load_vqa("val", num_images=6)
    qa = ShapesWorld("val", size=6).questions(2)
    for k in range(5):
        q = 2 * 5 + k
        assert data.question(q) == qa[k].question.replace(" ?", "")
        assert data.answer_text(q) == qa[k].answer and data.kind_text(q) == qa[k].kind
    assert any(p.name.startswith("vqa-v1-val-6") for p in tmp_path.iterdir())
    again = load_vqa("val", num_images=6)
    assert torch.equal(again.ids, data.ids) and torch.equal(again.answers, data.answers)


def test_corrupt_question_cache_is_rebuilt(tmp_path):
    data = load_vqa("val", num_images=4)
    for path in tmp_path.glob("vqa-v1-*"):
        path.write_bytes(b"not a cache file")
    with pytest.warns(UserWarning, match="rebuilding"):
        again = load_vqa("val", num_images=4)
    assert torch.equal(again.ids, data.ids)


def test_load_vqa_rejects_bad_input():
    with pytest.raises(ValueError, match="num_images"):
        load_vqa("val", num_images=0)
    with pytest.raises(ValueError, match="split"):
        load_vqa("nope", num_images=2)


def test_cell_labels_mark_objects_and_background():
    dataset = ShapesWorld("val", size=8)
    cells = cell_labels(dataset, 4)
    assert cells.shape == (8, 4, 4)
    for i in range(8):
        present = {ALL_PAIRS.index((o.color, o.shape)) for o in dataset.scene(i).objects}
        labels = set(cells[i].unique().tolist())
        assert labels - {BACKGROUND} == present
        assert BACKGROUND in labels
    with pytest.raises(ValueError, match="grid_size"):
        cell_labels(dataset, 5)


def test_majority_rates():
    answers = torch.tensor([0, 0, 1, 2, 2, 2])
    kinds = torch.tensor([0, 0, 0, 1, 1, 1])
    rates = majority_rates(answers, kinds)
    assert rates["overall"] == pytest.approx(0.5)
    assert rates["per_kind"] == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="same shape"):
        majority_rates(answers, kinds[:3])
    assert len(QUESTION_KINDS) == 5


def test_partial_views_drop_words_and_blur():
    views = load_partial_views("val", num_images=10, drop=1.0, seed=0)
    assert views.images.shape == views.clean_images.shape == (10, 3, 32, 32)
    assert not any(c in caption.split() for caption in views.captions for c in COLORS)
    assert all("object" in caption for caption in views.captions)
    full = load_partial_views("val", num_images=10, drop=0.0, block=1, noise=0.0, seed=0)
    assert torch.allclose(full.images, full.clean_images)
    for caption, label in zip(full.captions, full.labels):
        colour, shape = ALL_PAIRS[int(label)]
        assert colour in caption and shape in caption
    assert views.ids.shape[0] == 10 and views.full_ids.shape[0] == 10
    with pytest.raises(ValueError, match="drop"):
        load_partial_views("val", num_images=2, drop=1.5)
    with pytest.raises(ValueError, match="block"):
        load_partial_views("val", num_images=2, block=5)
