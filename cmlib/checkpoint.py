"""Save and load model checkpoints with metadata, atomically.

A checkpoint is a ``torch.save`` dict with a format tag, ``what`` (a short
name of the model), ``config`` (what is needed to rebuild it), ``metrics``
and the ``state_dict``. Writes go to a temporary file that is renamed into
place, so a crash never leaves half a checkpoint; a truncated or foreign
file raises :class:`CheckpointError` (a ``ValueError``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .data.cache import atomic_write_bytes

FORMAT = "cmlib-checkpoint-v1"


class CheckpointError(ValueError):
    """The file is not a readable cmlib checkpoint."""


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    what: str,
    config: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
) -> Path:
    """Write ``model``'s weights and metadata to ``path`` atomically; return the path."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not what or not isinstance(what, str):
        raise ValueError("what must be a non-empty string naming the model")
    payload = {
        "format": FORMAT,
        "what": what,
        "config": dict(config or {}),
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_checkpoint(
    path: str | Path, model: nn.Module | None = None, what: str | None = None
) -> dict[str, Any]:
    """Read a checkpoint; load its weights into ``model`` when one is given.

    Args:
        path: the file.
        model: receives the weights (strictly: every key must match).
        what: if given, the checkpoint's ``what`` must equal it.

    Returns:
        The checkpoint dict (``what``, ``config``, ``metrics``, ``state_dict``).

    Raises:
        FileNotFoundError: if there is no file.
        CheckpointError: if the file is truncated, foreign, or of another model.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or corrupt?): {err}"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a cmlib checkpoint (expected format {FORMAT!r})")
    if what is not None and payload["what"] != what:
        raise CheckpointError(f"{path} holds a {payload['what']!r}, expected a {what!r}")
    if model is not None:
        try:
            model.load_state_dict(payload["state_dict"])
        except RuntimeError as err:
            raise CheckpointError(f"{path} does not fit this model: {err}") from err
    return payload
