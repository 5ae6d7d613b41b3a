"""Training a captioner: teacher forcing on fresh captions, with :func:`cmlib.train.fit`.

Each epoch draws, for every image, a style prompt and — for the unprompted style — one of its
five reference captions afresh (:class:`CaptionBatches`), so the decoder learns every template
and synonym instead of memorising one caption per image. The loss is
:func:`~cmlib.captioning.models.masked_cross_entropy` over the shifted caption: the input is
``<bos> w1 … wn``, the target ``w1 … wn <eos>``, and padding counts for nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..data.shapes.captioning import STYLE_PROMPTS, CaptionData
from ..optim.schedules import make_scheduler
from ..train import History, fit
from ..validate import check_int, check_number, check_tensor
from .models import Captioner, attention_coverage_penalty, masked_cross_entropy

#: How often each style prompt is drawn in training: none, "briefly", "in detail".
DEFAULT_STYLE_MIX = (0.6, 0.2, 0.2)


class CaptionBatches:
    """Shuffled ``(grids, inputs, targets, style)`` batches, captions drawn afresh each pass.

    Args:
        data: the captions of the images.
        grids: ``(N, C, h, w)`` the images' region grids.
        batch_size: images per batch.
        style_mix: the chance of each style prompt (sums to 1).
        seed: seeds the order, the styles and the variants.
    """

    def __init__(
        self,
        data: CaptionData,
        grids: torch.Tensor,
        batch_size: int = 64,
        style_mix: Sequence[float] = DEFAULT_STYLE_MIX,
        seed: int = 0,
    ):
        check_tensor("grids", grids, (len(data), "C", "h", "w"), floating=True, nonempty=True)
        check_int("batch_size", batch_size)
        if len(style_mix) != len(STYLE_PROMPTS) or abs(sum(style_mix) - 1) > 1e-6:
            raise ValueError(
                f"style_mix must be {len(STYLE_PROMPTS)} chances summing to 1, "
                f"got {tuple(style_mix)}"
            )
        self.data, self.grids, self.batch_size = data, grids, batch_size
        self.style_mix = torch.tensor(style_mix, dtype=torch.float)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.data) // self.batch_size)

    def __iter__(self):
        n = len(self.data)
        order = torch.randperm(n, generator=self.generator)
        style = torch.multinomial(self.style_mix, n, replacement=True, generator=self.generator)
        variant = torch.randint(self.data.ids.shape[1], (n,), generator=self.generator)
        for start in range(0, n, self.batch_size):
            rows = order[start : start + self.batch_size]
            tokens = self.data.targets(rows, style[rows], variant[rows])
            # Cut the columns that are padding in every row: fewer decoder steps, same loss.
            tokens = tokens[:, : int((tokens != self.data.vocab.pad_id).sum(1).max())]
            yield self.grids[rows], tokens[:, :-1], tokens[:, 1:], style[rows]


def caption_loss(
    model: Captioner,
    batch,
    sample_prob: float = 0.0,
    coverage_weight: float = 0.0,
    sampling_rule: Callable[..., torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Teacher-forced masked cross-entropy of one batch, plus the attention coverage penalty.

    ``sample_prob`` and ``sampling_rule`` are scheduled sampling's (:meth:`Captioner.forward`).

    Returns:
        ``{"loss": total, "xent": the cross-entropy, "coverage": the penalty}``.
    """
    grids, inputs, targets, style = batch
    logits, attention = model(
        grids,
        inputs,
        style,
        sample_prob=sample_prob,
        return_attention=True,
        sampling_rule=sampling_rule,
    )
    xent = masked_cross_entropy(logits, targets, model.pad_id)
    if attention is None or coverage_weight == 0:
        return {"loss": xent, "xent": xent}
    coverage = attention_coverage_penalty(attention, targets != model.pad_id)
    return {"loss": xent + coverage_weight * coverage, "xent": xent, "coverage": coverage}


def train_captioner(
    model: Captioner,
    data: CaptionData,
    grids: torch.Tensor,
    num_epochs: int,
    device: torch.device,
    batch_size: int = 64,
    lr: float = 3e-3,
    style_mix: Sequence[float] = DEFAULT_STYLE_MIX,
    scheduled_sampling: float = 0.0,
    coverage_weight: float = 0.0,
    grad_clip: float | None = 1.0,
    seed: int = 0,
    eval_fn=None,
    progress: bool = True,
    desc: str = "captioner",
    sampling_rule: Callable[..., torch.Tensor] | None = None,
    log_grad_norm: bool = False,
    schedule: str = "one-cycle",
) -> History:
    """Train ``model`` on ``data``'s captions of ``grids``; return the :class:`History`.

    Adam with a one-cycle learning rate; gradients clipped (GRUs over long sequences spike).

    Args:
        model: the captioner.
        data: the training captions.
        grids: ``(N, C, h, w)`` the training images' region grids.
        num_epochs: passes over the images.
        device: where to train.
        batch_size: images per step.
        lr: the peak learning rate.
        style_mix: how often each style prompt is drawn.
        scheduled_sampling: the final chance of feeding the model its own prediction; it rises
            linearly from 0 over training (Bengio et al., 2015). 0 = pure teacher forcing.
        coverage_weight: the weight of
            :func:`~cmlib.captioning.models.attention_coverage_penalty` (attention only).
        grad_clip: the gradient-norm clip; None trains without clipping.
        seed: the batches' order, styles and variants.
        eval_fn: after each epoch, ``eval_fn(model)`` → metrics.
        progress: show a progress bar.
        desc: the progress bar's label.
        sampling_rule: how scheduled sampling builds the fed tokens, ``rule(gold, predicted,
            sample_prob, generator)``; None:
            :func:`~cmlib.captioning.models.scheduled_sampling_inputs`.
        log_grad_norm: log each step's gradient norm before clipping (``steps["grad_norm"]``).
        schedule: the learning rate's schedule, one of :data:`cmlib.optim.schedules.KINDS`
            (warm-ups over 30 % of the steps); ``lr`` is its peak.
    """
    if not isinstance(model, Captioner):
        raise TypeError(f"model must be a Captioner, got {type(model).__name__}")
    check_number("scheduled_sampling", scheduled_sampling, 0.0, 1.0)
    check_number("coverage_weight", coverage_weight, low=0.0)
    if grad_clip is not None:
        check_number("grad_clip", grad_clip, low=0.0, low_open=True)
    if sampling_rule is not None and not callable(sampling_rule):
        raise TypeError(f"sampling_rule must be callable, got {type(sampling_rule).__name__}")
    loader = CaptionBatches(data, grids, batch_size, style_mix, seed)
    optimizer = torch.optim.Adam(model.parameters(), lr)
    total_steps = num_epochs * len(loader)
    scheduler = make_scheduler(optimizer, schedule, total_steps, warmup=0.3)
    steps_done = [0]

    def step(m: Captioner, batch) -> torch.Tensor:
        chance = scheduled_sampling * steps_done[0] / max(1, total_steps - 1)
        steps_done[0] += 1
        return caption_loss(m, batch, chance, coverage_weight, sampling_rule)

    return fit(
        model,
        loader,
        optimizer,
        num_epochs,
        device,
        step_fn=step,
        eval_fn=eval_fn,
        scheduler=scheduler,
        grad_clip=grad_clip,
        progress=progress,
        desc=desc,
        log_grad_norm=log_grad_norm,
    )
