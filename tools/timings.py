"""Where CI's time goes: each stage's wall time and each notebook's, as one table.

Usage (the Makefile and ``.ci/run`` call it; it needs only the standard library, so it can time
the stage that builds the venv):
    python tools/timings.py begin                   # forget the records of an earlier run
    python tools/timings.py run STAGE -- CMD ...    # run CMD, record its wall time as STAGE
    python tools/timings.py report                  # print the table, write _build/timings.json

Each stage is one file under ``_build/timings/stages/``; the notebooks' times come from the
nbval plugin (``tools/nbval_lanes.py``), which writes ``_build/timings/notebooks.json``. A stage
that fails is recorded too (with its exit code), and ``run`` exits with that code; ``.ci/run``
prints the report on the way out, so a failing run still shows where its time went.

The budget (CI stays inside 50 of its 90 minutes) is part of the report: a notebook over 150 s
or a total over 50 minutes is flagged, not failed, because the machine's speed varies.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "_build" / "timings"
STAGES = RECORDS / "stages"
NOTEBOOKS = RECORDS / "notebooks.json"
REPORT = ROOT / "_build" / "timings.json"

#: Seconds a notebook may take under nbval on 2 cores, and the whole of `.ci/run`.
NOTEBOOK_BUDGET_S = 150
TOTAL_BUDGET_S = 50 * 60


def write_json(path: Path, data: object) -> None:
    """Write ``data`` as JSON atomically (a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def begin() -> int:
    shutil.rmtree(RECORDS, ignore_errors=True)
    REPORT.unlink(missing_ok=True)
    return 0


def run(stage: str, command: list[str]) -> int:
    if not command:
        raise SystemExit("timings.py run STAGE -- CMD: no command given")
    start = time.monotonic()
    code = subprocess.call(command)
    seconds = time.monotonic() - start
    order = len(list(STAGES.glob("*.json"))) if STAGES.exists() else 0
    write_json(
        STAGES / f"{stage}.json",
        {"stage": stage, "seconds": round(seconds, 1), "exit_code": code, "order": order},
    )
    return code


def collect() -> dict:
    """The records as one table: stages in the order they ran, notebooks by name."""
    stages = sorted(
        (json.loads(p.read_text()) for p in STAGES.glob("*.json")) if STAGES.exists() else [],
        key=lambda s: s["order"],
    )
    notebooks = json.loads(NOTEBOOKS.read_text()) if NOTEBOOKS.exists() else {}
    total = sum(s["seconds"] for s in stages)
    return {
        "stages": stages,
        "notebooks": notebooks.get("notebooks", []),
        "nbval": {k: v for k, v in notebooks.items() if k != "notebooks"},
        "total_seconds": round(total, 1),
        "budget": {"notebook_seconds": NOTEBOOK_BUDGET_S, "total_seconds": TOTAL_BUDGET_S},
    }


def minutes(seconds: float) -> str:
    return f"{seconds / 60:5.1f} min"


def render(table: dict) -> str:
    lines = ["", "== Where the time went (_build/timings.json)", ""]
    if table["notebooks"]:
        lines.append(f"{'notebook':<36}{'lane':>5}{'wall s':>9}  ")
        for nb in table["notebooks"]:
            flag = "  over 150 s" if nb["seconds"] > NOTEBOOK_BUDGET_S else ""
            status = "" if nb["passed"] else "  FAILED"
            lines.append(f"{nb['name']:<36}{nb['lane']:>5}{nb['seconds']:9.0f}{flag}{status}")
        nbval = table["nbval"]
        if nbval.get("lanes"):
            busy = ", ".join(f"lane {k} {v:.0f} s" for k, v in sorted(nbval["lanes"].items()))
            lines.append(f"{'':<36}{'':>5}{'':>9}  ({busy}; {nbval.get('mode', '')})")
        lines.append("")
    lines.append(f"{'stage':<36}{'time':>14}")
    for stage in table["stages"]:
        failed = f"  exit {stage['exit_code']}" if stage["exit_code"] else ""
        lines.append(f"{stage['stage']:<36}{minutes(stage['seconds']):>14}{failed}")
    total = table["total_seconds"]
    over = "  over the 50-minute budget" if total > TOTAL_BUDGET_S else ""
    lines.append(f"{'total':<36}{minutes(total):>14}{over}")
    return "\n".join(lines)


def report() -> int:
    table = collect()
    write_json(REPORT, table)
    print(render(table))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("begin")
    run_parser = sub.add_parser("run")
    run_parser.add_argument("stage")
    sub.add_parser("report")
    args = parser.parse_args(argv)
    if args.action == "begin":
        return begin()
    if args.action == "run":
        return run(args.stage, command)
    return report()


if __name__ == "__main__":
    sys.exit(main())
