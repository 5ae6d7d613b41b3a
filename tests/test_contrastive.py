"""Chapter 09 part 1: the temperature's tools, the learnable loss and its clamp, the weight-decay
groups, and chapter 07 part 2's recipe with τ fixed or learned."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import chapter_solution

from cmlib import contrastive, relation_retrieval
from cmlib.exercises import check
from cmlib.retrieval import clip_loss
from cmlib.shapes_retrieval import embed_split, make_dual_encoder


def pairs(n=6, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = F.normalize(torch.randn(n, d, generator=g), dim=1)
    texts = F.normalize(images + 0.5 * torch.randn(n, d, generator=g), dim=1)
    return images, texts


def test_negative_weights_are_a_softmax_that_flattens_as_tau_grows():
    s = torch.tensor([0.8, 0.78, 0.3, -0.2])
    cold, warm = contrastive.negative_weights(s, 0.01), contrastive.negative_weights(s, 1.0)
    assert torch.allclose(cold.sum(), torch.tensor(1.0)) and torch.allclose(
        warm.sum(), torch.tensor(1.0)
    )
    assert cold[:2].sum() > 0.999  # all the push on the true image and its near twin
    assert warm.max() - warm.min() < 0.3  # nearly even
    with pytest.raises(ValueError, match="temperature"):
        contrastive.negative_weights(s, 0.0)
    with pytest.raises(TypeError):
        contrastive.negative_weights([0.1, 0.2], 0.1)


def test_learnable_loss_is_clips_inside_the_clamp_and_flat_outside_it():
    images, texts = pairs()
    inside = torch.tensor(2.0, requires_grad=True)
    loss = contrastive.learnable_clip_loss(images, texts, inside)
    assert math.isclose(loss.item(), clip_loss(images, texts, math.exp(2.0)).item(), rel_tol=1e-6)
    loss.backward()
    assert inside.grad.abs() > 0
    above = torch.tensor(6.0, requires_grad=True)
    loss = contrastive.learnable_clip_loss(images, texts, above)
    assert math.isclose(loss.item(), clip_loss(images, texts, 100.0).item(), rel_tol=1e-6)
    loss.backward()
    assert above.grad == 0  # past the clamp no gradient reaches the parameter
    below = contrastive.learnable_clip_loss(images, texts, torch.tensor(-1.0))
    assert math.isclose(below.item(), clip_loss(images, texts, 1.0).item(), rel_tol=1e-6)
    with pytest.raises(ValueError):
        contrastive.learnable_clip_loss(images, texts, torch.tensor([2.0]))
    with pytest.raises(ValueError, match="max_logit_scale"):
        contrastive.learnable_clip_loss(images, texts, torch.tensor(2.0), max_logit_scale=0.5)


def test_similarity_spread_reads_true_pairs_above_wrong_ones():
    images = torch.eye(4)
    texts = F.normalize(torch.eye(4) + 0.1, dim=1)
    spread = contrastive.similarity_spread(images, texts, torch.eye(4, dtype=torch.bool))
    assert spread["true mean"] > spread["wrong mean"] and spread["separation"] > 1
    assert spread["hardest wrong mean"] == pytest.approx(texts[0, 1].item())
    with pytest.raises(ValueError, match="a true and a wrong"):
        contrastive.similarity_spread(images, texts, torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError):
        contrastive.similarity_spread(images, texts, torch.eye(3, dtype=torch.bool))


def test_set_temperature_fixes_or_frees_tau_and_checks_its_range():
    model = make_dual_encoder()
    model.set_temperature(0.01, learnable=False)
    assert math.isclose(model.logit_scale.item(), 100.0, rel_tol=1e-5)
    assert not model.log_logit_scale.requires_grad
    model.set_temperature(0.5)
    assert math.isclose(model.logit_scale.item(), 2.0, rel_tol=1e-5)
    assert model.log_logit_scale.requires_grad
    for bad in (0.001, 2.0):
        with pytest.raises(ValueError, match="temperature"):
            model.set_temperature(bad)


@pytest.fixture(scope="module")
def tiny_split():
    return relation_retrieval.load_relation_split("train", 96, seed=3)


def test_the_recipe_keeps_a_fixed_tau_and_moves_a_learned_one(tiny_split):
    def run(learnable):
        return relation_retrieval.train_relation_model(
            tiny_split,
            torch.device("cpu"),
            step_fn=contrastive.temperature_step,
            num_epochs=1,
            batch_size=32,
            learnable_temperature=learnable,
            seed=1,
        )

    _, fixed = run(False)
    _, learned = run(True)
    assert len(fixed.steps["temperature"]) == 3 == len(learned.steps["temperature"])
    assert all(math.isclose(t, 0.07, rel_tol=1e-5) for t in fixed.steps["temperature"])
    assert not math.isclose(learned.steps["temperature"][-1], 0.07, rel_tol=1e-4)
    # the same seed gives the same run
    _, history = run(True)
    assert history.steps["loss"] == learned.steps["loss"]
    with pytest.raises(ValueError, match="batch_size"):
        relation_retrieval.train_relation_model(tiny_split, torch.device("cpu"), batch_size=500)


def test_temperature_decay_is_the_only_difference_it_makes(tiny_split):
    """With the temperature out of weight decay, only its optimiser group changes: a frozen
    temperature trains the same either way, and a learned one ends elsewhere."""

    def final_scale(learnable, decay):
        model, _ = relation_retrieval.train_relation_model(
            tiny_split,
            torch.device("cpu"),
            num_steps=4,
            batch_size=32,
            learnable_temperature=learnable,
            temperature_decay=decay,
            seed=2,
        )
        return model.log_logit_scale.item(), model.text_head.weight.detach().clone()

    frozen_decayed, frozen_kept = final_scale(False, True), final_scale(False, False)
    assert frozen_decayed[0] == frozen_kept[0] and torch.equal(frozen_decayed[1], frozen_kept[1])
    assert final_scale(True, True)[0] != final_scale(True, False)[0]
    with pytest.raises(TypeError):
        relation_retrieval.train_relation_model("train", torch.device("cpu"))


def test_the_chapters_solution_passes_exercise_9_1():
    solution = chapter_solution(
        "09_optimisation", "def learnable_clip_loss(", "9.1", "learnable_clip_loss"
    )
    assert check("9.1", solution, quiet=True, raise_on_failure=False)


def test_num_steps_counts_steps_across_epochs_and_dataset_is_rebuilt_each_epoch(tiny_split):
    built = []

    def dataset(model):
        built.append(model.training)
        return relation_retrieval.CaptionsWithSwaps(tiny_split)

    _, history = relation_retrieval.train_relation_model(
        tiny_split, torch.device("cpu"), num_steps=7, batch_size=32, dataset=dataset, seed=0
    )
    assert len(history.steps["loss"]) == 7
    assert len(built) == 3  # 3 steps an epoch: epochs 1, 2 and the start of 3
    with pytest.raises(TypeError, match="dataset"):
        relation_retrieval.train_relation_model(
            tiny_split, torch.device("cpu"), batch_size=32, dataset=3
        )


def test_mined_negatives_are_the_nearest_caption_of_another_scene(tiny_split):
    model = make_dual_encoder()
    negatives = contrastive.mine_hard_negatives(model, tiny_split, torch.device("cpu"), 40)
    assert negatives.shape == (len(tiny_split),)
    assert (tiny_split.scene_ids[negatives] != tiny_split.scene_ids).all()
    images, texts = embed_split(model, tiny_split, torch.device("cpu"))
    scores = images @ texts.T
    i = 5
    others = tiny_split.scene_ids != tiny_split.scene_ids[i]
    assert scores[i, negatives[i]] == scores[i][others].max()
    items = contrastive.CaptionsWithMinedNegatives(tiny_split, negatives)
    image, ids, length, negative_ids, negative_length = items[i]
    assert torch.equal(negative_ids, tiny_split.ids[negatives[i], 0])
    assert len(items) == len(tiny_split)
    with pytest.raises(ValueError, match="index"):
        contrastive.CaptionsWithMinedNegatives(tiny_split, negatives + len(tiny_split))
    with pytest.raises(ValueError):
        contrastive.CaptionsWithMinedNegatives(tiny_split, negatives[:3])


def test_hardest_negatives_skips_the_rows_own_scene_even_when_it_scores_highest():
    scores = torch.tensor([[0.9, -0.5, -0.2, 0.8], [-0.9, -0.3, -0.7, -0.1]])
    row_scenes = torch.tensor([0, 1])
    column_scenes = torch.tensor([0, 2, 2, 0])
    # row 0: its own scene holds the two highest; row 1: every score is negative
    assert contrastive.hardest_negatives(scores, row_scenes, column_scenes).tolist() == [2, 3]
    with pytest.raises(ValueError, match="another scene"):
        contrastive.hardest_negatives(scores, torch.tensor([0, 0]), torch.zeros(4, dtype=int))
    with pytest.raises(ValueError):
        contrastive.hardest_negatives(scores, row_scenes, column_scenes[:3])


def test_negative_kinds_names_the_mirror_one_change_and_the_rest(tiny_split):
    keys = [  # as scene_key writes them
        "circle,red,large,left of,square,blue,large",
        "square,blue,large,left of,circle,red,large",
        "circle,blue,large,left of,square,red,large",
        "circle,green,large,left of,square,blue,large",
        "triangle,green,large,above,square,blue,large",
    ]
    captions = [  # their canonical captions
        "a large red circle to the left of a large blue square",
        "a large blue square to the left of a large red circle",
        "a large blue circle to the left of a large red square",
        "a large green circle to the left of a large blue square",
        "a large green triangle above a large blue square",
    ]
    split = dataclasses.replace(
        tiny_split,
        images=tiny_split.images[:5],
        scene_ids=torch.arange(5),
        scene_keys=[tuple(key.split(",")) for key in keys],
        captions=[[caption] for caption in captions],
    )
    # scenes 1 to 4 against scene 0 are one of each kind, in order; scene 0's negative is, in
    # turn, each of them, which makes its kind's share 2 in 5
    for j, kind in enumerate(contrastive.NEGATIVE_KINDS, start=1):
        shares = contrastive.negative_kinds(split, torch.tensor([j, 0, 0, 0, 0]))
        assert shares == {k: pytest.approx(0.4 if k == kind else 0.2) for k in shares}, kind
    assert relation_retrieval.load_relation_split("train", 8).scene_keys[0][3] in (
        "left of",
        "above",
    )  # scene_key's normal form: "right of" and "below" are turned round
    with pytest.raises(ValueError, match="own scene"):
        contrastive.negative_kinds(split, torch.arange(5))
    with pytest.raises(ValueError, match="index"):
        contrastive.negative_kinds(split, torch.tensor([9, 0, 0, 0, 0]))


def test_the_chapters_solution_passes_exercise_9_4():
    solution = chapter_solution(
        "09_optimisation_negatives", "def hardest_negatives(", "9.4", "hardest_negatives"
    )
    assert check("9.4", solution, quiet=True, raise_on_failure=False)
