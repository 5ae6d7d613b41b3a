"""Run-time settings shared by every chapter: device, seed and run profile.

The run profile is the only global state in cmlib. It is read from the
``CMLIB_PROFILE`` environment variable (``cpu`` or ``gpu``); without it the
profile is ``gpu`` when CUDA is available and ``cpu`` otherwise. Chapters use
:func:`pick` to size data and training by profile::

    num_epochs = pick(cpu=3, gpu=20)
"""

from __future__ import annotations

import os
import random
from typing import TypeVar

import numpy as np
import torch

PROFILES = ("cpu", "gpu")
DEFAULT_SEED = 0

T = TypeVar("T")


def device() -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def profile() -> str:
    """The run profile, ``"cpu"`` or ``"gpu"``.

    Raises:
        ValueError: if ``CMLIB_PROFILE`` is set to anything else.
    """
    value = os.environ.get("CMLIB_PROFILE", "").strip().lower()
    if not value:
        return "gpu" if torch.cuda.is_available() else "cpu"
    if value not in PROFILES:
        raise ValueError(f"CMLIB_PROFILE must be one of {PROFILES}, got {value!r}")
    return value


def pick(*, cpu: T, gpu: T) -> T:
    """Return ``cpu`` or ``gpu`` according to the current run profile."""
    return gpu if profile() == "gpu" else cpu


def get_seed() -> int:
    """The seed from ``CMLIB_SEED`` (default 0).

    Raises:
        ValueError: if ``CMLIB_SEED`` is not a non-negative integer.
    """
    raw = os.environ.get("CMLIB_SEED", str(DEFAULT_SEED)).strip()
    try:
        seed = int(raw)
    except ValueError:
        raise ValueError(f"CMLIB_SEED must be a non-negative integer, got {raw!r}") from None
    if seed < 0:
        raise ValueError(f"CMLIB_SEED must be a non-negative integer, got {seed}")
    return seed


def seed_everything(seed: int | None = None) -> int:
    """Seed Python, NumPy and PyTorch; return the seed used.

    Args:
        seed: the seed; ``None`` reads ``CMLIB_SEED`` (default 0).
    """
    if seed is None:
        seed = get_seed()
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def describe() -> dict[str, str]:
    """Versions, device and profile, for the first cell of a chapter."""
    import platform

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none",
        "device": str(device()),
        "profile": profile(),
        "seed": str(get_seed()),
        "threads": str(torch.get_num_threads()),
    }
