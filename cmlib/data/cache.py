"""A small on-disk cache for arrays, under ``data/cache`` (git-ignored).

Writes are atomic (a temporary file in the same folder, then ``os.replace``),
each array is stored with a SHA-256 of its bytes, and a file that is
truncated, foreign or fails its checksum is rebuilt rather than trusted.
Set ``CMLIB_CACHE_DIR`` to put the cache elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")


def cache_dir() -> Path:
    """The cache folder: ``$CMLIB_CACHE_DIR``, else ``data/cache`` beside the package."""
    env = os.environ.get("CMLIB_CACHE_DIR")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "data" / "cache"
    root.mkdir(parents=True, exist_ok=True)
    return root


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def save_array(path: Path, array: np.ndarray) -> None:
    """Save one array with its checksum, atomically (``.npz``)."""
    import io

    buffer = io.BytesIO()
    np.savez(buffer, array=array, sha256=np.array(_digest(array)))
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_array(path: Path) -> np.ndarray:
    """Load an array saved by :func:`save_array`.

    Raises:
        ValueError: if the file is truncated, foreign or fails its checksum.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            array, digest = f["array"], str(f["sha256"])
    except Exception as err:  # zipfile, KeyError, OSError, ValueError...
        raise ValueError(f"{path} is not a readable cmlib cache file: {err}") from err
    if _digest(array) != digest:
        raise ValueError(f"{path} failed its checksum (corrupt cache file)")
    return array


def cached_array(key: str, build: Callable[[], np.ndarray]) -> np.ndarray:
    """Return the array cached under ``key``, building and saving it when missing or corrupt.

    Args:
        key: a file-name-safe identifier that changes whenever the content would.
        build: makes the array from scratch.
    """
    if not _KEY.match(key):
        raise ValueError(f"cache key must use letters, digits, '.', '_' or '-', got {key!r}")
    path = cache_dir() / f"{key}.npz"
    if path.exists():
        try:
            return load_array(path)
        except ValueError as err:
            warnings.warn(f"rebuilding cache: {err}", stacklevel=2)
    array = build()
    save_array(path, array)
    return array
