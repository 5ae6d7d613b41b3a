"""Exercise 10.1, one rank's share of CLIP's loss over the gathered batch: every correct way of
writing it passes (issue #30: slicing this rank's rows out of the (N·B, N·B) logits was
rejected), each listed mistake fails, and the mean of the N ranks' losses is CLIP's loss on the
whole batch, value and gradients (what DDP's gradient average computes)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import chapter_solution

from cmlib.exercises import Exercise, check, get
from cmlib.exercises.ch10 import RANK_LOSS_MISTAKES, rank_clip_loss
from cmlib.retrieval import clip_loss


@pytest.fixture(autouse=True)
def _no_raising(monkeypatch):
    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)


def local_rows_of_the_full_matrix(all_images, all_texts, rank, world_size, logit_scale):
    """The whole (N·B, N·B) similarity matrix, then this rank's rows of it and of its transpose."""
    batch = len(all_images) // world_size
    mine = slice(rank * batch, (rank + 1) * batch)
    logits = logit_scale * all_images @ all_texts.T
    labels = torch.arange(rank * batch, (rank + 1) * batch)
    return (F.cross_entropy(logits[mine], labels) + F.cross_entropy(logits.T[mine], labels)) / 2


def rows_by_index_and_summed(all_images, all_texts, rank, world_size, logit_scale):
    """Rows picked by index, the two cross-entropies summed over rows and divided by 2B."""
    batch = len(all_images) // world_size
    rows = torch.arange(batch) + rank * batch
    per_image = F.cross_entropy(logit_scale * all_images[rows] @ all_texts.T, rows, reduction="sum")
    per_text = F.cross_entropy(logit_scale * all_texts[rows] @ all_images.T, rows, reduction="sum")
    return (per_image + per_text) / (2 * batch)


def log_softmax_by_hand(all_images, all_texts, rank, world_size, logit_scale):
    """The full matrix, both directions' log-softmax, then the local rows' positives."""
    batch = len(all_images) // world_size
    logits = logit_scale * all_images @ all_texts.T
    rows = torch.arange(batch) + rank * batch
    by_image = logits.log_softmax(dim=1)[rows, rows]
    by_text = logits.log_softmax(dim=0)[rows, rows]
    return -(by_image.mean() + by_text.mean()) / 2


def notebook_solution():
    """The chapter's own ``rank_clip_loss``, executed from its source as written there."""
    return chapter_solution("10_scaling_out", "def rank_clip_loss(", "10.1", "rank_clip_loss")


@pytest.mark.parametrize(
    "answer",
    [
        rank_clip_loss,
        local_rows_of_the_full_matrix,
        rows_by_index_and_summed,
        log_softmax_by_hand,
    ],
    ids=lambda f: f.__name__,
)
def test_every_correct_formulation_passes(answer):
    assert check("10.1", answer, quiet=True)


def test_the_chapters_solution_passes():
    assert check("10.1", notebook_solution(), quiet=True)


@pytest.mark.parametrize("mistake", sorted(RANK_LOSS_MISTAKES))
def test_each_mistake_fails(mistake):
    assert not check("10.1", RANK_LOSS_MISTAKES[mistake], quiet=True)


def test_the_listed_mistakes_are_the_registered_wrong_answers():
    assert tuple(get("10.1").wrong_answers) == tuple(RANK_LOSS_MISTAKES.values())


def test_detached_columns_have_the_right_value_and_are_caught_by_their_gradient(capsys):
    detached = RANK_LOSS_MISTAKES["the gathered columns detached"]
    values_only = Exercise(**{**vars(get("10.1")), "id": "x.9", "gradients": False})
    inputs = values_only.make_inputs(np.random.default_rng(0))
    assert torch.allclose(detached(*inputs), rank_clip_loss(*inputs))
    assert check("10.1", detached) is False
    assert "gradient with respect to all_" in capsys.readouterr().out


def test_a_stub_fails():
    def stub(all_images, all_texts, rank, world_size, logit_scale):
        raise NotImplementedError("Exercise 10.1")

    assert not check("10.1", stub, quiet=True)


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_the_ranks_mean_is_clip_loss_on_the_whole_batch(world_size):
    """Each rank's loss is the mean over its own rows: the mean of the N ranks' losses is CLIP's
    loss on all N·B pairs, and so is its gradient (what DDP averages)."""
    gen = torch.Generator().manual_seed(world_size)
    images = F.normalize(torch.randn(world_size * 3, 8, generator=gen, dtype=torch.float64), dim=1)
    texts = F.normalize(images + 0.5 * torch.randn(images.shape, generator=gen).double(), dim=1)
    grads = []
    for loss_of in (
        lambda i, t: (
            sum(rank_clip_loss(i, t, r, world_size, 10.0) for r in range(world_size)) / world_size
        ),
        lambda i, t: clip_loss(i, t, 10.0),
    ):
        leaves = images.clone().requires_grad_(), texts.clone().requires_grad_()
        loss = loss_of(*leaves)
        grads.append((loss.detach(), *torch.autograd.grad(loss, leaves)))
    for ours, whole in zip(*grads):
        torch.testing.assert_close(ours, whole)
