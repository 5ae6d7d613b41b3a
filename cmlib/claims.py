"""Learning checkpoints: a chapter's claims about real metrics, asserted and recorded.

A learning checkpoint (学习检查点) says that a trained model reached a measured value,
e.g. "the best fusion answers at least 95% of the test questions". A chapter makes one
:class:`Checkpoints` for its notebook and calls it once per claim::

    checkpoint = Checkpoints("03_fusion")
    checkpoint("best-fusion", best_accuracy, ">=", 0.95)
    # checkpoint 03_fusion/best-fusion: 0.965 >= 0.95 (margin 0.015) ✓

Each call prints one line, appends a JSON record to
``_build/checkpoints/<notebook>.jsonl`` (keys ``notebook``, ``name``, ``value``, ``op``,
``threshold``, ``seed``, ``threads``, ``profile``, ``passed`` and, where the chapter gives
them, ``chance`` and ``baseline``) and raises ``AssertionError`` when the claim fails. The
record is written *before* the assertion, so a failing run is counted too.

A checkpoint must hold on every machine, and another CPU rounds floats differently, which
acts like another seed. ``make seeds`` therefore runs every chapter for seeds 0-4 and once
with ``CMLIB_THREADS=1``, and ``tools/checkpoints.py`` summarises the records: a checkpoint is
*fragile* when a run fails or when its mean margin is smaller than two standard deviations.
Set ``CMLIB_CHECKPOINT_DIR`` to write the records elsewhere.

Exercise checks (:func:`cmlib.exercises.check`) are not learning checkpoints.
"""

from __future__ import annotations

import json
import math
import operator
import os
import time
from collections.abc import Collection
from pathlib import Path

import torch

from . import runtime

#: The comparisons a checkpoint can make, and what each means for the margin.
OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def checkpoint_dir() -> Path:
    """Where records go: ``$CMLIB_CHECKPOINT_DIR``, else ``_build/checkpoints`` in the
    repository."""
    env = os.environ.get("CMLIB_CHECKPOINT_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "_build" / "checkpoints"


def margin(value: float, op: str, threshold: float) -> float:
    """How far ``value`` clears ``threshold`` in the direction of ``op`` (< 0: it fails)."""
    if op not in OPS:
        raise ValueError(f"op must be one of {sorted(OPS)}, got {op!r}")
    return value - threshold if op in (">=", ">") else threshold - value


def _as_number(name: str, x) -> float:
    if isinstance(x, torch.Tensor):
        if x.numel() != 1:
            raise ValueError(
                f"{name} must be a single number, got a tensor of shape {tuple(x.shape)}"
            )
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, (int, float)) and not hasattr(x, "__float__"):
        raise TypeError(f"{name} must be a number, got {type(x).__name__}")
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x}")
    return x


class Checkpoints:
    """The learning checkpoints of one notebook; call it once per claim.

    Args:
        notebook: the notebook's stem, e.g. ``"03_fusion"``; it names the record file.
        directory: where to append records (default :func:`checkpoint_dir`).
        quiet: print nothing (records are still written).
    """

    def __init__(self, notebook: str, directory: str | Path | None = None, quiet: bool = False):
        if not isinstance(notebook, str) or not notebook or "/" in notebook:
            raise ValueError(
                f"notebook must be a notebook stem such as '03_fusion', got {notebook!r}"
            )
        self.notebook, self.quiet = notebook, quiet
        self.directory = Path(directory) if directory is not None else checkpoint_dir()

    @property
    def path(self) -> Path:
        """The JSON-lines file of this notebook's records."""
        return self.directory / f"{self.notebook}.jsonl"

    def __call__(
        self,
        name: str,
        value,
        op: str,
        threshold,
        *,
        chance=None,
        baseline=None,
        asserted_in: Collection[str] | None = None,
    ) -> float:
        """Record and assert one claim: ``value op threshold``.

        Args:
            name: a short id, unique in the notebook (``"best-fusion"``).
            value: the measured number (a float, or a one-element tensor).
            op: ``">="``, ``">"``, ``"<="`` or ``"<"``.
            threshold: what the value must clear (may depend on a measured baseline).
            chance: the chance level of the metric, where the chapter reports one.
            baseline: the baseline the claim is measured against, where there is one.
            asserted_in: the run profiles in which the claim is asserted (default: all). In
                the others it is measured, printed and recorded with ``"asserted": false``,
                but not asserted. Only for a claim its issue allows to be met on a GPU alone;
                the line printed says so.

        Returns:
            ``value`` as a float.

        Raises:
            AssertionError: if the claim fails (after the record is written).
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        if op not in OPS:
            raise ValueError(f"op must be one of {sorted(OPS)}, got {op!r}")
        value, threshold = _as_number("value", value), _as_number("threshold", threshold)
        if asserted_in is not None and (
            isinstance(asserted_in, str) or not set(asserted_in) <= set(runtime.PROFILES)
        ):
            raise ValueError(
                f"asserted_in must be a collection of {runtime.PROFILES}, got {asserted_in!r}"
            )
        asserted = asserted_in is None or runtime.profile() in asserted_in
        passed = bool(OPS[op](value, threshold))
        record = {
            "notebook": self.notebook,
            "name": name,
            "value": value,
            "op": op,
            "threshold": threshold,
            "seed": runtime.get_seed(),
            "threads": torch.get_num_threads(),
            "profile": runtime.profile(),
            "passed": passed,
            "asserted": asserted,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        for key, extra in (("chance", chance), ("baseline", baseline)):
            if extra is not None:
                record[key] = _as_number(key, extra)
        self._append(record)
        line = (
            f"checkpoint {self.notebook}/{name}: {value:.4g} {op} {threshold:.4g} "
            f"(margin {margin(value, op, threshold):+.3g}) {'✓' if passed else '✗'}"
        )
        if not asserted:
            line += f"  [not asserted in the {runtime.profile()} profile; asserted in " + (
                ", ".join(sorted(asserted_in)) + "]"
            )
        if chance is not None:
            line += f"  [chance {chance:.3g}]"
        if baseline is not None:
            line += f"  [baseline {baseline:.3g}]"
        if not self.quiet:
            print(line)
        if asserted and not passed:
            raise AssertionError(f"learning checkpoint failed: {line}")
        return value

    def _append(self, record: dict) -> None:
        # One short line per write in append mode: records from one process never interleave.
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_records(path: str | Path) -> list[dict]:
    """The records of one ``.jsonl`` file; a line that is not a whole record is skipped."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a run killed mid-write leaves at most one torn line
        if isinstance(record, dict) and {"notebook", "name", "value", "op", "threshold"} <= set(
            record
        ):
            records.append(record)
    return records
