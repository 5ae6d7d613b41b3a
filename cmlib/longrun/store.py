"""Shipped long-run models on disk: ``models/<name>.safetensors`` beside ``models/<name>.json``.

The weights are a safetensors file (tensors only, no pickle, so loading runs no code); the
manifest says how they were made and what they scored:

* ``name``, ``recipe``, ``seed``, ``config`` (everything that rebuilds the model) and
  ``code_version`` (a hash of the recipe's source files, :func:`cmlib.registry.code_version`);
* ``torch``, ``device``, ``threads``, ``wall_seconds``, ``steps`` — the run that trained it;
* ``metrics`` on the recipe's test split, and ``curve``, the evaluation recorded during training
  (``curve["step"]`` and one list per metric);
* ``tensors``: the weights file's size and SHA-256, so a truncated or swapped file is caught.

Both files are written atomically. Anything wrong with them raises :class:`LongRunError`, whose
message names the ``make models`` command that rebuilds the model.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from .. import runtime
from ..data.cache import atomic_write_bytes

FORMAT = "cmlib-longrun-v1"

# key -> the type(s) its value must have in a manifest
MANIFEST_KEYS: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "name": str,
    "recipe": str,
    "seed": int,
    "config": dict,
    "code_version": str,
    "torch": str,
    "profile": str,
    "device": str,
    "threads": int,
    "wall_seconds": (int, float),
    "steps": int,
    "metrics": dict,
    "curve": dict,
    "tensors": dict,
}


class LongRunError(ValueError):
    """A shipped model is missing, corrupt, or does not fit today's code."""


def models_dir() -> Path:
    """The folder of shipped models: ``$CMLIB_MODELS_DIR``, else the repository's ``models/``."""
    env = os.environ.get("CMLIB_MODELS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models"


def rebuild_command(recipe: str, seed: int) -> str:
    """The command that trains and writes one shipped model again."""
    return f'make models NAMES="{recipe}" SEEDS="{seed}"'


def model_name(recipe: str, seed: int) -> str:
    """A shipped model's file stem, e.g. ``ch04-cgan-seed0``."""
    return f"{recipe}-seed{seed}"


def paths(name: str) -> tuple[Path, Path]:
    """``(weights, manifest)`` paths of a shipped model."""
    root = models_dir()
    return root / f"{name}.safetensors", root / f"{name}.json"


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def validate_manifest(manifest: Any, where: str = "manifest") -> dict[str, Any]:
    """Check a manifest's schema; return it.

    Raises:
        ValueError: naming the first key that is missing or has the wrong type, or a curve whose
            lists differ in length.
    """
    if not isinstance(manifest, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(manifest).__name__}")
    for key, kind in MANIFEST_KEYS.items():
        if key not in manifest:
            raise ValueError(f"{where}: missing key {key!r}")
        value = manifest[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            expected = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise ValueError(
                f"{where}: {key!r} must be {expected}, got {type(value).__name__} {value!r}"
            )
    if manifest["format"] != FORMAT:
        raise ValueError(f"{where}: format must be {FORMAT!r}, got {manifest['format']!r}")
    for key, value in manifest["metrics"].items():
        if not _finite(value):
            raise ValueError(f"{where}: metric {key!r} must be a finite number, got {value!r}")
    curve = manifest["curve"]
    if "step" not in curve:
        raise ValueError(f"{where}: the curve needs a 'step' list")
    lengths = {k: len(v) if isinstance(v, list) else -1 for k, v in curve.items()}
    if -1 in lengths.values() or len(set(lengths.values())) != 1:
        raise ValueError(f"{where}: the curve's entries must be lists of one length, got {lengths}")
    for key, values in curve.items():
        if not all(_finite(v) for v in values):
            raise ValueError(f"{where}: curve {key!r} must hold finite numbers only")
    for key in ("sha256", "bytes"):
        if key not in manifest["tensors"]:
            raise ValueError(f"{where}: 'tensors' needs {key!r}")
    return manifest


def round_to_half(model: nn.Module) -> nn.Module:
    """Round ``model``'s floating-point parameters and buffers to float16 values, in place (they
    stay float32 tensors): the model as it will load back from a float16 file."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                _check_fits_half(key, tensor)
                tensor.copy_(tensor.half())
    return model


def _check_fits_half(key: str, tensor: torch.Tensor) -> None:
    """float16 tops out at 65504: a larger finite value would become infinite."""
    if bool((tensor.isfinite() & ~tensor.half().isfinite()).any()):
        raise ValueError(f"{key} holds values beyond float16's range (±65504); store it as float32")


def save_long_run(
    name: str, model: nn.Module, manifest: dict[str, Any], half: bool = False
) -> Path:
    """Write ``model``'s weights and ``manifest`` (without ``format``, ``name`` and ``tensors``,
    which are filled in here) atomically; return the manifest's path. With ``half``, floating
    weights are stored as float16 (round the model first, :func:`round_to_half`, to score
    what is stored)."""
    data, full = serialise(name, model, manifest, half)
    # both files are ready before either is written; the weights go first, so a crash in
    # between leaves a manifest whose checksum no longer matches (detected, never loaded)
    text = json.dumps(full, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False)
    weights, manifest_path = paths(name)
    weights.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(weights, data)
    atomic_write_bytes(manifest_path, (text + "\n").encode())
    return manifest_path


def serialise(
    name: str, model: nn.Module, manifest: dict[str, Any], half: bool = False
) -> tuple[bytes, dict]:
    """The safetensors bytes of ``model`` (floating weights as float16 with ``half``) and its
    full, checked manifest (with ``format``, ``name`` and ``tensors``), without writing
    anything."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    reserved = {"format", "name", "tensors"} & set(manifest)
    if reserved:
        raise ValueError(f"the manifest's {sorted(reserved)} are filled in here, not passed in")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if not isinstance(half, bool):
        raise TypeError(f"half must be True or False, got {half!r}")
    if half:
        for key, value in state.items():
            if value.is_floating_point():
                _check_fits_half(key, value)
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    try:
        data = save_safetensors(state, metadata={"format": FORMAT, "name": name})
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"cannot store {name}'s weights as safetensors: {err}") from err
    full = {
        **manifest,
        "format": FORMAT,
        "name": name,
        "tensors": {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)},
    }
    validate_manifest(full, f"the manifest of {name}")
    try:
        json.dumps(full, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"the manifest of {name} is not plain JSON: {err}") from err
    return data, full


