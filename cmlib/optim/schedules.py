"""Learning-rate schedules: constant, cosine decay, and either one after a linear warm-up.

Chapter 09 part 5 compares them on one model. Most trainers in the course use PyTorch's
``OneCycleLR``, which is itself a warm-up followed by a cosine decay (and, with Adam, a cycle
of β₁ the other way); the schedules here take it apart so that each half can be measured:

* the **warm-up** (预热) raises the rate linearly from near 0 over the first steps. Adam's
  first updates are about ``lr`` in size whatever the gradient's scale, and a fresh network's
  first gradients point in poor directions, so a large rate at step 0 can throw the weights
  somewhere the rest of training must climb back from;
* the **cosine decay** (余弦衰减) lowers the rate to near 0 by the last step, so the run ends
  on a settled model instead of wherever a constant rate's last noisy step left it.

A schedule is a factor on the optimiser's rate, ``lr_factor(kind, step, total_steps)``, which
:func:`make_scheduler` wraps in a ``LambdaLR``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..validate import check_choice, check_int, check_number

#: the schedules :func:`lr_factor` knows
SCHEDULES = ("constant", "cosine", "warmup-constant", "warmup-cosine")
#: what :func:`make_scheduler` builds: those, and PyTorch's one-cycle (the course's default)
KINDS = (*SCHEDULES, "one-cycle")


def lr_factor(
    kind: str, step: int, total_steps: int, warmup: float = 0.1, final: float = 0.0
) -> float:
    """The factor on the peak learning rate at ``step`` (0-based) of ``total_steps``.

    Args:
        kind: one of :data:`SCHEDULES`.
        step: the update about to be made, ``0 <= step < total_steps``.
        total_steps: the run's updates.
        warmup: the share of the steps over which a ``warmup-`` schedule rises linearly
            towards 1 (``W`` steps: ``1/(W+1), 2/(W+1), …, W/(W+1)``, then 1).
        final: the factor a cosine decay ends at.

    Returns:
        A float in ``(0, 1]`` (or ``[final, 1]`` once the cosine decay has begun).
    """
    check_choice("kind", kind, SCHEDULES)
    check_int("total_steps", total_steps, minimum=1)
    check_int("step", step, minimum=0)
    if step >= total_steps:
        raise ValueError(f"step must be below total_steps={total_steps}, got {step}")
    check_number("warmup", warmup, low=0.0, high=1.0, high_open=True)
    check_number("final", final, low=0.0, high=1.0)
    warmup_steps = round(warmup * total_steps) if kind.startswith("warmup-") else 0
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if not kind.endswith("cosine"):
        return 1.0
    # the decay runs from the first step after the warm-up to the last step
    progress = (step - warmup_steps) / max(1, total_steps - 1 - warmup_steps)
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(total_steps: int, warmup_steps: int) -> torch.Tensor:
    """Every step's factor for a warm-up of ``warmup_steps`` and a cosine decay to 0 (exercise
    9.6).

    Returns:
        ``(total_steps,)`` float64: :func:`lr_factor` ``("warmup-cosine", …)`` at every step.
    """
    check_int("total_steps", total_steps)
    check_int("warmup_steps", warmup_steps, minimum=0)
    if warmup_steps >= total_steps:
        raise ValueError(
            f"warmup_steps must be below total_steps={total_steps}, got {warmup_steps}"
        )
    share = warmup_steps / total_steps
    return torch.tensor(
        [lr_factor("warmup-cosine", s, total_steps, share) for s in range(total_steps)],
        dtype=torch.float64,
    )


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    kind: str | Sequence[float] | torch.Tensor,
    total_steps: int,
    warmup: float = 0.1,
    final: float = 0.0,
) -> torch.optim.lr_scheduler.LRScheduler:
    """The scheduler of ``kind``; step it once per update.

    Args:
        optimizer: its rate is the schedule's peak.
        kind: one of :data:`KINDS`, or every step's factor (``total_steps`` numbers, such as
            exercise 9.6's). ``"one-cycle"`` is PyTorch's ``OneCycleLR`` with its defaults
            (from a 25th of the peak up over ``warmup`` of the steps, then a cosine down to
            nearly 0, and β₁ or momentum cycled the other way); the other names follow
            :func:`lr_factor` through a ``LambdaLR``.
        total_steps: the run's updates.
        warmup: the warm-up's share of the steps (``warmup-`` schedules and one-cycle).
        final: the factor a cosine decay ends at (not one-cycle).
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch optimizer, got {type(optimizer).__name__}")
    check_int("total_steps", total_steps, minimum=1)
    last = total_steps - 1
    if not isinstance(kind, str):
        factors = _factors(kind, total_steps)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factors[min(step, last)])
    check_choice("kind", kind, KINDS)
    if kind == "one-cycle":
        check_number("warmup", warmup, low=0.0, high=1.0, low_open=True, high_open=True)
        peaks = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=peaks, total_steps=total_steps, pct_start=warmup
        )
    lr_factor(kind, 0, total_steps, warmup, final)  # check the arguments once, here

    def factor(step: int) -> float:
        # LambdaLR also evaluates one step past the end after the last update
        return lr_factor(kind, min(step, last), total_steps, warmup, final)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _factors(values, total_steps: int) -> list[float]:
    """A schedule given as every step's factor, checked: ``total_steps`` finite numbers ≥ 0."""
    if not isinstance(values, (torch.Tensor, Sequence)):
        raise TypeError(
            f"a schedule must be one of {KINDS} or every step's factor, got {type(values).__name__}"
        )
    factors = torch.as_tensor(values, dtype=torch.float64)
    if factors.shape != (total_steps,):
        raise ValueError(
            f"need one factor per step, shape ({total_steps},), got {tuple(factors.shape)}"
        )
    if not torch.isfinite(factors).all() or (factors < 0).any():
        raise ValueError("every factor must be a finite number >= 0")
    return factors.tolist()
