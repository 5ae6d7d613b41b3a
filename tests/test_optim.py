"""Chapter 09 part 5: schedules, bf16 autocast, gradient norms, accumulation and GradCache."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import chapter_solution
from torch import nn

from cmlib.exercises import check
from cmlib.optim import accumulation, precision, schedules
from cmlib.retrieval import clip_loss
from cmlib.train import endless_batches, fit_steps

CPU = torch.device("cpu")


# --- schedules ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", schedules.SCHEDULES)
def test_every_schedule_peaks_at_one_and_stays_positive_until_the_decay(kind):
    factors = [schedules.lr_factor(kind, step, 50) for step in range(50)]
    assert max(factors) == pytest.approx(1.0)
    assert min(factors) >= 0.0
    if kind.startswith("warmup-"):  # 5 warm-up steps: 1/6 … 5/6, then the peak
        assert factors[:6] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0])
    else:
        assert factors[0] == 1.0
    if kind.endswith("cosine"):
        assert factors[-1] == pytest.approx(0.0, abs=1e-12)
        decay = factors[5 if kind.startswith("warmup-") else 0 :]
        assert all(a >= b for a, b in zip(decay, decay[1:]))  # never rises again
    else:
        assert factors[-1] == 1.0


def test_the_cosine_is_halfway_at_the_middle_of_its_decay_and_ends_at_final():
    assert schedules.lr_factor("cosine", 50, 101) == pytest.approx(0.5)
    assert schedules.lr_factor("cosine", 100, 101, final=0.1) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "args, error",
    [
        (("linear", 0, 10), ValueError),
        (("cosine", 10, 10), ValueError),
        (("cosine", -1, 10), ValueError),
        (("cosine", 0, 0), ValueError),
        (("cosine", 0.5, 10), TypeError),
        (("warmup-cosine", 0, 10, 1.0), ValueError),
        (("cosine", 0, 10, 0.1, 2.0), ValueError),
    ],
)
def test_bad_schedule_arguments_are_refused(args, error):
    with pytest.raises(error):
        schedules.lr_factor(*args)


def _rates(scheduler, optimizer, steps):
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_make_scheduler_follows_lr_factor_and_one_cycle_is_pytorchs():
    model = nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.5)
    rates = _rates(schedules.make_scheduler(optimizer, "warmup-cosine", 20), optimizer, 20)
    assert rates == pytest.approx(
        [0.5 * schedules.lr_factor("warmup-cosine", s, 20) for s in range(20)]
    )
    ours = torch.optim.Adam(model.parameters(), lr=3e-3)
    theirs = torch.optim.Adam(model.parameters(), lr=3e-3)
    reference = torch.optim.lr_scheduler.OneCycleLR(theirs, 3e-3, total_steps=30, pct_start=0.2)
    assert _rates(schedules.make_scheduler(ours, "one-cycle", 30, warmup=0.2), ours, 30) == (
        _rates(reference, theirs, 30)
    )
    with pytest.raises(TypeError):
        schedules.make_scheduler(model, "cosine", 10)
    with pytest.raises(ValueError):
        schedules.make_scheduler(optimizer, "step", 10)


# --- precision ---------------------------------------------------------------------------------


def test_in_precision_runs_the_forward_in_bf16_and_returns_a_float32_loss():
    model = nn.Linear(8, 3)
    seen = {}

    def step(m, batch):
        x, y = batch
        logits = m(x)
        seen["dtype"] = logits.dtype
        return {"loss": F.cross_entropy(logits, y), "logits_mean": logits.mean()}

    batch = (torch.randn(4, 8), torch.tensor([0, 1, 2, 0]))
    out = precision.in_precision(step, CPU, "bf16")(model, batch)
    assert seen["dtype"] == torch.bfloat16
    assert out["loss"].dtype == torch.float32 and out["logits_mean"].dtype == torch.float32
    precision.in_precision(step, CPU, "fp32")(model, batch)
    assert seen["dtype"] == torch.float32
    with pytest.raises(ValueError):
        precision.in_precision(step, CPU, "fp16")
    with pytest.raises(TypeError):
        precision.in_precision("step", CPU, "bf16")


def test_bf16_training_keeps_float32_weights_and_learns():
    torch.manual_seed(0)
    x = torch.randn(256, 10)
    y = (x[:, 0] > 0).long()
    model = nn.Linear(10, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    batches = ((x[i], y[i]) for i in endless_batches(256, 32, torch.Generator().manual_seed(0)))
    step = precision.in_precision(lambda m, b: F.cross_entropy(m(b[0]), b[1]), CPU, "bf16")
    history = fit_steps(model, batches, optimizer, 60, CPU, step_fn=step, progress=False)
    assert model.weight.dtype == torch.float32
    assert history.steps["loss"][-1] < 0.5 * history.steps["loss"][0]


# --- gradient norms ----------------------------------------------------------------------------


@pytest.mark.parametrize("grad_clip", [None, 0.01])
def test_fit_logs_the_gradient_norm_before_clipping(grad_clip):
    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    model = nn.Linear(4, 1)
    expected = model.weight.detach().clone()
    loss = F.mse_loss(model(x), y)
    loss.backward()
    norm = torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item()
    model.zero_grad()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # no update: the norm is step 1's
    history = fit_steps(
        model,
        iter([(x, y)] * 2),
        optimizer,
        1,
        CPU,
        step_fn=lambda m, b: F.mse_loss(m(b[0]), b[1]),
        grad_clip=grad_clip,
        progress=False,
        log_grad_norm=True,
    )
    assert history.steps["grad_norm"] == pytest.approx([norm], rel=1e-5)
    assert torch.equal(model.weight, expected)
    plain = fit_steps(
        model,
        iter([(x, y)]),
        optimizer,
        1,
        CPU,
        step_fn=lambda m, b: F.mse_loss(m(b[0]), b[1]),
        progress=False,
    )
    assert "grad_norm" not in plain.steps


# --- accumulation ------------------------------------------------------------------------------


def _classifier_loss(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def test_accumulation_gives_the_full_batch_gradient_for_a_per_example_loss():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))
    batch = (torch.randn(32, 6), torch.randint(0, 4, (32,)))
    full = accumulation.accumulated_gradient(model, _classifier_loss, batch, 1)
    accumulated = accumulation.accumulated_gradient(model, _classifier_loss, batch, 4)
    assert accumulation.relative_difference(accumulated, full) < 1e-6
    assert all(p.grad is None for p in model.parameters())  # cleared after


def test_batch_norm_makes_accumulation_inexact_in_training_mode_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))
    batch = (torch.randn(32, 6), torch.randint(0, 4, (32,)))
    model.train()
    full = accumulation.accumulated_gradient(model, _classifier_loss, batch, 1)
    split = accumulation.accumulated_gradient(model, _classifier_loss, batch, 4)
    assert accumulation.relative_difference(split, full) > 1e-3
    model.eval()
    full = accumulation.accumulated_gradient(model, _classifier_loss, batch, 1)
    split = accumulation.accumulated_gradient(model, _classifier_loss, batch, 4)
    assert accumulation.relative_difference(split, full) < 1e-6


class _TwoTowers(nn.Module):
    def __init__(self):
        super().__init__()
        self.image, self.text = nn.Linear(10, 8), nn.Linear(12, 8)
        self.log_scale = nn.Parameter(torch.tensor(2.0))


def _encode(model, batch):
    images, texts = batch
    return (
        F.normalize(model.image(images), dim=-1),
        F.normalize(model.text(texts), dim=-1),
        model.log_scale.exp(),
    )


def _contrastive_loss(model, batch):
    return clip_loss(*_encode(model, batch))


@pytest.fixture
def towers_and_batch():
    torch.manual_seed(0)
    return _TwoTowers(), (torch.randn(32, 10), torch.randn(32, 12))


def test_accumulating_a_contrastive_loss_changes_its_gradient(towers_and_batch):
    model, batch = towers_and_batch
    full = accumulation.accumulated_gradient(model, _contrastive_loss, batch, 1)
    split = accumulation.accumulated_gradient(model, _contrastive_loss, batch, 4)
    assert accumulation.relative_difference(split, full) > 0.05


@pytest.mark.parametrize("count", [1, 2, 8])
def test_grad_cache_gives_the_full_batch_contrastive_gradient(towers_and_batch, count):
    model, batch = towers_and_batch
    full = accumulation.accumulated_gradient(model, _contrastive_loss, batch, 1)
    loss, cached = accumulation.cached_contrastive_gradient(model, _encode, clip_loss, batch, count)
    assert loss.item() == pytest.approx(_contrastive_loss(model, batch).item(), rel=1e-6)
    assert accumulation.relative_difference(cached, full) < 1e-5
    # the temperature's gradient is counted once, not once per micro-batch
    assert cached[-1] == pytest.approx(full[-1].item(), rel=1e-5)


def test_micro_batches_and_relative_difference_check_their_inputs():
    x = torch.zeros(10, 2)
    assert [len(p[0]) for p in accumulation.micro_batches((x, x), 5)] == [2] * 5
    with pytest.raises(ValueError, match="equal micro-batches"):
        accumulation.micro_batches((x,), 3)
    with pytest.raises(ValueError):
        accumulation.micro_batches((x, torch.zeros(9)), 1)
    with pytest.raises(TypeError):
        accumulation.micro_batches(x, 2)
    with pytest.raises(ValueError):
        accumulation.relative_difference(torch.zeros(3), torch.zeros(4))
    with pytest.raises(TypeError):
        accumulation.flat_gradient("model")
    assert accumulation.relative_difference(torch.ones(3), torch.ones(3)) == 0.0


# --- the ledger --------------------------------------------------------------------------------


def test_the_ledger_records_replaces_and_reads_back_in_part_order(tmp_path):
    from cmlib.optim import ledger

    ledger.record(
        "GradCache",
        6,
        "fewer negatives",
        "gradient error",
        0.3,
        1e-7,
        1.0,
        1.5,
        higher_is_better=False,
        directory=tmp_path,
    )
    ledger.record(
        "learnable τ", 1, "a fixed temperature", "R@1", 0.60, 0.62, 10.0, 10.0, directory=tmp_path
    )
    ledger.record(
        "learnable τ", 1, "a fixed temperature", "R@1", 0.60, 0.65, 10.0, 11.0, directory=tmp_path
    )  # a part run again replaces its row
    entries = ledger.read(tmp_path)
    assert [e.method for e in entries] == ["learnable τ", "GradCache"]
    assert entries[0].gain == pytest.approx(0.05) and entries[0].time_factor == pytest.approx(1.1)
    assert entries[1].gain == pytest.approx(0.3 - 1e-7)  # lower is better: a fall is a gain
    no_time = ledger.record("bf16", 5, "time", "accuracy", 0.9, 0.9, directory=tmp_path)
    assert no_time.time_factor is None


def test_the_ledger_refuses_bad_records_and_names_a_corrupt_file(tmp_path):
    from cmlib.optim import ledger

    with pytest.raises(ValueError):
        ledger.record("", 1, "f", "m", 0.0, 1.0, directory=tmp_path)
    with pytest.raises(ValueError):
        ledger.record("!!", 1, "f", "m", 0.0, 1.0, directory=tmp_path)
    with pytest.raises(TypeError):
        ledger.record("x", 1, "f", "m", "high", 1.0, directory=tmp_path)
    with pytest.raises(ValueError):
        ledger.record("x", 1, "f", "m", 0.0, 1.0, seconds_with=-1.0, directory=tmp_path)
    with pytest.raises(TypeError):
        ledger.record("x", 1, "f", "m", 0.0, 1.0, higher_is_better=1, directory=tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        ledger.read(tmp_path)
    assert ledger.read(tmp_path / "nowhere") == []


def test_a_schedule_given_as_every_steps_factor_is_followed_and_checked():
    model = nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=2.0)
    factors = schedules.warmup_cosine(12, 3)
    assert factors.dtype == torch.float64 and factors.shape == (12,)
    assert factors.tolist() == pytest.approx(
        [schedules.lr_factor("warmup-cosine", s, 12, 3 / 12) for s in range(12)]
    )
    rates = _rates(schedules.make_scheduler(optimizer, factors, 12), optimizer, 12)
    assert rates == pytest.approx((2.0 * factors).tolist())
    with pytest.raises(ValueError, match="one factor per step"):
        schedules.make_scheduler(optimizer, factors[:5], 12)
    with pytest.raises(ValueError):
        schedules.make_scheduler(optimizer, -factors, 12)
    with pytest.raises(TypeError):
        schedules.make_scheduler(optimizer, 0.5, 12)
    with pytest.raises(ValueError):
        schedules.warmup_cosine(10, 10)


def test_the_chapters_solution_passes_exercise_9_6():
    solution = chapter_solution(
        "09_optimisation_schedules", "def warmup_cosine(", "9.6", "warmup_cosine"
    )
    assert check("9.6", solution, quiet=True, raise_on_failure=False)


def test_the_chapters_solution_passes_exercise_9_8():
    solution = chapter_solution(
        "09_optimisation_gans", "def my_r1_penalty(", "9.8", "my_r1_penalty"
    )
    assert check("9.8", solution, quiet=True, raise_on_failure=False)


def test_exercise_9_8_accepts_real_images_left_attached():
    def attached(discriminator, real, cond):  # no detach: real itself is made to require grad
        real = real.requires_grad_(True)
        (grad,) = torch.autograd.grad(discriminator(real, cond).sum(), real, create_graph=True)
        return grad.pow(2).flatten(1).sum(1).mean()

    assert check("9.8", attached, quiet=True, raise_on_failure=False)


def test_clearing_a_part_forgets_its_rows_only(tmp_path):
    from cmlib.optim import ledger

    ledger.record("old name", 5, "f", "m", 0.0, 1.0, directory=tmp_path)
    ledger.record("kept", 6, "f", "m", 0.0, 1.0, directory=tmp_path)
    assert ledger.clear(5, directory=tmp_path) == 1
    assert [e.method for e in ledger.read(tmp_path)] == ["kept"]


def test_grad_cache_refuses_outputs_it_cannot_split(towers_and_batch):
    model, batch = towers_and_batch

    def scale_between(m, b):
        images, texts, scale = _encode(m, b)
        return images, scale, texts

    def one_row(m, b):
        return _encode(m, b)[0][:1], _encode(m, b)[1]

    with pytest.raises(ValueError, match="per-example tensors first"):
        accumulation.cached_contrastive_gradient(model, scale_between, clip_loss, batch, 4)
    with pytest.raises(ValueError, match="one row per item"):
        accumulation.cached_contrastive_gradient(model, one_row, clip_loss, batch, 4)
