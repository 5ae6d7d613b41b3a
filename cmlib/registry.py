"""A named registry of trained models, so that later chapters reuse what earlier ones trained.

Each entry is one :mod:`cmlib.checkpoint` file, ``data/cache/models/<name>.pt``, holding the
weights, the config needed to rebuild the model, its metrics and a *code version*: a hash of the
source files that define and train it. An entry is reused only when its config and code version
both match the caller's; otherwise it is **stale** and is trained again. A truncated or foreign
file is **corrupt** and is trained again too. Writes are atomic, so a crash leaves the old entry
or the new one, never half of one.

An entry also records how many CPU threads trained it. The thread count is not part of the
config: another count rounds differently, which acts like another seed, but the entry is no less
fresh for it. So a chapter run with one thread (CI's two-at-a-time notebooks) loads what a
two-thread run trained instead of training it again, and says so in its status. A run that must
not share models across thread counts gets a registry of its own (``CMLIB_REGISTRY_DIR``, as
``make seeds`` gives its one-thread runs).

The usual call is :func:`load_or_train`::

    model, status = load_or_train("ch06-cyclegan-seed0", config, build, train, code=[cyclegan])
    print(status)   # "loaded", or why it was trained: "missing", "stale: ...", "corrupt: ..."
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data.cache import build_lock, cache_dir

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


class StaleModelError(ValueError):
    """A saved model exists but was trained with another config or another version of the code."""


@dataclass(frozen=True)
class SavedModel:
    """What the registry knows about one entry (without its weights)."""

    name: str
    config: dict[str, Any]
    metrics: dict[str, float]
    code_version: str
    path: Path
    threads: int | None = None  # CPU threads that trained it (None: an entry older than this)


def registry_dir() -> Path:
    """The folder of saved models: ``$CMLIB_REGISTRY_DIR``, else ``models/`` under the data cache.

    ``make seeds`` gives its one-thread runs a registry of their own, as a fresh machine has, so
    that they neither load nor overwrite the default-thread runs' models.
    """
    env = os.environ.get("CMLIB_REGISTRY_DIR")
    root = Path(env) if env else cache_dir() / "models"
    root.mkdir(parents=True, exist_ok=True)
    return root


def model_path(name: str) -> Path:
    """The file of entry ``name``; names use letters, digits, '.', '_' and '-'."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"a model name uses letters, digits, '.', '_' or '-', got {name!r}")
    return registry_dir() / f"{name}.pt"


def code_version(code: Sequence[types.ModuleType | Callable[..., Any]]) -> str:
    """A short hash of the source of the modules (whole packages included) and functions given.

    Editing any of them changes the version, which marks the models they made as stale.
    """
    if isinstance(code, (types.ModuleType, str)) or not isinstance(code, Sequence):
        raise TypeError(f"code must be a list of modules or functions, got {type(code).__name__}")
    digest = hashlib.sha256()
    for item in code:
        for path in sorted(_source_files(item)):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _source_files(item: types.ModuleType | Callable[..., Any]) -> list[Path]:
    if isinstance(item, types.ModuleType):
        path = Path(inspect.getfile(item))
        # A package is versioned by all of its modules, not only its __init__.
        return sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
    if callable(item):
        return [Path(inspect.getfile(item))]
    raise TypeError(f"expected a module or a function in code, got {type(item).__name__}")


def _normalised(config: dict[str, Any]) -> dict[str, Any]:
    """The config as JSON would give it back (tuples become lists), so comparisons are exact."""
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    try:
        return json.loads(json.dumps(config, sort_keys=True))
    except TypeError as err:
        raise ValueError(
            f"config must hold only JSON values (numbers, strings, lists): {err}"
        ) from err


