"""Perturbations that keep what an image shows: a little noise, a 3×3 blur, a one-pixel shift.

A referee that scores generated images must read *content*: colour and shape. A generator's
output is never pixel-perfect, so a referee that reads clean true images perfectly but misreads
them once slightly blurred is scoring sharpness, not content. This module gives both sides of
the fix:

* :data:`PERTURBATIONS` — the fixed perturbations a referee is tested on (``noise`` of std
  0.05, a 3×3 ``blur``, a one-pixel ``shift``); a robust referee reads true images under each
  about as well as clean ones;
* :func:`content_keeping` — the random mix of them that a referee is trained with.

Every random draw is made on the CPU from ``generator`` and then moved to the images' device,
so a run gives the same perturbations on any device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .validate import check_int, check_number, check_tensor


def _check_generator(generator: torch.Generator | None) -> None:
    if generator is not None and (
        not isinstance(generator, torch.Generator) or generator.device.type != "cpu"
    ):
        raise TypeError(f"generator must be a CPU torch.Generator or None, got {generator!r}")


def add_noise(
    images: torch.Tensor, std: float | torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Gaussian pixel noise of standard deviation ``std`` (a number, or ``(B,)`` one per image),
    clamped back to [0, 1]."""
    check_tensor("images", images, ("B", "C", "H", "W"), floating=True)
    _check_generator(generator)
    if not isinstance(std, torch.Tensor):
        check_number("std", std, 0.0)
    elif std.shape != (len(images),):
        raise ValueError(f"std must be a number or ({len(images)},), got {tuple(std.shape)}")
    elif not bool(torch.isfinite(std).all()) or bool((std < 0).any()):
        raise ValueError(f"std must be finite and >= 0, got {std.tolist()}")
    std = torch.as_tensor(std, dtype=images.dtype).reshape(-1, 1, 1, 1).to(images.device)
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype).to(images.device)
    return (images + std * noise).clamp(0.0, 1.0)


def box_blur(images: torch.Tensor, size: int = 3) -> torch.Tensor:
    """Each pixel replaced by the mean of the ``size × size`` square around it (edges repeated).

    Args:
        images: ``(B, C, H, W)``.
        size: an odd window size.
    """
    check_tensor("images", images, ("B", "C", "H", "W"), floating=True)
    check_int("size", size, minimum=1)
    if size % 2 == 0:
        raise ValueError(f"size must be odd, got {size}")
    channels, r = images.shape[1], size // 2
    kernel = images.new_full((channels, 1, size, size), 1.0 / size**2)
    return F.conv2d(F.pad(images, (r, r, r, r), mode="replicate"), kernel, groups=channels)


def shift(images: torch.Tensor, dy: int | torch.Tensor, dx: int | torch.Tensor) -> torch.Tensor:
    """Move images by ``dy`` rows down and ``dx`` columns right, at most one pixel each (the
    edge pixels are repeated into the gap, so a plain background stays plain).

    Args:
        images: ``(B, C, H, W)``.
        dy, dx: each in {-1, 0, 1}: one number for all images, or ``(B,)`` one per image.
    """
    check_tensor("images", images, ("B", "C", "H", "W"), floating=True)
    b, _, h, w = images.shape
    offsets = []
    for name, value in (("dy", dy), ("dx", dx)):
        value = torch.as_tensor(value)
        if value.is_floating_point() or value.dtype == torch.bool:
            raise TypeError(f"{name} must be whole pixels (int), got {value.dtype}")
        if value.ndim > 1 or value.numel() not in (1, b):
            raise ValueError(
                f"{name} must be one value or one per image ({b}), got shape {tuple(value.shape)}"
            )
        if bool((value.abs() > 1).any()):
            raise ValueError(f"{name} must be in {{-1, 0, 1}}, got {value.tolist()}")
        offsets.append(value.long().reshape(-1).expand(b).to(images.device))
    padded = F.pad(images, (1, 1, 1, 1), mode="replicate")
    rows = torch.arange(h, device=images.device)[None, :] + 1 - offsets[0][:, None]  # (B, H)
    cols = torch.arange(w, device=images.device)[None, :] + 1 - offsets[1][:, None]  # (B, W)
    batch = torch.arange(b, device=images.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


#: The perturbations a referee is tested on: ``f(images, generator)``.
PERTURBATIONS: dict[str, Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]] = {
    "noise": lambda x, g: add_noise(x, 0.05, g),
    "blur": lambda x, g: box_blur(x, 3),
    "shift": lambda x, g: shift(x, 1, 1),
}


def readings(
    read: Callable[[torch.Tensor], float], images: torch.Tensor, seed: int = 0
) -> dict[str, float]:
    """How a referee reads ``images`` clean and under each of :data:`PERTURBATIONS`.

    Args:
        read: images → a score, e.g. the share a judge reads right.
        images: ``(B, C, H, W)`` true images in [0, 1].
        seed: each perturbation draws from a CPU generator seeded with it (the same noise for
            every referee read with the same seed).

    Returns:
        ``{"clean": …, "noise": …, "blur": …, "shift": …}``.
    """
    if not callable(read):
        raise TypeError(f"read must be callable, got {type(read).__name__}")
    check_tensor("images", images, ("B", "C", "H", "W"), floating=True)
    check_int("seed", seed, minimum=0)
    out = {"clean": float(read(images))}
    for name, perturbation in PERTURBATIONS.items():
        out[name] = float(read(perturbation(images, torch.Generator().manual_seed(seed))))
    return out


def content_keeping(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    p: float = 0.5,
    max_noise: float = 0.08,
) -> torch.Tensor:
    """Data augmentation for a referee: each image, independently, is blurred (3×3) with
    probability ``p / 2``, shifted by up to one pixel along each axis with probability ``p``, and
    gets noise of a random std up to ``max_noise`` with probability ``p``.

    Colour and shape survive all three, so the labels stay true.

    Args:
        images: ``(B, C, H, W)`` in [0, 1].
        generator: for reproducible draws (on the CPU).
        p: how often each perturbation is applied.
        max_noise: the largest noise std.

    Returns:
        A new ``(B, C, H, W)`` batch.
    """
    check_tensor("images", images, ("B", "C", "H", "W"), floating=True)
    _check_generator(generator)
    check_number("p", p, 0.0, 1.0)
    check_number("max_noise", max_noise, 0.0)
    b = len(images)
    draws = torch.rand(b, 4, generator=generator)
    steps = torch.randint(-1, 2, (b, 2), generator=generator)
    blurred = (draws[:, 0] < p / 2).reshape(-1, 1, 1, 1).to(images.device)
    out = torch.where(blurred, box_blur(images, 3), images)
    moved = (draws[:, 1] < p).long()
    out = shift(out, steps[:, 0] * moved, steps[:, 1] * moved)
    std = torch.where(draws[:, 2] < p, draws[:, 3] * max_noise, torch.zeros(b))
    return add_noise(out, std, generator)
