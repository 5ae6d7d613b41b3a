"""Chapter 09 exercises (optimisation methods): part 1, the learnable temperature with its clamp,
and a predict-then-run question on a temperature of 1; part 2, a predict-then-run question on
the batch size and the hardest negative of each image, its own scene left out; part 3, OGM's
modulation coefficients; part 4, the R1 penalty; part 5, a warm-up with a cosine decay; part 6,
a predict-then-run question on gradient accumulation."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..contrastive import hardest_negatives, learnable_clip_loss
from ..generation.gan_losses import r1_penalty_of
from ..imbalance import ogm_coefficients
from ..optim.schedules import warmup_cosine
from ..retrieval import clip_loss
from . import Exercise, register, register_prediction
from .ch07 import _pairs


# ---------------------------------------------------------------- 9.1 learnable temperature
def _inputs(rng: np.random.Generator) -> tuple:
    image, text, _ = _pairs(rng)  # chapter 07's InfoNCE inputs, without their fixed scale
    # inside the clamp and past both of its ends
    log_scale = float(rng.choice([rng.uniform(0.5, 4.0), rng.uniform(4.8, 6.0), -0.5]))
    return image, text, torch.tensor(log_scale), float(rng.choice([100.0, 50.0]))


def _case(seed: int, log_scale: float, max_scale: float) -> tuple:
    image, text, _ = _pairs(np.random.default_rng(seed))
    return image, text, torch.tensor(log_scale), max_scale


def _no_clamp(image, text, log_scale, max_scale=100.0):
    return clip_loss(image, text, log_scale.exp())


def _upper_clamp_only(image, text, log_scale, max_scale=100.0):  # τ may grow past 1
    return clip_loss(image, text, log_scale.clamp(max=math.log(max_scale)).exp())


def _log_as_scale(image, text, log_scale, max_scale=100.0):  # forgets the exponential
    return clip_loss(image, text, log_scale.clamp(0.0, math.log(max_scale)))


def _divides_by_scale(image, text, log_scale, max_scale=100.0):  # reads exp(log) as τ itself
    return clip_loss(image, text, 1.0 / log_scale.clamp(0.0, math.log(max_scale)).exp())


def _scale_detached(image, text, log_scale, max_scale=100.0):  # right value; τ never learns
    return clip_loss(image, text, log_scale.clamp(0.0, math.log(max_scale)).exp().detach())


def _clamped_in_place(image, text, log_scale, max_scale=100.0):  # a value, not a clamp
    scale = min(max(math.exp(float(log_scale.detach())), 1.0), max_scale)
    return clip_loss(image, text, scale)


register(
    Exercise(
        id="9.1",
        title="CLIP's loss with a learnable, clamped temperature",
        hint="clamp log_logit_scale to [0, log(max_logit_scale)] with torch's clamp (not min/max "
        "on floats: the gradient must reach it), take exp: that is 1/τ; then CLIP's loss: "
        "logits = scale * image @ text.T, targets arange(N), the mean of the row and column "
        "cross-entropies (chapter 07's exercise 7.1)",
        reference=learnable_clip_loss,
        make_inputs=_inputs,
        cases=(
            _case(1, 2.66, 100.0),
            _case(2, 5.3, 100.0),
            _case(3, -0.4, 100.0),
            _case(4, 4.2, 50.0),
        ),
        wrong_answers=(
            _no_clamp,
            _upper_clamp_only,
            _log_as_scale,
            _divides_by_scale,
            _scale_detached,
            _clamped_in_place,
        ),
        trials=6,
        gradients=True,
    )
)


# ---------------------------------------------------------------- predict, then run
register_prediction(
    "9.2",
    "R@1 after training with a fixed temperature of 1",
    {
        "a": "within 0.10 of the best fixed temperature's: τ only rescales the scores, and a "
        "ranking does not change when every score is divided by the same number",
        "b": "at least 0.10 below the best fixed temperature's",
        "c": "at least 0.10 above it: a softer loss generalises better",
    },
    "b",
)


register_prediction(
    "9.3",
    "R@1 after the same number of steps with batches of 256 instead of 32",
    {
        "a": "about the same (within 0.05): the model takes the same number of steps",
        "b": "at least 0.05 higher: each caption meets 255 negatives instead of 31",
        "c": "at least 0.05 lower: a softmax over more candidates is harder to learn",
    },
    "b",
)


# ---------------------------------------------------------------- 9.4 hardest negatives
def _scenes_inputs(rng: np.random.Generator) -> tuple:
    rows, columns = int(rng.integers(3, 9)), int(rng.integers(6, 15))
    num_scenes = int(rng.integers(2, 5))  # few scenes: many columns share a row's scene
    column_scenes = torch.from_numpy(rng.integers(0, num_scenes, columns))
    column_scenes[:2] = torch.tensor([0, 1])  # every row has a column of another scene
    row_scenes = torch.from_numpy(rng.integers(0, num_scenes, rows))
    # negative scores too: a mask that writes 0 instead of -inf then picks a wrong column
    scores = torch.from_numpy(rng.uniform(-1.0, 0.2, (rows, columns))).float()
    return scores, row_scenes, column_scenes


def _scenes_case(seed: int) -> tuple:
    scores, row_scenes, column_scenes = _scenes_inputs(np.random.default_rng(seed))
    # the diagonal (row i, column i) is not the same scene here: a diagonal-only mask fails
    return scores, row_scenes, (column_scenes + 1) % 5


def _unmasked(scores, row_scenes, column_scenes):  # the row's own scene can win
    return scores.argmax(dim=1)


def _diagonal_mask(scores, row_scenes, column_scenes):  # masks item i, not its scene
    eye = torch.eye(*scores.shape, dtype=torch.bool)
    return scores.masked_fill(eye, float("-inf")).argmax(dim=1)


def _masked_with_zero(scores, row_scenes, column_scenes):  # 0 is not below every score
    same = row_scenes[:, None] == column_scenes[None, :]
    return scores.masked_fill(same, 0.0).argmax(dim=1)


def _easiest(scores, row_scenes, column_scenes):  # argmin: the easiest negative
    same = row_scenes[:, None] == column_scenes[None, :]
    return scores.masked_fill(same, float("inf")).argmin(dim=1)


def _scores_returned(scores, row_scenes, column_scenes):  # the values, not the indices
    same = row_scenes[:, None] == column_scenes[None, :]
    return scores.masked_fill(same, float("-inf")).max(dim=1).values


register(
    Exercise(
        id="9.4",
        title="each image's hardest negative, its own scene left out",
        hint="same = row_scenes[:, None] == column_scenes[None, :] is (R, C), True where a "
        "caption shows the row's own scene; fill those scores with float('-inf') "
        "(masked_fill) and take argmax over the columns (dim=1): indices, not scores",
        reference=hardest_negatives,
        make_inputs=_scenes_inputs,
        cases=(_scenes_case(1), _scenes_case(2)),
        wrong_answers=(
            _unmasked,
            _diagonal_mask,
            _masked_with_zero,
            _easiest,
            _scores_returned,
        ),
        trials=6,
    )
)


# ---------------------------------------------------------------- 9.5 OGM coefficients
def _logit_inputs(rng: np.random.Generator) -> tuple:
    batch, classes = int(rng.integers(4, 17)), int(rng.integers(3, 19))
    labels = torch.from_numpy(rng.integers(0, classes, batch))
    # one modality confident about the truth, the other less so; either may lead
    strong = torch.from_numpy(rng.normal(0, 1, (batch, classes))).float()
    strong[torch.arange(batch), labels] += float(rng.uniform(1.0, 4.0))
    weak = torch.from_numpy(rng.normal(0, 1, (batch, classes))).float()
    pair = (strong, weak) if rng.random() < 0.5 else (weak, strong)
    return (*pair, labels, float(rng.choice([0.1, 0.5, 1.0])))


def _logit_case(seed: int, image_leads: bool, alpha: float) -> tuple:
    image, text, labels, _ = _logit_inputs(np.random.default_rng(seed))
    scores = [x.softmax(1).gather(1, labels[:, None]).sum() for x in (image, text)]
    if (scores[0] > scores[1]) != image_leads:
        image, text = text, image
    return image, text, labels, alpha


def _scores(image, text, labels):
    return [x.softmax(1).gather(1, labels[:, None]).sum().item() for x in (image, text)]


def _slows_the_weaker(image, text, labels, alpha):  # the ratio turned round
    image_score, text_score = _scores(image, text, labels)
    ratio = image_score / text_score
    if ratio < 1:
        return 1 - math.tanh(alpha / ratio), 1.0
    return 1.0, 1 - math.tanh(alpha * ratio)


def _both_slowed(image, text, labels, alpha):  # the follower is not left at 1
    image_score, text_score = _scores(image, text, labels)
    return 1 - math.tanh(alpha * image_score / text_score), 1 - math.tanh(
        alpha * text_score / image_score
    )


def _ratio_minus_one(image, text, labels, alpha):  # smooth at a tie, but not eq. 10
    image_score, text_score = _scores(image, text, labels)
    ratio = image_score / text_score
    if ratio > 1:
        return 1 - math.tanh(alpha * (ratio - 1)), 1.0
    return 1.0, 1 - math.tanh(alpha * (1 / ratio - 1))


def _logits_not_probabilities(image, text, labels, alpha):  # scores from raw true logits
    image_score, text_score = (
        x.gather(1, labels[:, None]).exp().sum().item() for x in (image, text)
    )
    ratio = image_score / text_score
    if ratio > 1:
        return 1 - math.tanh(alpha * ratio), 1.0
    return 1.0, 1 - math.tanh(alpha / ratio)


def _accuracy_scores(image, text, labels, alpha):  # counts right answers, not probabilities
    image_score, text_score = ((x.argmax(1) == labels).sum().item() + 1e-6 for x in (image, text))
    ratio = image_score / text_score
    if ratio > 1:
        return 1 - math.tanh(alpha * ratio), 1.0
    return 1.0, 1 - math.tanh(alpha / ratio)


register(
    Exercise(
        id="9.5",
        title="OGM's modulation coefficients for one batch",
        hint="score each modality by the sum over the batch of softmax(its logits)[true class] "
        "(gather with labels[:, None]); ratio = image score / text score; the leader (ratio "
        "above 1 for the image, below 1 for the text, which then uses 1 / ratio) gets 1 - "
        "tanh(alpha * its ratio), the other exactly 1 (Peng et al.'s eq. 10)",
        reference=ogm_coefficients,
        make_inputs=_logit_inputs,
        cases=(_logit_case(1, True, 0.5), _logit_case(2, False, 0.5), _logit_case(3, True, 1.0)),
        wrong_answers=(
            _slows_the_weaker,
            _both_slowed,
            _ratio_minus_one,
            _logits_not_probabilities,
            _accuracy_scores,
        ),
        trials=6,
    )
)


# ---------------------------------------------------------------- 9.8 the R1 penalty
class _Critic(nn.Module):
    """A small conditional critic ``D(x, c) -> (B,)``, a projection discriminator in miniature:
    ``w·φ(x) + ⟨Vc, φ(x)⟩``, with smooth features so that its input gradient depends on ``x``."""

    def __init__(self, seed: int, channels: int, cond_dim: int, width: int = 6) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(channels, width, 3, padding=1)
        self.out = nn.Linear(width, 1)
        self.embed = nn.Linear(cond_dim, width, bias=False)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        features = torch.tanh(self.conv(x)).mean((2, 3))
        return self.out(features).squeeze(1) + (self.embed(c) * features).sum(1)


def _r1_inputs(rng: np.random.Generator) -> tuple:
    batch, channels, size, cond_dim = (int(rng.integers(2, 9)), 3, int(rng.integers(4, 9)), 5)
    seed = int(rng.integers(2**31))
    g = torch.Generator().manual_seed(seed)
    real = torch.rand(batch, channels, size, size, generator=g)
    cond = torch.randn(batch, cond_dim, generator=g)
    return _Critic(seed, channels, cond_dim), real, cond


def _input_gradients(discriminator, real, cond, create_graph=True, of_mean=False):
    x = real.detach().requires_grad_(True)
    scores = discriminator(x, cond)
    (grad,) = torch.autograd.grad(
        scores.mean() if of_mean else scores.sum(), x, create_graph=create_graph
    )
    return grad.flatten(1)


def _no_create_graph(discriminator, real, cond):  # the value is right, D cannot learn from it
    return _input_gradients(discriminator, real, cond, create_graph=False).pow(2).sum(1).mean()


def _norm_not_squared(discriminator, real, cond):
    return _input_gradients(discriminator, real, cond).norm(dim=1).mean()


def _summed_over_the_batch(discriminator, real, cond):
    return _input_gradients(discriminator, real, cond).pow(2).sum(1).sum()


def _mean_over_pixels(discriminator, real, cond):
    return _input_gradients(discriminator, real, cond).pow(2).mean()


def _gradient_of_the_mean_score(discriminator, real, cond):  # each slope divided by the batch
    return _input_gradients(discriminator, real, cond, of_mean=True).pow(2).sum(1).mean()


register(
    Exercise(
        id="9.8",
        title="the R1 penalty: the mean squared norm of D's gradient at the real images",
        hint="x = real.detach().requires_grad_(True); scores = discriminator(x, cond); "
        "(grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True) (the sum gives each "
        "image its own slope; create_graph lets the penalty itself be differentiated, so that D "
        "learns from it); then the squared norm of each image's gradient, "
        "grad.pow(2).flatten(1).sum(1), averaged over the batch",
        reference=r1_penalty_of,
        make_inputs=_r1_inputs,
        wrong_answers=(
            _no_create_graph,
            _norm_not_squared,
            _summed_over_the_batch,
            _mean_over_pixels,
            _gradient_of_the_mean_score,
        ),
        trials=5,
        gradients=True,
        gradient_inputs=(2,),  # the prompt's embedding; the real images may be detached or not
    )
)


# ---------------------------------------------------------------- 9.6 warm-up + cosine
def _schedule_inputs(rng: np.random.Generator) -> tuple:
    total = int(rng.integers(12, 400))
    return total, int(rng.integers(0, total // 3 + 1))


def _progress(total, warmup):
    steps = torch.arange(total, dtype=torch.float64)
    return steps, (steps - warmup) / max(1, total - 1 - warmup)


def _ramp_from_zero(total, warmup):  # the first step gets a rate of 0: a wasted step
    steps, progress = _progress(total, warmup)
    decay = 0.5 * (1 + torch.cos(math.pi * progress))
    return torch.where(steps < warmup, steps / max(warmup, 1), decay)


def _cosine_over_the_whole_run(total, warmup):  # the decay ignores the warm-up's steps
    steps, _ = _progress(total, warmup)
    decay = 0.5 * (1 + torch.cos(math.pi * steps / (total - 1)))
    return torch.where(steps < warmup, (steps + 1) / (warmup + 1), decay)


def _cosine_without_the_half(total, warmup):  # cos(π t) runs from 1 down to -1
    steps, progress = _progress(total, warmup)
    return torch.where(steps < warmup, (steps + 1) / (warmup + 1), torch.cos(math.pi * progress))


def _linear_decay(total, warmup):
    steps, progress = _progress(total, warmup)
    return torch.where(steps < warmup, (steps + 1) / (warmup + 1), 1 - progress)


def _never_reaches_zero(total, warmup):  # progress over total - warmup: ends one step short
    steps = torch.arange(total, dtype=torch.float64)
    decay = 0.5 * (1 + torch.cos(math.pi * (steps - warmup) / max(1, total - warmup)))
    return torch.where(steps < warmup, (steps + 1) / (warmup + 1), decay)


register(
    Exercise(
        id="9.6",
        title="a warm-up followed by a cosine decay, every step's factor at once",
        hint="steps = torch.arange(total_steps); during the warm-up (step < warmup_steps) the "
        "factor is (step + 1) / (warmup_steps + 1); after it, progress t = (step - "
        "warmup_steps) / (total_steps - 1 - warmup_steps) runs from 0 to 1 and the factor is "
        "(1 + cos(pi * t)) / 2; torch.where picks between the two",
        reference=warmup_cosine,
        make_inputs=_schedule_inputs,
        cases=((20, 4), (50, 0), (400, 80), (13, 1)),
        wrong_answers=(
            _ramp_from_zero,
            _cosine_over_the_whole_run,
            _cosine_without_the_half,
            _linear_decay,
            _never_reaches_zero,
        ),
        trials=6,
    )
)


# ---------------------------------------------------------------- 9.7 accumulation
register_prediction(
    "9.7",
    "whether four accumulated micro-batches of 64 give one batch of 256's gradient (evaluation "
    "mode), for a cross-entropy classifier and for a dual encoder under CLIP's loss",
    {
        "a": "the same for both: accumulation adds up the same gradients in another order",
        "b": "the same for the classifier only: each image's term in CLIP's loss compares it "
        "with its batch",
        "c": "the same for neither: the micro-batches' gradients are noisier",
    },
    "b",
)
