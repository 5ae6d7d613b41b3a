"""Exercise 3.5, gradient reversal, and the seam through which chapter 03 part 2's adversarial
aligner trains with the reader's layer: the check tells the layer from the identity by its
gradient alone, rejects each common mistake, and the reader's layer trains the aligner exactly as
cmlib's does, while the identity leaves the two modalities apart."""

import re

import pytest
import torch
from conftest import chapter_solution
from torch import nn

from cmlib.alignment import (
    AdversarialAligner,
    grad_reverse,
    modality_probe,
    train_adversarial_alignment,
)
from cmlib.exercises import check
from cmlib.exercises.ch03 import REVERSAL_MISTAKES


@pytest.fixture(autouse=True)
def _no_raising(monkeypatch):
    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)


def _stub_backward(code: str) -> str:
    """What the student release holds in ``backward``: nbgrader's stub."""
    return re.sub(
        r"(def backward.*?)### BEGIN SOLUTION.*?### END SOLUTION",
        r"\1raise NotImplementedError()",
        code,
        flags=re.S,
    )


def notebook_solution(stub_backward: bool = False):
    """The chapter's own ``reverse_gradient`` (and its Function), executed from its source."""
    return chapter_solution(
        "03_fusion_models",
        "class ReverseGradient(",
        "3.5",
        "reverse_gradient",
        edit=_stub_backward if stub_backward else None,
    )


def test_the_check_accepts_the_reference_and_the_chapters_solution():
    assert check("3.5", grad_reverse, quiet=True)
    assert check("3.5", notebook_solution(), quiet=True)


@pytest.mark.parametrize("mistake", sorted(REVERSAL_MISTAKES))
def test_the_check_rejects_each_mistake(mistake):
    assert not check("3.5", REVERSAL_MISTAKES[mistake], quiet=True)


def test_the_identity_passes_going_forward_and_fails_on_its_gradient(capsys):
    identity = REVERSAL_MISTAKES["the identity both ways"]
    x = torch.randn(3, 4)
    assert torch.equal(identity(x, 2.0), grad_reverse(x, 2.0))
    assert not check("3.5", identity)
    assert "gradient with respect to x" in capsys.readouterr().out


def test_an_unwritten_backward_or_a_detached_copy_gets_a_message(capsys):
    assert not check("3.5", notebook_solution(stub_backward=True))
    assert "backward pass is not written yet" in capsys.readouterr().out
    assert not check("3.5", REVERSAL_MISTAKES["a detached copy"])
    assert "no gradient flows back" in capsys.readouterr().out


def _modalities(n: int, seed: int):
    """Two modalities with the same two classes; the text inputs are offset."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=gen)
    centres = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    images = centres[labels] + 0.3 * torch.randn(n, 3, generator=gen)
    texts = centres[labels] + 0.3 * torch.randn(n, 3, generator=gen) + torch.tensor([0, 0, 1.0])
    return images, texts, labels


def align(reverse):
    """A toy alignment of two linear encoders (as tests/test_alignment.py's): a fresh probe's
    accuracy on held-out pairs at the end, and the training losses."""
    images, texts, labels = _modalities(512, seed=0)
    test_images, test_texts, _ = _modalities(512, seed=1)
    torch.manual_seed(0)
    aligner = AdversarialAligner(
        nn.Linear(3, 4), nn.Linear(3, 4), embed_dim=4, num_classes=2, reverse=reverse
    )
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images, texts, labels), batch_size=64, shuffle=True
    )
    history = train_adversarial_alignment(
        aligner, loader, 2, 12, torch.device("cpu"), encoder_lr=3e-2, final_encoder_lr=3e-3,
        progress=False,
    )  # fmt: skip
    probe = modality_probe(aligner, ((images,), (texts,)), ((test_images,), (test_texts,)))
    return probe, history.train_loss


def test_the_readers_layer_trains_the_aligner_as_cmlibs_does():
    probe, losses = align(notebook_solution())
    reference_probe, reference_losses = align(grad_reverse)
    assert losses == reference_losses and probe == reference_probe
    assert probe <= 0.6  # no hyperplane tells the modalities apart any more
    identity_probe, _ = align(REVERSAL_MISTAKES["the identity both ways"])
    assert identity_probe >= 0.95  # the identity: the encoders help the discriminator instead


def test_the_aligner_wants_a_function_for_its_reversal():
    with pytest.raises(TypeError, match="reverse must be a function"):
        AdversarialAligner(nn.Linear(3, 4), nn.Linear(3, 4), 4, 2, reverse="grad_reverse")