def read_manifest(recipe: str, seed: int) -> dict[str, Any]:
    """A shipped model's manifest, checked.

    Raises:
        LongRunError: if it is missing or malformed, with the command that rebuilds it.
    """
    name = model_name(recipe, seed)
    _, manifest_path = paths(name)
    fix = f"run `{rebuild_command(recipe, seed)}` to train and write it"
    if not manifest_path.exists():
        raise LongRunError(f"no shipped model {name} ({manifest_path} is missing); {fix}")
    try:
        manifest = json.loads(manifest_path.read_text())
        return validate_manifest(manifest, str(manifest_path))
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as err:
        raise LongRunError(f"the manifest of {name} is unreadable: {err}; {fix}") from err


def load_long_run(
    recipe: str, seed: int, model: nn.Module, manifest: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Load a shipped model's weights strictly into ``model`` (built from the manifest's config)
    and return the manifest they were checked against (``manifest`` if given, else read here).

    Raises:
        LongRunError: if a file is missing, truncated or swapped (checksum), the manifest belongs
            to another recipe or seed, or the weights do not fit ``model`` — each with the
            command that rebuilds it.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    manifest = read_manifest(recipe, seed) if manifest is None else manifest
    name = model_name(recipe, seed)
    weights, _ = paths(name)
    fix = f"run `{rebuild_command(recipe, seed)}` to train and write it again"
    found = (manifest["recipe"], manifest["seed"], manifest["name"])
    if found != (recipe, seed, name):
        raise LongRunError(
            f"{name}'s manifest describes recipe {found[0]!r}, seed {found[1]} ({found[2]}); {fix}"
        )
    if not weights.exists():
        raise LongRunError(f"the weights of {name} are missing ({weights}); {fix}")
    data = weights.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest["tensors"]["sha256"]:
        raise LongRunError(
            f"{weights} does not match its manifest's checksum (truncated or replaced); {fix}"
        )
    try:
        state = load_safetensors(data)
        model.load_state_dict(state, strict=True)
    except Exception as err:  # safetensors' own error is neither a RuntimeError nor a ValueError
        first = str(err).strip().splitlines()[0]
        raise LongRunError(f"{name} does not fit today's code ({first}); {fix}") from err
    return manifest


def environment(device: torch.device) -> dict[str, Any]:
    """The manifest's record of where a model was trained."""
    return {
        "torch": torch.__version__,
        "profile": runtime.profile(),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