def save_model(
    name: str,
    model: nn.Module,
    config: dict[str, Any],
    code: Sequence[types.ModuleType | Callable[..., Any]],
    metrics: dict[str, float] | None = None,
) -> SavedModel:
    """Save ``model`` under ``name`` with its config, metrics, code version and the number of CPU
    threads that trained it, atomically."""
    path = model_path(name)
    version = code_version(code)
    threads = torch.get_num_threads()
    stored = {"model": _normalised(config), "code_version": version, "threads": threads}
    save_checkpoint(path, model, name, config=stored, metrics=metrics)
    return SavedModel(name, stored["model"], dict(metrics or {}), version, path, threads)


def describe_model(name: str) -> SavedModel:
    """Read an entry's metadata.

    Raises:
        FileNotFoundError: if there is no entry ``name``.
        CheckpointError: if its file is corrupt.
    """
    path = model_path(name)
    payload = load_checkpoint(path, what=name)
    stored = payload["config"]
    if "model" not in stored or "code_version" not in stored:
        raise CheckpointError(f"{path} is a checkpoint but not a registry entry")
    threads = stored.get("threads")
    return SavedModel(
        name, stored["model"], payload["metrics"], stored["code_version"], path, threads
    )


def load_model(
    name: str,
    config: dict[str, Any],
    build: Callable[[dict[str, Any]], nn.Module],
    code: Sequence[types.ModuleType | Callable[..., Any]],
) -> tuple[nn.Module, SavedModel]:
    """Rebuild entry ``name`` with ``build(config)`` and load its weights.

    Raises:
        FileNotFoundError: if there is no entry.
        StaleModelError: if it was saved with another config or code version.
        CheckpointError: if its file is corrupt or does not fit the model.
    """
    saved = describe_model(name)
    wanted = _normalised(config)
    if saved.config != wanted:
        changed = sorted(
            k for k in wanted.keys() | saved.config.keys() if wanted.get(k) != saved.config.get(k)
        )
        raise StaleModelError(f"{name} was trained with another config (differs in {changed})")
    version = code_version(code)
    if saved.code_version != version:
        raise StaleModelError(
            f"{name} was trained by another version of the code "
            f"({saved.code_version}, now {version})"
        )
    model = build(config)
    load_checkpoint(saved.path, model, what=name)
    return model, saved


def load_or_train(
    name: str,
    config: dict[str, Any],
    build: Callable[[dict[str, Any]], nn.Module],
    train: Callable[[nn.Module], dict[str, float] | None],
    code: Sequence[types.ModuleType | Callable[..., Any]],
) -> tuple[nn.Module, str]:
    """Load entry ``name`` if it is fresh; otherwise build it, train it and save it.

    Args:
        name: the entry's name, e.g. ``"ch06-cyclegan-cpu-seed0"``.
        config: everything that determines the trained weights (sizes, steps, seed, profile).
        build: makes an untrained model from ``config``.
        train: trains that model in place; may return metrics to store with it.
        code: the modules and functions whose source the weights depend on.

    Returns:
        ``(model, status)``: status is ``"loaded"`` (``"loaded (trained with 2 CPU threads, this
        run has 1)"`` when the counts differ), or says why the model was trained (``"missing"``,
        ``"stale: ..."``, ``"corrupt: ..."``).
    """
    try:
        model, saved = load_model(name, config, build, code)
        return model, _loaded(saved)
    except (FileNotFoundError, StaleModelError, CheckpointError):
        pass
    # Another process (the other nbval lane) may be training the same entry: wait for it, and
    # load what it saved rather than train it twice.
    with build_lock(model_path(name)):
        try:
            model, saved = load_model(name, config, build, code)
            return model, _loaded(saved)
        except FileNotFoundError:
            status = "trained: missing"
        except StaleModelError as err:
            status = f"trained: stale ({err})"
        except CheckpointError as err:
            status = f"trained: corrupt ({err})"
        model = build(config)
        metrics = train(model)
        save_model(name, model, config, code, metrics)
    return model, status


def _loaded(saved: SavedModel) -> str:
    now = torch.get_num_threads()
    if saved.threads is None or saved.threads == now:
        return "loaded"
    return f"loaded (trained with {saved.threads} CPU threads, this run has {now})"
