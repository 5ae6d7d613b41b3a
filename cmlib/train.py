"""A small, readable training loop (nanoGPT-style: the model lives elsewhere).

:func:`fit` runs ``num_epochs`` passes over a loader, shows a tqdm progress
bar with the running loss, optionally evaluates after each epoch, and returns
a :class:`History`. Chapters whose lesson *is* the loop (GANs, say) write
their own.

Example:
    >>> history = fit(model, loader, loss_fn=nn.functional.cross_entropy,
    ...               optimizer=torch.optim.Adam(model.parameters(), 1e-3),
    ...               num_epochs=3, device=device(), eval_fn=lambda m: {"acc": accuracy(m)})
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

Batch = tuple[torch.Tensor, ...] | list[torch.Tensor]

#: Seconds between redraws of a progress bar. In a notebook every redraw is a burst of widget
#: messages; test runners such as nbval read them only after the cell ends, and a flood of them
#: overflows the kernel's message queue (the cell then "times out waiting for output").
PROGRESS_MININTERVAL = 1.0


def progress_bar(iterable=None, total: int | None = None, desc: str = "", disable: bool = False):
    """A ``tqdm.auto`` bar (a widget in notebooks) that redraws at most once a second."""
    return tqdm(iterable, total=total, desc=desc, disable=disable, leave=True,
                mininterval=PROGRESS_MININTERVAL)


@dataclass
class History:
    """Per-epoch records: mean training loss, evaluation metrics and seconds."""

    train_loss: list[float] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def metric(self, name: str) -> list[float]:
        """One metric across epochs."""
        return [m[name] for m in self.metrics if name in m]

    @property
    def last(self) -> dict[str, float]:
        """The final epoch's loss and metrics."""
        out = {"train_loss": self.train_loss[-1]} if self.train_loss else {}
        return {**out, **(self.metrics[-1] if self.metrics else {})}


def to_device(batch, device: torch.device):
    """Move a tensor, or a tuple/list/dict of them, to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def supervised_step(model: nn.Module, batch: Batch, loss_fn: Callable) -> torch.Tensor:
    """The default step: ``loss_fn(model(*inputs), target)`` with the target last in the batch."""
    *inputs, target = batch
    return loss_fn(model(*inputs), target)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    optimizer: torch.optim.Optimizer,
    num_epochs: int,
    device: torch.device,
    loss_fn: Callable | None = None,
    step_fn: Callable[[nn.Module, Batch], torch.Tensor] | None = None,
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    grad_clip: float | None = None,
    progress: bool = True,
    desc: str = "train",
) -> History:
    """Train ``model`` and return its history.

    Args:
        model: the network; it is moved to ``device``.
        train_loader: yields batches (tuples of tensors, target last, for the default step).
        optimizer: updates the model's parameters.
        num_epochs: passes over ``train_loader``.
        device: where to train.
        loss_fn: ``loss_fn(output, target)``, used by the default step.
        step_fn: ``step_fn(model, batch) -> loss``, for anything else; give this or ``loss_fn``.
        eval_fn: called in eval mode under ``no_grad`` after each epoch; returns metrics.
        scheduler: stepped once per batch.
        grad_clip: clip the gradient norm to this value.
        progress: show a tqdm bar.
        desc: the bar's label.
    """
    if (loss_fn is None) == (step_fn is None):
        raise ValueError("fit needs exactly one of loss_fn or step_fn")
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive int, got {num_epochs!r}")
    step = step_fn or (lambda m, b: supervised_step(m, b, loss_fn))
    model.to(device)
    history = History()
    total = num_epochs * len(train_loader) if hasattr(train_loader, "__len__") else None
    bar = progress_bar(total=total, desc=desc, disable=not progress)
    for epoch in range(num_epochs):
        start, loss_sum, count = time.perf_counter(), 0.0, 0
        model.train()
        for batch in train_loader:
            loss = step(model, to_device(batch, device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss_sum, count = loss_sum + loss.item(), count + 1
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss_sum / count:.4f}", refresh=False)
        if count == 0:
            raise ValueError("train_loader yielded no batches")
        history.train_loss.append(loss_sum / count)
        metrics: dict[str, float] = {}
        if eval_fn is not None:
            model.eval()
            with torch.no_grad():
                metrics = {k: float(v) for k, v in eval_fn(model).items()}
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss_sum / count:.4f}",
                            **{k: f"{v:.3f}" for k, v in metrics.items()})
        history.metrics.append(metrics)
        history.seconds.append(time.perf_counter() - start)
    bar.close()
    model.eval()
    return history


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, device: torch.device,
            batch_size: int = 512) -> torch.Tensor:
    """``model(inputs)`` in eval mode, batched, concatenated on the CPU."""
    model.eval().to(device)
    outs = [model(inputs[i:i + batch_size].to(device)).cpu()
            for i in range(0, len(inputs), batch_size)]
    return torch.cat(outs)


def accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Share of rows whose arg-max equals ``target``."""
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (N, C) and target (N,), got {tuple(logits.shape)} "
                         f"and {tuple(target.shape)}")
    return (logits.argmax(1) == target).float().mean().item()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
