"""The course's one training convention and its one batched-inference helper.

:func:`fit` runs ``num_epochs`` passes over a loader, takes one optimiser step per batch,
shows a tqdm bar that redraws at most once a second, optionally evaluates after each
epoch, and returns a :class:`History`. Every trainer in cmlib returns a :class:`History`:
those whose lesson *is* their loop (the GAN's alternating players, word2vec's hand-written
SGD) write the loop themselves and fill the same record.

A step function returns the loss, or a dict with ``"loss"`` and anything else worth a
curve (``{"loss": elbo, "recon": recon, "kl": kl}``); every value is kept per step in
``History.steps``.

Seeding rule: a chapter calls :func:`cmlib.runtime.seed_everything` once at the top (and
again at the start of a section whose result must not depend on the cells above it).
Trainers that shuffle take a ``seed`` and draw their batch order from their own
``torch.Generator`` (:class:`IndexBatches`); whatever a model draws in its forward pass
(dropout, noise, reparameterisation) comes from the global generator that the chapter seeded.

:func:`predict` is the batched-inference helper: a model (or a bound method such as
``encoder.feature_map``) applied to many inputs in eval mode, batch by batch, concatenated
on the CPU.

Example:
    >>> history = fit(model, loader, torch.optim.Adam(model.parameters(), 1e-3),
    ...               num_epochs=3, device=device(), loss_fn=nn.functional.cross_entropy,
    ...               eval_fn=lambda m: {"acc": accuracy(predict(m, x_test, device()), y_test)})
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from .validate import check_int, check_tensor

Batch = tuple[torch.Tensor, ...] | list[torch.Tensor]

#: Seconds between redraws of a progress bar. In a notebook every redraw is a burst of widget
#: messages; test runners such as nbval read them only after the cell ends, and a flood of them
#: overflows the kernel's message queue (the cell then "times out waiting for output").
PROGRESS_MININTERVAL = 1.0


def progress_bar(iterable=None, total: int | None = None, desc: str = "", disable: bool = False):
    """A ``tqdm.auto`` bar (a widget in notebooks) that redraws at most once a second."""
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        disable=disable,
        leave=True,
        mininterval=PROGRESS_MININTERVAL,
    )


@dataclass
class History:
    """What a training run leaves behind.

    Attributes:
        train_loss: mean training loss of each epoch.
        metrics: the evaluation metrics after each epoch (empty dicts without an ``eval_fn``).
        seconds: wall time of each epoch.
        steps: per-step series, e.g. ``steps["loss"]``, ``steps["kl"]``, ``steps["d_loss"]``.
    """

    train_loss: list[float] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    steps: dict[str, list[float]] = field(default_factory=dict)

    def metric(self, name: str) -> list[float]:
        """One metric across epochs."""
        return [m[name] for m in self.metrics if name in m]

    def log_step(self, values: Mapping[str, float | torch.Tensor]) -> None:
        """Append one step's values to :attr:`steps`."""
        for key, value in values.items():
            number = value.item() if isinstance(value, torch.Tensor) else float(value)
            self.steps.setdefault(key, []).append(number)

    @property
    def total_seconds(self) -> float:
        """Wall time of the whole run."""
        return float(sum(self.seconds))

    @property
    def last(self) -> dict[str, float]:
        """The final epoch's loss and metrics."""
        out = {"train_loss": self.train_loss[-1]} if self.train_loss else {}
        return {**out, **(self.metrics[-1] if self.metrics else {})}

    def __add__(self, other: History) -> History:
        """Two runs one after the other (a warm-up, then the main run)."""
        steps = {
            k: self.steps.get(k, []) + other.steps.get(k, [])
            for k in dict.fromkeys([*self.steps, *other.steps])
        }
        return History(
            self.train_loss + other.train_loss,
            self.metrics + other.metrics,
            self.seconds + other.seconds,
            steps,
        )


