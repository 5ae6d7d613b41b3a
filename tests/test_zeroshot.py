"""Tests for cmlib.zeroshot: prompt templates, the zero-shot classifier, template ensembles."""

from __future__ import annotations

import math

import pytest
import torch

from cmlib.zeroshot import (
    apply_templates,
    ensemble_embeddings,
    template_ranks,
    template_table,
    validated_template_choice,
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


# ---------------------------------------------------------------- choosing a template honestly
def test_template_ranks_rank_each_image_own_class():
    vectors = {
        "{}": {"cat": [1.0, 0.0], "dog": [0.0, 1.0]},
        "a {}": {"cat": [0.0, 1.0], "dog": [1.0, 0.0]},
    }
    encode = lambda texts: torch.tensor(  # noqa: E731
        [vectors["a {}" if t.startswith("a ") else "{}"][t.split()[-1]] for t in texts]
    )
    images = torch.tensor([[1.0, 0.1], [0.1, 1.0]])
    names, ranks = template_ranks(
        images, torch.tensor([0, 1]), encode, ["cat", "dog"], ["{}", "a {}"]
    )
    assert names == ["{}", "a {}", "ensemble of all"]
    # "{}" puts both images first, "a {}" swaps the classes, so both images rank second there
    assert ranks[:2].tolist() == [[1, 1], [2, 2]]
    with pytest.raises(TypeError, match="labels"):
        template_ranks(images, [0, 1], encode, ["cat", "dog"], ["{}"])
    with pytest.raises(ValueError, match="labels"):
        template_ranks(images, torch.tensor([0]), encode, ["cat", "dog"], ["{}"])


def test_validated_choice_scores_the_chosen_template_on_held_out_images_only():
    # Template 0 is right on the first half of the images only, template 1 on the second half;
    # whichever wins on a validation half is then wrong on most of the test half. Choosing on the
    # test images would score 1.0; the honest choice scores far below the ensemble.
    n = 40
    ranks = torch.ones(3, n, dtype=torch.long)
    ranks[0, n // 2 :] = 2
    ranks[1, : n // 2] = 2
    result = validated_template_choice(ranks, 200, torch.Generator().manual_seed(0))
    assert result["ensemble_top1"] == 1.0
    assert 0.35 < result["chosen_top1"] < 0.65
    assert sum(result["choices"]) == 200 and min(result["choices"]) > 50
    # a template that is best everywhere is always chosen and keeps its accuracy
    ranks[1] = 1
    result = validated_template_choice(ranks, 10, torch.Generator().manual_seed(0))
    assert result["choices"] == [0, 10] and result["chosen_top1"] == 1.0


def test_validated_choice_checks_its_input():
    ranks = torch.ones(3, 10, dtype=torch.long)
    g = torch.Generator()
    with pytest.raises(ValueError, match="num_splits"):
        validated_template_choice(ranks, 0, g)
    with pytest.raises(TypeError, match="generator"):
        validated_template_choice(ranks, 5, 0)
    with pytest.raises(ValueError, match="ensemble"):
        validated_template_choice(torch.ones(1, 10), 5, g)
    with pytest.raises(ValueError):
        validated_template_choice(torch.ones(10), 5, g)
