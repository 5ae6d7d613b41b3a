"""Mixed precision: the forward pass in bfloat16 under ``torch.autocast``, the loss in float32.

bfloat16 (bf16) keeps float32's 8 exponent bits and drops 16 of its 23 mantissa bits: the same
range of magnitudes, and between two and three significant decimal digits. So, unlike
float16, whose small gradients underflow to 0, it needs no loss scaling. Under
``torch.autocast`` PyTorch runs the operations that profit from it (convolutions, matrix
products) in bf16 and keeps some that need precision in float32: the losses on a CPU, and on a
GPU also softmax and layer and group normalisation (each device has its own lists); the
operations between them run in bf16 on the tensors they receive. The weights, their gradients,
batch normalisation's statistics and the optimiser's state stay float32. Chapter 09
part 5 measures its speed and its accuracy on a CPU; chapter 10 uses it on GPUs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from ..validate import check_choice

#: the precisions a step can run in
PRECISIONS = ("fp32", "bf16")


def autocast(device: torch.device | str, precision: str):
    """A context manager: ``precision`` ``"bf16"`` runs the block under bf16 autocast on
    ``device``'s type, ``"fp32"`` changes nothing."""
    check_choice("precision", precision, PRECISIONS)
    device_type = torch.device(device).type
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


def in_precision(
    step_fn: Callable[[nn.Module, object], torch.Tensor | Mapping[str, torch.Tensor]],
    device: torch.device | str,
    precision: str,
) -> Callable:
    """``step_fn`` run under :func:`autocast`, its loss (and logged values) in float32.

    Args:
        step_fn: ``step_fn(model, batch)`` → the loss, or a dict with ``"loss"`` (as in
            :func:`cmlib.train.fit`).
        device: where the step runs.
        precision: one of :data:`PRECISIONS`.

    Returns:
        A step with the same signature, for :func:`cmlib.train.fit`. The backward pass runs
        outside the context, as autocast expects: each operation's gradient runs in the
        precision its forward ran in.
    """
    if not callable(step_fn):
        raise TypeError(f"step_fn must be callable, got {type(step_fn).__name__}")
    check_choice("precision", precision, PRECISIONS)

    def step(model: nn.Module, batch):
        with autocast(device, precision):
            out = step_fn(model, batch)
        if isinstance(out, torch.Tensor):
            return out.float()
        return {
            key: value.float() if isinstance(value, torch.Tensor) else value
            for key, value in out.items()
        }

    return step
