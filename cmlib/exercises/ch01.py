"""Chapter 01 exercises: conv arithmetic, a convolution with ``unfold`` (1.2, a build exercise:
the chapter trains a small CNN on it), max-pooling, and 1.4, a predict-then-run question about
that CNN."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..vision import conv_output_size
from . import Exercise, register, register_prediction


# ------------------------------------------------------------- 1.1 output size of a conv/pool stack
def stack_output_size(size: int, layers: list[tuple[int, int, int]]) -> int:
    """Height after a stack of conv/pool layers, each ``(kernel_size, stride, padding)``."""
    for kernel_size, stride, padding in layers:
        size = conv_output_size(size, kernel_size, stride, padding)
    return size


def _random_stack(rng: np.random.Generator) -> tuple[int, list[tuple[int, int, int]]]:
    while True:
        size = int(rng.integers(24, 97))
        layers = []
        for _ in range(int(rng.integers(2, 5))):
            if rng.random() < 0.4:
                layers.append((2, 2, 0))  # a 2x2 max-pool
            else:
                kernel = int(rng.choice([1, 3, 5]))
                layers.append(
                    (kernel, int(rng.choice([1, 1, 2])), int(rng.integers(0, kernel // 2 + 1)))
                )
        try:
            stack_output_size(size, layers)
        except ValueError:  # a kernel did not fit: redraw
            continue
        return size, layers


def _no_floor(size, layers):  # forgets that PyTorch rounds down at every layer
    value = float(size)
    for k, s, p in layers:
        value = (value + 2 * p - k) / s + 1
    return int(round(value))


def _no_padding(size, layers):  # ignores the padding
    for k, s, _ in layers:
        size = (size - k) // s + 1
    return size


def _no_plus_one(size, layers):  # forgets the +1
    for k, s, p in layers:
        size = (size + 2 * p - k) // s
    return size


register(
    Exercise(
        id="1.1",
        title="output size of a conv/pool stack",
        hint="one layer gives floor((size + 2*padding - kernel_size) / stride) + 1; apply it layer "
        "after layer, rounding down each time",
        reference=stack_output_size,
        make_inputs=_random_stack,
        wrong_answers=(_no_floor, _no_padding, _no_plus_one),
        trials=30,
        atol=0,
    )
)


# ----------------------------------------------------------------- 1.2 a convolution with unfold
def conv2d_unfold(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``F.conv2d(x, weight, bias)`` (stride 1, no padding) as unfold + matrix product.

    Args:
        x: ``(B, C_in, H, W)``.
        weight: ``(C_out, C_in, k, k)``.
        bias: ``(C_out,)``.

    Returns:
        ``(B, C_out, H - k + 1, W - k + 1)``.
    """
    b, _, h, w = x.shape
    c_out, _, k, _ = weight.shape
    patches = F.unfold(x, k)  # (B, C_in*k*k, L)
    out = weight.reshape(c_out, -1) @ patches + bias[:, None]  # (B, C_out, L)
    return out.reshape(b, c_out, h - k + 1, w - k + 1)


def _random_conv_inputs(rng: np.random.Generator):
    g = torch.Generator().manual_seed(int(rng.integers(2**31)))
    b, c_in, c_out, k = (
        int(rng.integers(1, 4)),
        int(rng.integers(1, 4)),
        int(rng.integers(1, 5)),
        int(rng.choice([1, 3, 5])),
    )
    h, w = int(rng.integers(k + 2, 12)), int(rng.integers(k + 2, 12))
    return (
        torch.randn(b, c_in, h, w, generator=g),
        torch.randn(c_out, c_in, k, k, generator=g),
        torch.randn(c_out, generator=g),
    )


def _conv_case() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(12)
    return (
        torch.randn(1, 2, 7, 6, generator=g),
        torch.randn(3, 2, 3, 3, generator=g),
        torch.randn(3, generator=g),
    )


def _flipped_kernel(x, weight, bias):  # a "true" convolution: PyTorch's conv2d does not flip
    return conv2d_unfold(x, weight.flip(-1, -2), bias)


def _no_bias(x, weight, bias):
    return conv2d_unfold(x, weight, torch.zeros_like(bias))


def _transposed_weight(
    x, weight, bias
):  # weight.reshape(-1, C_out).T: the right shape, wrong order
    c_out, _, k, _ = weight.shape
    b, _, h, w = x.shape
    out = weight.reshape(-1, c_out).T @ F.unfold(x, k) + bias[:, None]
    return out.reshape(b, c_out, h - k + 1, w - k + 1)


def _detached_weight(x, weight, bias):  # the right output; the weight would never learn
    return conv2d_unfold(x, weight.detach(), bias)


register(
    Exercise(
        id="1.2",
        title="a conv layer's forward pass with unfold",
        hint="F.unfold(x, k) gives (B, C_in*k*k, L) patches; multiply by "
        "weight.reshape(C_out, -1), add bias[:, None], reshape to (B, C_out, H-k+1, W-k+1). "
        "Do not flip the kernel.",
        reference=conv2d_unfold,
        make_inputs=_random_conv_inputs,
        wrong_answers=(_flipped_kernel, _no_bias, _transposed_weight, _detached_weight),
        # always one case with several channels, a 3x3 kernel and a batch of 1: a flipped kernel
        # or a transposed weight matrix can look right with one output channel or a 1x1 kernel
        cases=(_conv_case(),),
        atol=1e-4,
        gradients=True,  # a build exercise: chapter 01 trains a CNN on it
    )
)


# ----------------------------------------------------------------- 1.3 max-pooling
def max_pool2x2(x: torch.Tensor) -> torch.Tensor:
    """2×2 max-pooling with stride 2 (odd rows/columns dropped), like ``F.max_pool2d(x, 2)``."""
    b, c, h, w = x.shape
    x = x[:, :, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(b, c, h // 2, 2, w // 2, 2).amax(dim=(3, 5))


def _random_maps(rng: np.random.Generator):
    g = torch.Generator().manual_seed(int(rng.integers(2**31)))
    shape = (
        int(rng.integers(1, 4)),
        int(rng.integers(1, 4)),
        int(rng.integers(2, 13)),
        int(rng.integers(2, 13)),
    )
    return (torch.randn(*shape, generator=g),)


register(
    Exercise(
        id="1.3",
        title="2x2 max-pooling",
        hint="crop to even H and W, reshape to (B, C, H/2, 2, W/2, 2) and take the max over "
        "the two size-2 axes",
        reference=max_pool2x2,
        make_inputs=_random_maps,
        wrong_answers=(
            lambda x: F.avg_pool2d(x, 2),  # average, not max
            lambda x: F.max_pool2d(x, 2, stride=1),  # overlapping windows
        ),
    )
)


# ----------------------------------------------------------------- 1.4 predict, then run
register_prediction(
    "1.4",
    "the test accuracy of the small CNN that convolves with your function, after 4 epochs",
    {
        "a": "below 0.90, about the linear classifier on pixels (0.89)",
        "b": "between 0.90 and 0.95",
        "c": "at least 0.95",
    },
    "c",  # backed by the checkpoint your-conv-cnn-accuracy (>= 0.95)
)
