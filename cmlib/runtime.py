"""Run-time settings shared by every chapter: device, seed, threads and run profile.

The run profile is the only global state in cmlib. It is read from the
``CMLIB_PROFILE`` environment variable (``cpu`` or ``gpu``); without it the
profile is ``gpu`` when CUDA is available and ``cpu`` otherwise. Chapters use
:func:`pick` to size data and training by profile::

    num_epochs = pick(cpu=3, gpu=20)

``CMLIB_THREADS`` sets torch's intra-op threads when this module is imported
(default: torch's own choice, one per core). One thread changes the order of
floating-point reductions much as another CPU does, so ``CMLIB_THREADS=1`` is
the cheap way to check that a learning checkpoint survives machine noise.

Seeding rule: a chapter calls :func:`seed_everything` once, at the top, with
``CMLIB_SEED``. Library functions that draw random numbers take a ``seed`` or a
``torch.Generator`` argument and never reseed the global generators.
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


def threads_from_env() -> int | None:
    """``CMLIB_THREADS`` as a positive int, or ``None`` when it is unset.

    Raises:
        ValueError: if it is set to anything but a positive integer.
    """
    raw = os.environ.get("CMLIB_THREADS", "").strip()
    if not raw:
        return None
    try:
        threads = int(raw)
    except ValueError:
        raise ValueError(f"CMLIB_THREADS must be a positive integer, got {raw!r}") from None
    if threads < 1:
        raise ValueError(f"CMLIB_THREADS must be a positive integer, got {threads}")
    return threads


def apply_threads() -> int:
    """Set torch's intra-op threads from ``CMLIB_THREADS`` (if set); return the count in use."""
    threads = threads_from_env()
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


apply_threads()


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
        "CMLIB_THREADS": os.environ.get("CMLIB_THREADS", "") or "unset",
    }
