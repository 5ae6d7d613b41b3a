"""The course's own measurements, as tables: what ``make seeds`` recorded for every chapter.

Chapter 11 discusses the challenges of cross-modal learning (§1.3) with evidence from this
course's runs, not from the literature: the learning checkpoints of every chapter over seeds 0–4
and one thread, and each notebook's run time, as ``tools/checkpoints.py`` wrote them to
``chapters/notes/checkpoints.md``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

#: Where ``make seeds`` writes its report, relative to the repository root.
REPORT = Path("chapters") / "notes" / "checkpoints.md"


def report_path() -> Path:
    """The seeds report of this checkout."""
    return Path(__file__).resolve().parents[2] / REPORT


def _tables(path: Path) -> list[list[list[str]]]:
    """Every markdown table of ``path``: a list of rows of cells (the header row first)."""
    tables, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= {"-", ":"} for c in cells):  # skip the |---| row
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def _frame(table: list[list[str]], numeric: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(table[1:], columns=table[0])
    for column in numeric:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def checkpoint_table(path: str | Path | None = None) -> pd.DataFrame:
    """Every chapter's checkpoints over seeds: notebook, checkpoint, claim, min, mean, max, std…

    Raises:
        FileNotFoundError: if the report is missing (``make seeds`` writes it).
    """
    path = Path(path) if path is not None else report_path()
    if not path.is_file():
        raise FileNotFoundError(f"no seeds report at {path}; `make seeds` writes it")
    tables = _tables(path)
    if not tables or tables[0][0][:2] != ["notebook", "checkpoint"]:
        raise ValueError(f"{path} does not start with the checkpoint table")
    return _frame(tables[0], ("runs", "min", "mean", "max", "std"))


def run_times(path: str | Path | None = None) -> pd.DataFrame:
    """Every seeds run's notebook, seed, threads, exit code and seconds."""
    path = Path(path) if path is not None else report_path()
    if not path.is_file():
        raise FileNotFoundError(f"no seeds report at {path}; `make seeds` writes it")
    for table in _tables(path):
        if table[0][:2] == ["notebook", "seed"]:
            return _frame(table, ("seed", "exit", "seconds"))
    raise ValueError(f"{path} has no table of runs")


def evidence(notebook_prefix: str, checkpoints: tuple[str, ...] = ()) -> pd.DataFrame:
    """The rows of the checkpoint table for notebooks starting with ``notebook_prefix``
    (and only the named ``checkpoints``, if given): claim, min, mean, max.

    Raises:
        TypeError: if ``checkpoints`` is not a tuple (or list) of names.
        ValueError: if a named checkpoint is not in the table for that prefix.
    """
    table = checkpoint_table()
    rows = table[table["notebook"].str.startswith(notebook_prefix)]
    if not isinstance(checkpoints, (tuple, list)) or not all(
        isinstance(c, str) for c in checkpoints
    ):
        raise TypeError(f"checkpoints must be a tuple of names, got {checkpoints!r}")
    if checkpoints:
        missing = sorted(set(checkpoints) - set(rows["checkpoint"]))
        if missing:
            raise ValueError(
                f"no checkpoint {missing} for notebooks starting with {notebook_prefix!r} in "
                f"the checkpoint table ({REPORT}, rebuilt by `make seeds`); it has "
                f"{sorted(set(rows['checkpoint']))}"
            )
        rows = rows[rows["checkpoint"].isin(checkpoints)]
    return rows[["notebook", "checkpoint", "claim", "min", "mean", "max"]].reset_index(drop=True)
