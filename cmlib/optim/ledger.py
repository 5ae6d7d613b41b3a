"""Chapter 09's ledger: each method's measured effect and time cost, for the closing table.

Each part of chapter 09 records the methods it measured with :func:`record`: the failure a
method addresses, one metric without and with it, and the seconds each run took. Part 6 reads
every record back with :func:`read` and lays them out in one table, so the table shows what
the reader's own runs measured. A record is one JSON file per method under
``_build/ledger/`` (``$CMLIB_LEDGER_DIR``), written atomically: a part run again replaces its
rows, and a part not yet run has none.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .. import runtime
from ..data.cache import atomic_write_bytes
from ..validate import check_int, check_number


@dataclass(frozen=True)
class Entry:
    """One method, measured once.

    Attributes:
        method: what was added or changed ("learnable τ").
        part: the chapter 09 part that measured it.
        failure: the failure the method addresses.
        metric: what ``without`` and ``with_`` measure ("R@1", "test accuracy").
        without: the metric without the method (the baseline run).
        with_: the metric with it.
        seconds_without: the baseline run's wall time (None where there is no run to time).
        seconds_with: the method's run's wall time.
        higher_is_better: whether a larger metric is the better one.
        seed, profile, threads, time: the run's seed, profile, CPU threads and date.
    """

    method: str
    part: int
    failure: str
    metric: str
    without: float
    with_: float
    seconds_without: float | None
    seconds_with: float | None
    higher_is_better: bool = True
    seed: int | None = None
    profile: str = ""
    threads: int = 0
    time: str = ""

    @property
    def gain(self) -> float:
        """How much the method improved the metric (negative: it made it worse)."""
        change = self.with_ - self.without
        return change if self.higher_is_better else -change

    @property
    def time_factor(self) -> float | None:
        """The method's run time over the baseline's (None where either is missing)."""
        if not self.seconds_without or self.seconds_with is None:
            return None
        return self.seconds_with / self.seconds_without


def ledger_dir() -> Path:
    """Where records go: ``$CMLIB_LEDGER_DIR``, else ``_build/ledger`` in the repository."""
    env = os.environ.get("CMLIB_LEDGER_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "_build" / "ledger"


def _file_name(method: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", method.lower()).strip("-") + ".json"


def record(
    method: str,
    part: int,
    failure: str,
    metric: str,
    without: float,
    with_: float,
    seconds_without: float | None = None,
    seconds_with: float | None = None,
    higher_is_better: bool = True,
    directory: str | Path | None = None,
) -> Entry:
    """Record one method's measurement (replacing an earlier record of the same method).

    Returns:
        the :class:`Entry` written.
    """
    for name, text in (("method", method), ("failure", failure), ("metric", metric)):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{name} must be a non-empty string, got {text!r}")
    if not re.search(r"[a-z0-9]", method.lower()):
        raise ValueError(f"method needs a letter or a digit, got {method!r}")
    check_int("part", part)
    without, with_ = check_number("without", without), check_number("with_", with_)
    seconds = [
        None if s is None else check_number(n, s, low=0.0)
        for n, s in (("seconds_without", seconds_without), ("seconds_with", seconds_with))
    ]
    if not isinstance(higher_is_better, bool):
        raise TypeError(f"higher_is_better must be a bool, got {type(higher_is_better).__name__}")
    entry = Entry(
        method,
        part,
        failure,
        metric,
        without,
        with_,
        *seconds,
        higher_is_better,
        runtime.get_seed(),
        runtime.profile(),
        torch.get_num_threads(),
        time.strftime("%Y-%m-%d %H:%M"),
    )
    folder = Path(directory) if directory is not None else ledger_dir()
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps(asdict(entry), ensure_ascii=False, indent=1).encode()
    atomic_write_bytes(folder / _file_name(method), data)
    return entry


def clear(part: int, directory: str | Path | None = None) -> int:
    """Forget every record of ``part``, before the part records its methods again (so that a
    method renamed or dropped since an earlier run leaves no row behind); returns how many."""
    check_int("part", part)
    folder = Path(directory) if directory is not None else ledger_dir()
    gone = 0
    for entry, path in _records(folder):
        if entry.part == part:
            path.unlink(missing_ok=True)
            gone += 1
    return gone


def _records(folder: Path) -> list[tuple[Entry, Path]]:
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            out.append((Entry(**json.loads(path.read_text(encoding="utf-8"))), path))
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as error:
            raise ValueError(
                f"{path} is not a ledger record ({error}); delete it, or run the chapter 09 "
                "part that wrote it again"
            ) from error
    return out


def read(directory: str | Path | None = None) -> list[Entry]:
    """Every recorded method, by part and then by method.

    Raises:
        ValueError: for a record that is not a ledger entry, naming its file (delete it, or
            run the part that wrote it again).
    """
    folder = Path(directory) if directory is not None else ledger_dir()
    entries = [entry for entry, _ in _records(folder)]
    return sorted(entries, key=lambda e: (e.part, e.method))