class IndexBatches:
    """Shuffled batches of rows, drawn from a generator of their own: a loader for :func:`fit`.

    Each pass draws a fresh permutation of ``range(n)`` and yields its batches. With
    ``tensors`` it yields those tensors' rows, else the indices.

    Args:
        n: number of rows.
        batch_size: rows per batch (at most ``n``).
        seed: seeds the permutation, so the batch order does not touch the global generator.
        tensors: tensors with ``n`` rows to slice, e.g. ``(images, labels)``.
        drop_last: drop the last, partial batch (every step then sees ``batch_size`` rows).
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int = 0,
        tensors: Sequence[torch.Tensor] | None = None,
        drop_last: bool = True,
    ):
        check_int("n", n)
        check_int("batch_size", batch_size, 1, n if drop_last else None)
        self.n, self.batch_size, self.tensors = n, batch_size, tuple(tensors or ())
        self.drop_last = drop_last
        for i, t in enumerate(self.tensors):
            check_tensor(f"tensors[{i}]", t)
            if len(t) != n:
                raise ValueError(f"tensors[{i}] has {len(t)} rows, expected {n}")
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator:
        for idx in shuffled_batches(self.n, self.batch_size, self.generator, self.drop_last):
            yield tuple(t[idx] for t in self.tensors) if self.tensors else idx


def shuffled_batches(
    n: int, batch_size: int, generator: torch.Generator, drop_last: bool = True
) -> Iterator[torch.Tensor]:
    """Index tensors covering a fresh permutation of ``range(n)``, ``batch_size`` at a time.

    With ``drop_last`` the last, partial batch is left out.
    """
    order = torch.randperm(n, generator=generator)
    stop = n - batch_size + 1 if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def endless_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches of ``range(n)`` without end: a fresh permutation after each pass.

    For trainers counted in steps rather than epochs (CycleGAN, DANN), each drawing from two
    datasets of different sizes.
    """
    while True:
        yield from shuffled_batches(n, batch_size, generator)


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


def _split_step(out) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A step's result as ``(loss, values to log)``."""
    if isinstance(out, torch.Tensor):
        return out, {"loss": out}
    if isinstance(out, Mapping) and "loss" in out:
        return out["loss"], dict(out)
    raise TypeError(
        f"a step must return the loss tensor or a dict with 'loss', got {type(out).__name__}"
    )


