"""Exercise 4.4, the negative ELBO, and the seam through which chapter 04 part 2 trains its digit
CVAE with the reader's loss: the check compares values and gradients, rejects each common
mistake (one of them only by its gradient), and training with the reference loss is training
with cmlib's, step for step."""

import numpy as np
import pytest
import torch
from conftest import chapter_solution

from cmlib.exercises import Exercise, check, get
from cmlib.exercises.ch04 import ELBO_MISTAKES, negative_elbo
from cmlib.generation import prompts
from cmlib.generation.cvae import CVAE, train_cvae
from cmlib.text import Vocab


@pytest.fixture(autouse=True)
def _no_raising(monkeypatch):
    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)


def notebook_solution():
    """The chapter's own ``negative_elbo``, executed from its source as written there."""
    return chapter_solution(
        "04_prompt_generation_digits", "def negative_elbo(", "4.4", "negative_elbo"
    )


def test_the_check_accepts_the_reference_and_the_chapters_solution():
    assert check("4.4", negative_elbo, quiet=True)
    assert check("4.4", notebook_solution(), quiet=True)


@pytest.mark.parametrize("mistake", sorted(ELBO_MISTAKES))
def test_the_check_rejects_each_mistake(mistake):
    assert not check("4.4", ELBO_MISTAKES[mistake], quiet=True)


def test_a_detached_kl_has_the_right_value_and_is_caught_by_its_gradient(capsys):
    detached = ELBO_MISTAKES["the KL detached"]
    values_only = Exercise(**{**vars(get("4.4")), "id": "x.1", "gradients": False})
    inputs = values_only.make_inputs(np.random.default_rng(0))
    for got, want in zip(detached(*inputs), negative_elbo(*inputs)):
        assert torch.allclose(got, want)
    assert check("4.4", detached) is False
    assert "gradient with respect to mu" in capsys.readouterr().out


def test_a_stub_and_a_loss_with_no_gradient_fail_with_a_message(capsys):
    def stub(x, x_logits, mu, logvar, beta):
        raise NotImplementedError("Exercise 4.4")

    def numbers_only(x, x_logits, mu, logvar, beta):
        return tuple(t.detach() for t in negative_elbo(x, x_logits, mu, logvar, beta))

    assert not check("4.4", stub)
    assert "not attempted yet" in capsys.readouterr().out
    assert not check("4.4", numbers_only)
    assert "no gradient flows back" in capsys.readouterr().out


def tiny_run(loss_fn=None, **kwargs):
    torch.manual_seed(0)
    vocab = Vocab(["draw", "the", "digit", "one", "two"])
    text = prompts.BagOfWordsEncoder(vocab, 4)
    model = CVAE(4, latent_dim=2, image_size=8, in_channels=1, width=8, **kwargs)
    images = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    words = ["draw the digit one", "draw the digit two"]
    hist = train_cvae(
        model,
        text,
        images,
        lambda idx: [words[int(i) % 2] for i in idx],
        2,
        torch.device("cpu"),
        batch_size=4,
        progress=False,
        loss_fn=loss_fn,
    )
    return model, hist


def test_training_with_the_readers_loss_is_training_with_cmlibs():
    model_a, hist_a = tiny_run()
    model_b, hist_b = tiny_run(notebook_solution())
    assert hist_a.steps["loss"] == hist_b.steps["loss"]
    assert all(torch.equal(a, b) for a, b in zip(model_a.parameters(), model_b.parameters()))


def test_a_loss_fn_must_be_a_function_for_the_textbook_prior():
    with pytest.raises(TypeError, match="loss_fn must be a function"):
        tiny_run("elbo")
    with pytest.raises(ValueError, match="learned_prior=True"):
        tiny_run(negative_elbo, learned_prior=True)


def test_values_returned_for_logging_may_be_detached_but_not_turned_into_numbers(capsys):
    def logged(x, x_logits, mu, logvar, beta):
        loss, recon, kl = negative_elbo(x, x_logits, mu, logvar, beta)
        return loss, recon.detach(), kl.detach()  # train_cvae backpropagates the loss only

    def numbers(x, x_logits, mu, logvar, beta):
        loss, recon, kl = negative_elbo(x, x_logits, mu, logvar, beta)
        return loss, recon.item(), kl.item()

    assert check("4.4", logged, quiet=True)
    assert not check("4.4", numbers)
    assert "no .item()" in capsys.readouterr().out
