"""A small on-disk cache for arrays, under ``data/cache`` (git-ignored).

Writes are atomic (a temporary file in the same folder, then ``os.replace``),
each array is stored with a SHA-256 of its bytes, and a file that is
truncated, foreign or fails its checksum is rebuilt rather than trusted.
Set ``CMLIB_CACHE_DIR`` to put the cache elsewhere.

Two processes may ask for the same entry at once (``make nbval`` runs two notebooks at a
time): :func:`build_lock` lets one build it while the other waits, then loads what was built.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock, Timeout

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


#: How long a process waits for another to finish building the same entry, in seconds.
BUILD_WAIT_S = 30 * 60


@contextlib.contextmanager
def build_lock(path: Path, wait_s: float = BUILD_WAIT_S) -> Iterator[None]:
    """Hold the lock for building ``path`` (a file ``<path>.lock`` beside it).

    The lock is the operating system's, so a process that dies releases it. Build inside it
    only after checking again that no other process built the entry meanwhile.

    Raises:
        TimeoutError: if another process holds it for longer than ``wait_s``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path) + ".lock", timeout=wait_s)
    try:
        lock.acquire()
    except Timeout:
        raise TimeoutError(
            f"another process has been building {path} for over {wait_s:.0f} s; "
            f"if none is, delete {path}.lock"
        ) from None
    try:
        yield
    finally:
        lock.release()


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


@contextlib.contextmanager
def random_state_kept() -> Iterator[None]:
    """Run a block and leave torch's, NumPy's and Python's global random states as they were.

    A cache build must not change what the rest of a run draws: loading EfficientNet-Lite0, for
    one, initialises its layers with torch's global generator before the weights replace them.
    Without this a run with an empty cache and a run with a full one would train different models
    from the same seed.
    """
    # every CUDA device whenever CUDA is there, initialised yet or not: the block may be the
    # first to use it, and a reseed inside it must not leak out
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    numpy_state, python_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=cuda):
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)


def cached_array(key: str, build: Callable[[], np.ndarray]) -> np.ndarray:
    """Return the array cached under ``key``, building and saving it when missing or corrupt.

    Building draws no number from the caller's global random generators
    (:func:`random_state_kept`): a run gives the same results with an empty cache and a full one.

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
        except ValueError:
            pass  # said below, where it is rebuilt
    with build_lock(path):
        if path.exists():  # built by another process while this one waited, or corrupt
            try:
                return load_array(path)
            except ValueError as err:
                warnings.warn(f"rebuilding cache: {err}", stacklevel=2)
        with random_state_kept():
            array = build()
        save_array(path, array)
    return array