def fit(
    model: nn.Module,
    train_loader: Iterable,
    optimizer: torch.optim.Optimizer,
    num_epochs: int,
    device: torch.device,
    loss_fn: Callable | None = None,
    step_fn: Callable[[nn.Module, Batch], torch.Tensor | Mapping[str, torch.Tensor]] | None = None,
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    grad_clip: float | None = None,
    progress: bool = True,
    desc: str = "train",
    after_backward: Callable[[nn.Module], None] | None = None,
    log_grad_norm: bool = False,
) -> History:
    """Train ``model`` and return its history.

    Args:
        model: the network (or a ``ModuleDict`` of everything that trains); moved to ``device``.
        train_loader: yields batches (tuples of tensors, target last, for the default step).
        optimizer: updates the parameters.
        num_epochs: passes over ``train_loader``.
        device: where to train.
        loss_fn: ``loss_fn(output, target)``, used by the default step.
        step_fn: ``step_fn(model, batch)`` → the loss, or a dict with ``"loss"`` and other values
            to log per step; give this or ``loss_fn``.
        eval_fn: called in eval mode under ``no_grad`` after each epoch; returns metrics.
        scheduler: stepped once per batch.
        grad_clip: clip the gradient norm to this value.
        progress: show a tqdm bar.
        desc: the bar's label.
        after_backward: ``after_backward(model)``, called after each backward pass and before
            the clipping and the optimiser's step: to change the gradients (chapter 09's
            gradient modulation).
        log_grad_norm: log each step's total gradient norm, before any clipping, as
            ``history.steps["grad_norm"]`` (chapter 09's gradient clipping).
    """
    if (loss_fn is None) == (step_fn is None):
        raise ValueError("fit needs exactly one of loss_fn or step_fn")
    check_int("num_epochs", num_epochs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    step = step_fn or (lambda m, b: supervised_step(m, b, loss_fn))
    model.to(device)
    history = History()
    total = num_epochs * len(train_loader) if hasattr(train_loader, "__len__") else None
    bar = progress_bar(total=total, desc=desc, disable=not progress)
    for epoch in range(num_epochs):
        start, loss_sum, count = time.perf_counter(), 0.0, 0
        model.train()
        for batch in train_loader:
            loss, logged = _split_step(step(model, to_device(batch, device)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if after_backward is not None:
                after_backward(model)
            if grad_clip is not None:
                # clip_grad_norm_ returns the norm it measured before clipping.
                norm = nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            elif log_grad_norm:
                grads = [p.grad for p in model.parameters() if p.grad is not None]
                norm = nn.utils.get_total_norm(grads)
            if log_grad_norm:
                logged = {**logged, "grad_norm": norm}
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            history.log_step(logged)
            loss_sum, count = loss_sum + history.steps["loss"][-1], count + 1
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
            bar.set_postfix(
                epoch=epoch + 1,
                loss=f"{loss_sum / count:.4f}",
                **{k: f"{v:.3f}" for k, v in metrics.items()},
            )
        history.metrics.append(metrics)
        history.seconds.append(time.perf_counter() - start)
    bar.close()
    model.eval()
    return history


class _FirstSteps:
    """The first ``num_steps`` batches of an endless iterator, as a sized loader for :func:`fit`."""

    def __init__(self, batches: Iterator, num_steps: int):
        self.batches, self.num_steps = batches, num_steps

    def __len__(self) -> int:
        return self.num_steps

    def __iter__(self) -> Iterator:
        for _ in range(self.num_steps):
            yield next(self.batches)


def fit_steps(
    model: nn.Module,
    batches: Iterator,
    optimizer: torch.optim.Optimizer,
    num_steps: int,
    device: torch.device,
    step_fn: Callable[[nn.Module, Batch], torch.Tensor | Mapping[str, torch.Tensor]],
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    grad_clip: float | None = None,
    progress: bool = True,
    desc: str = "train",
    after_backward: Callable[[nn.Module], None] | None = None,
    log_grad_norm: bool = False,
) -> History:
    """:func:`fit` for trainers counted in steps rather than epochs (a GAN, DANN, a paired bound).

    ``num_steps`` batches are drawn from ``batches``, an endless iterator (e.g. built on
    :func:`endless_batches`); the run is one epoch of the returned :class:`History`, with every
    value ``step_fn`` logs in ``history.steps``.

    Args:
        model: the network (or a ``ModuleDict`` of everything that trains).
        batches: yields one batch per step, without end.
        optimizer: updates the parameters.
        num_steps: updates.
        device: where to train.
        step_fn: ``step_fn(model, batch)`` → the loss, or a dict with ``"loss"`` and other values.
        scheduler: stepped once per step.
        grad_clip: clip the gradient norm to this value.
        progress: show a tqdm bar.
        desc: the bar's label.
        after_backward: as in :func:`fit`.
        log_grad_norm: as in :func:`fit`.
    """
    check_int("num_steps", num_steps)
    if not isinstance(batches, Iterator):
        raise TypeError(f"batches must be an iterator, got {type(batches).__name__}")
    return fit(
        model,
        _FirstSteps(batches, num_steps),
        optimizer,
        1,
        device,
        step_fn=step_fn,
        scheduler=scheduler,
        grad_clip=grad_clip,
        progress=progress,
        desc=desc,
        after_backward=after_backward,
        log_grad_norm=log_grad_norm,
    )


def _concat(outputs: list):
    first = outputs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(outputs)
    if isinstance(first, Mapping):
        return {k: torch.cat([o[k] for o in outputs]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(torch.cat(parts) for parts in zip(*outputs))
    raise TypeError(
        f"predict: fn must return tensors (or a dict or tuple of them), got {type(first).__name__}"
    )


def _to_cpu(out):
    if isinstance(out, torch.Tensor):
        return out.cpu()
    if isinstance(out, Mapping):
        return {k: v.cpu() for k, v in out.items()}
    if isinstance(out, (tuple, list)):
        return type(out)(v.cpu() for v in out)
    return out


@torch.no_grad()
def predict(
    fn: Callable,
    inputs: torch.Tensor | Sequence[torch.Tensor],
    device: torch.device | str,
    batch_size: int = 512,
):
    """``fn(batch)`` over ``inputs`` in batches, in eval mode, concatenated on the CPU.

    Args:
        fn: a module, or a bound method of one such as ``encoder.feature_map``; its module is
            put in eval mode and moved to ``device``.
        inputs: a tensor, or a tuple of tensors with the same number of rows (sliced together
            and passed as separate arguments).
        device: where to compute.
        batch_size: rows per call.

    Returns:
        What ``fn`` returns (a tensor, or a dict or tuple of tensors), for all rows, on the CPU.
    """
    tensors = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    if not tensors:
        raise ValueError("predict needs at least one input tensor")
    for i, t in enumerate(tensors):
        check_tensor("inputs" if len(tensors) == 1 else f"inputs[{i}]", t, nonempty=True)
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(
            f"inputs must have the same number of rows, got {[len(t) for t in tensors]}"
        )
    check_int("batch_size", batch_size)
    owner = fn if isinstance(fn, nn.Module) else getattr(fn, "__self__", None)
    if isinstance(owner, nn.Module):
        owner.eval().to(device)
    outputs = [
        _to_cpu(fn(*(t[i : i + batch_size].to(device) for t in tensors)))
        for i in range(0, n, batch_size)
    ]
    return _concat(outputs)


def accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Share of rows whose arg-max equals ``target``."""
    check_tensor("logits", logits, ("N", "C"))
    check_tensor("target", target, (len(logits),))
    return (logits.argmax(1) == target).float().mean().item()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
