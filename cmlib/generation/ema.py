"""An exponential moving average (EMA, 指数移动平均) of a generator's weights, and scoring it
in the middle of training.

A GAN's players oscillate; the average of the generator's recent weights draws steadier samples
than its last step (:func:`cmlib.generation.gan_training.train_cgan` keeps one).
:class:`WeightAverage` holds the average; :func:`evaluate_during_training` scores the model
training would return at that step, then puts everything back as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from ..validate import check_number


class WeightAverage:
    """The running average ``a ← decay · a + (1 − decay) · p`` of some parameters.

    Args:
        params: the tensors to average (e.g. a generator's and its prompt encoder's parameters).
        decay: in (0, 1); 0.99 averages over about the last 100 updates.
    """

    def __init__(self, params: Sequence[torch.Tensor], decay: float):
        check_number("decay", decay, 0.0, 1.0, low_open=True, high_open=True)
        self.params, self.decay = list(params), float(decay)
        self.values = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        """Fold the parameters' current values into the average (after each optimiser step)."""
        for average, p in zip(self.values, self.params):
            average.lerp_(p, 1.0 - self.decay)

    @torch.no_grad()
    def copy_to_params(self) -> None:
        """Load the average into the parameters (at the end of training)."""
        for average, p in zip(self.values, self.params):
            p.copy_(average)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Inside the block the parameters hold the average; afterwards their own values again,
        even if the block raised."""
        saved = [p.detach().clone() for p in self.params]
        self.copy_to_params()
        try:
            yield
        finally:
            with torch.no_grad():
                for value, p in zip(saved, self.params):
                    p.copy_(value)


@contextlib.contextmanager
def evaluating(modules: Sequence[nn.Module]) -> Iterator[None]:
    """``modules`` in eval mode inside the block (no batch-norm statistics or spectral-norm power
    iterations updated), each back in its own mode afterwards, even if the block raised."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


def evaluate_during_training(
    evaluate: Callable[[int], dict[str, float]],
    step: int,
    modules: Sequence[nn.Module],
    average: WeightAverage | None,
    device: torch.device,
) -> dict[str, float]:
    """``evaluate(step)`` on the model training would return now: the average's weights (if
    any), ``modules`` in eval mode, and a forked random state (CPU, and ``device`` when it is a
    GPU), so that scoring cannot change the run. Everything is restored afterwards.

    Raises:
        TypeError: if ``evaluate`` does not return a dict of numbers.
    """
    devices = [device] if device.type == "cuda" else []
    averaged = average.applied() if average is not None else contextlib.nullcontext()
    with averaged, evaluating(modules), torch.random.fork_rng(devices=devices), torch.no_grad():
        metrics = evaluate(step)
    if not isinstance(metrics, dict):
        raise TypeError(f"evaluate must return a dict of numbers, got {type(metrics).__name__}")
    try:
        return {str(k): float(v) for k, v in metrics.items()}
    except (TypeError, ValueError) as err:
        raise TypeError(f"evaluate must return a dict of numbers, got {metrics!r}") from err
