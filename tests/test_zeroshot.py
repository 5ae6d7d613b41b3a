"""Tests for cmlib.zeroshot: prompt templates, the zero-shot classifier, template ensembles."""

from __future__ import annotations

import math

import pytest
import torch

from cmlib.zeroshot import (
    apply_templates,
    ensemble_embeddings,
    template_table,
    zero_shot_classifier,
)


# ---------------------------------------------------------------- prompts
def test_templates_and_zero_shot_classifier():
    assert apply_templates(["cat", "dog"], ["{}", "a {}"]) == ["cat", "a cat", "dog", "a dog"]
    with pytest.raises(ValueError, match="slot"):
        apply_templates(["cat"], ["a photo"])
    with pytest.raises(TypeError):
        apply_templates("cat", ["{}"])
    vectors = {
        "cat": torch.tensor([1.0, 0.0]),
        "a cat": torch.tensor([0.0, 2.0]),
        "dog": torch.tensor([-1.0, 0.0]),
        "a dog": torch.tensor([0.0, -3.0]),
    }
    encode = lambda texts: torch.stack([vectors[t] for t in texts])  # noqa: E731
    single = zero_shot_classifier(encode, ["cat", "dog"], ["{}"])
    assert torch.allclose(single, torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    both = zero_shot_classifier(encode, ["cat", "dog"], ["{}", "a {}"])
    s = 1 / math.sqrt(2)
    assert torch.allclose(both, torch.tensor([[s, s], [-s, -s]]), atol=1e-6)
    per_template = torch.stack([encode(["cat", "dog"]), encode(["a cat", "a dog"])])
    assert torch.allclose(ensemble_embeddings(per_template), both, atol=1e-6)
    rows = template_table(
        torch.tensor([[1.0, 0.2], [-1.0, 0.1]]),
        torch.tensor([0, 1]),
        encode,
        ["cat", "dog"],
        ["{}", "a {}"],
        ks=(1,),
    )
    assert [r["template"] for r in rows] == ["{}", "a {}", "ensemble of all"]
    assert rows[0]["top1"] == 1.0
