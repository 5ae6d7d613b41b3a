"""Exercise 5.6, scheduled sampling's step, and the seam through which chapter 05 part 2 trains
with the reader's answer: the check accepts the reference and rejects each common mistake, and
the captioner's scheduled sampling is the rule's, draw for draw."""

import pytest
import torch

from cmlib.captioning import AttentionCaptioner, scheduled_sampling_inputs, train_captioner
from cmlib.data.shapes.captioning import caption_vocab, load_captioning
from cmlib.exercises import check, get
from cmlib.exercises.ch05 import SAMPLING_MISTAKES

VOCAB = caption_vocab()


@pytest.fixture(autouse=True)
def _no_raising(monkeypatch):
    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)


def fixed_inputs(sample_prob=0.4, seed=0):
    gold = torch.tensor([[1, 4, 5, 6, 7], [1, 8, 9, 4, 5], [1, 6, 7, 8, 9]])
    predicted = 20 + torch.arange(15).view(3, 5)  # never a gold token, never a repeat
    return gold, predicted, sample_prob, torch.Generator().manual_seed(seed)


def notebook_solution(gold, predicted, sample_prob, generator):
    """The solution in chapters/05_captioning_exposure.py, as written there."""
    coin = torch.rand(gold.shape[0], gold.shape[1] - 1, generator=generator) < sample_prob
    fed = torch.where(coin, predicted[:, :-1], gold[:, 1:])
    return torch.cat([gold[:, :1], fed], dim=1)


def test_the_check_accepts_the_reference():
    assert check("5.6", scheduled_sampling_inputs, quiet=True)
    assert check("5.6", get("5.6").reference, quiet=True)
    assert check("5.6", notebook_solution, quiet=True)


@pytest.mark.parametrize("mistake", sorted(SAMPLING_MISTAKES))
def test_the_check_rejects_each_common_mistake(mistake):
    assert not check("5.6", SAMPLING_MISTAKES[mistake], quiet=True)
    # ...and the mistake really gives other tokens on a fixed input (not only by chance)
    if mistake != "ignores the generator":
        assert not torch.equal(
            SAMPLING_MISTAKES[mistake](*fixed_inputs()), scheduled_sampling_inputs(*fixed_inputs())
        )


def test_the_check_rejects_a_stub(monkeypatch, capsys):
    def stub(gold, predicted, sample_prob, generator):
        raise NotImplementedError("Exercise 5.6")

    assert not check("5.6", stub, quiet=True)
    # the chapter's next cell asks again without raising, even under `make test`, and falls
    # back to cmlib's rule
    monkeypatch.setenv("CMLIB_CHECKS_RAISE", "1")
    assert not check("5.6", stub, quiet=True, raise_on_failure=False)
    with pytest.raises(AssertionError, match="5.6"):
        check("5.6", stub, quiet=True)
    assert capsys.readouterr().out == ""


def test_the_rule_by_hand():
    gold, predicted, _, generator = fixed_inputs()
    assert torch.equal(scheduled_sampling_inputs(gold, predicted, 0.0, generator), gold)
    every = scheduled_sampling_inputs(gold, predicted, 1.0, generator)
    assert torch.equal(every[:, 0], gold[:, 0])  # <bos> stays
    assert torch.equal(every[:, 1:], predicted[:, :-1])  # the step before's guess
    coin = torch.rand(3, 4, generator=torch.Generator().manual_seed(0)) < 0.4
    fed = scheduled_sampling_inputs(*fixed_inputs())
    assert torch.equal(fed[:, 1:] == predicted[:, :-1], coin)
    assert torch.equal(fed, scheduled_sampling_inputs(*fixed_inputs()))  # reproducible
    with pytest.raises(ValueError, match="sample_prob"):
        scheduled_sampling_inputs(gold, predicted, 1.5, generator)
    with pytest.raises(ValueError, match="predicted"):
        scheduled_sampling_inputs(gold, predicted[:, :-1], 0.5, generator)


def small_model(seed=0):
    torch.manual_seed(seed)
    return AttentionCaptioner(len(VOCAB), grid_channels=8, grid_size=4, embed_dim=8, hidden_dim=16)


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(4, len(VOCAB), (5, 7), generator=g)
    inputs[:, 0] = VOCAB.bos_id
    return torch.randn(5, 8, 4, 4, generator=g), inputs, torch.tensor([0, 1, 2, 0, 1])


