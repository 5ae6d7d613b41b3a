"""Tests for cmlib.data.shapes.tasks: chapter 04's photos and judge data (the other tasks are
tested beside the chapters' models: tests/test_sequence.py, tests/test_vqa.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cmlib.data.shapes.prompt_text import prompt_sampler
from cmlib.data.shapes.tasks import judge_training_set, one_object_photos


def test_chapter_data_helpers():
    x, a = one_object_photos("heldout", 12, image_size=16, seed=3)
    assert x.shape == (12, 3, 16, 16) and (a["num_objects"] == 1).all()
    xt, at = one_object_photos("train", 8, image_size=16, seed=3)
    xj, aj = judge_training_set(xt, at, x, a, num_kept=5)
    assert (
        len(xj) == 8 + 7
        and torch.equal(xj[8:], x[5:])
        and torch.equal(aj["shape"][8:], a["shape"][5:])
    )
    with pytest.raises(ValueError, match="num_kept"):
        judge_training_set(xt, at, x, a, num_kept=12)
    sampler = prompt_sampler(at, np.random.default_rng(0))
    first, second = sampler(torch.arange(8)), sampler(torch.arange(8))
    assert len(first) == 8 and first != second  # fresh wording at every call
    again = prompt_sampler(at, np.random.default_rng(0))(torch.arange(8))
    assert again == first