def old_forward(model, grids, inputs, style, sample_prob, generator):
    """Captioner.forward's scheduled sampling as it was written before the rule was a seam."""
    memory = model.memory(grids)
    state, logits, token = model.start(memory), [], inputs[:, 0]
    for t in range(inputs.shape[1]):
        step_logits, state, _ = model.step(memory, state, token, style)
        logits.append(step_logits)
        if t + 1 < inputs.shape[1]:
            token = inputs[:, t + 1]
            own = step_logits.argmax(1).detach()
            flip = torch.rand(len(token), generator=generator) < sample_prob
            token = torch.where(flip, own, token)
    return torch.stack(logits, dim=1)


@pytest.mark.parametrize("sample_prob", [0.3, 1.0])
def test_forward_draws_the_same_coins_as_before(sample_prob):
    model = small_model().eval()
    grids, inputs, style = batch()
    with torch.no_grad():
        before = old_forward(
            model, grids, inputs, style, sample_prob, torch.Generator().manual_seed(5)
        )
        now = model(grids, inputs, style, sample_prob, torch.Generator().manual_seed(5))
        torch.manual_seed(9)  # no generator: the global one, as in training
        global_before = old_forward(model, grids, inputs, style, sample_prob, None)
        torch.manual_seed(9)
        global_now = model(grids, inputs, style, sample_prob)
        forced = model(grids, inputs, style)
    assert torch.equal(before, now) and torch.equal(global_before, global_now)
    assert not torch.equal(now, forced)  # the coins changed what was fed


def test_forward_and_training_use_the_rule_given():
    model = small_model().eval()
    grids, inputs, style = batch()
    seen = []

    def spy(gold, predicted, sample_prob, generator):
        seen.append((tuple(gold.shape), tuple(predicted.shape), gold.device.type))
        return scheduled_sampling_inputs(gold, predicted, sample_prob, generator)

    def gold_only(gold, predicted, sample_prob, generator):
        return gold

    with torch.no_grad():
        by_default = model(grids, inputs, style, 0.5, torch.Generator().manual_seed(3))
        by_spy = model(
            grids, inputs, style, 0.5, torch.Generator().manual_seed(3), sampling_rule=spy
        )
        teacher = model(grids, inputs, style, 0.5, sampling_rule=gold_only)
        forced = model(grids, inputs, style)
    assert torch.equal(by_default, by_spy) and torch.equal(teacher, forced)
    assert seen == [((5, 2), (5, 2), "cpu")] * (inputs.shape[1] - 1)  # one call per fed step
    with pytest.raises(ValueError, match="sampling rule"):
        model(grids, inputs, style, 0.5, sampling_rule=lambda g, p, s, r: g[:, :1])


def test_train_captioner_passes_the_rule_on(tmp_path, monkeypatch):
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))
    data = load_captioning("train", num_images=8, seed=0)
    calls = []

    def spy(gold, predicted, sample_prob, generator):
        calls.append(sample_prob)
        return scheduled_sampling_inputs(gold, predicted, sample_prob, generator)

    grids = torch.randn(8, 8, 4, 4, generator=torch.Generator().manual_seed(1))
    train_captioner(
        small_model(),
        data,
        grids,
        1,
        torch.device("cpu"),
        batch_size=4,
        scheduled_sampling=0.25,
        progress=False,
        sampling_rule=spy,
    )
    # two steps: the chance rises from 0 (no sampling, no call) to 0.25 on the last step
    assert calls and set(calls) == {0.25}


def test_the_rule_and_the_seam_reject_bad_input():
    gold = torch.tensor([[1, 5, 6]])
    with pytest.raises(TypeError, match="CPU torch.Generator"):
        scheduled_sampling_inputs(gold, gold, 0.5, None)
    with pytest.raises(ValueError, match="<bos>"):
        empty = torch.zeros(1, 0, dtype=torch.long)
        scheduled_sampling_inputs(empty, empty, 0.5, torch.Generator())
    model = small_model().eval()
    grids, inputs, style = batch()
    with pytest.raises(TypeError, match="sampling_rule must be callable"):
        model(grids, inputs, style, 0.5, sampling_rule="rule")
    with pytest.raises(TypeError, match="sampling_rule must be callable"):
        train_captioner(model, None, grids, 1, torch.device("cpu"), sampling_rule="rule")
