"""Notebook tooling for the course: the pair check and JupyterLab's settings.

Usage (the Makefile calls these):
    python tools/nbtools.py check-pairs          # every .ipynb converts to exactly its .py
    python tools/nbtools.py lab-settings VENV     # JupyterLab opens .py chapters as notebooks
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"


def chapter_pairs() -> list[tuple[Path, Path]]:
    """(``.py``, ``.ipynb``) of every chapter, in order."""
    return [(py, py.with_suffix(".ipynb")) for py in sorted(CHAPTERS.glob("[0-9][0-9]_*.py"))]


def to_percent(notebook: Path) -> str:
    """The py:percent text jupytext makes of ``notebook`` with the repository's settings."""
    import jupytext

    nb = jupytext.read(notebook)
    return jupytext.writes(nb, fmt="py:percent", config=jupytext.config.load_jupytext_config(ROOT))


def check_pairs() -> int:
    """Fail, with a diff, where a committed .ipynb does not convert to its committed .py."""
    problems = 0
    pairs = chapter_pairs()
    for py, ipynb in pairs:
        if not ipynb.exists():
            print(f"MISSING  {ipynb.relative_to(ROOT)} (run `make sync`)")
            problems += 1
            continue
        expected, actual = to_percent(ipynb), py.read_text(encoding="utf-8")
        if expected != actual:
            problems += 1
            print(f"OUT OF SYNC  {py.relative_to(ROOT)} <-> {ipynb.name}")
            sys.stdout.writelines(
                difflib.unified_diff(
                    actual.splitlines(True),
                    expected.splitlines(True),
                    fromfile=str(py.relative_to(ROOT)),
                    tofile=f"{ipynb.name} as py:percent",
                    n=2,
                )
            )
    orphans = [nb for nb in CHAPTERS.glob("*.ipynb") if not nb.with_suffix(".py").exists()]
    for nb in orphans:
        print(f"MISSING  {nb.with_suffix('.py').relative_to(ROOT)}")
    problems += len(orphans)
    print(f"pair check: {len(pairs)} chapters, {problems} problem(s)")
    return 1 if problems else 0


#: What JupyterLab's settings say in the course's venv: chapters open as notebooks, and no news
#: prompt or update check (they ask a website, and nothing here reaches one).
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}
#: The kernelspec every chapter names, exactly as JupyterLab writes it for the venv's kernel, so
#: that opening and saving an unchanged chapter changes no byte.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def lab_settings(venv: Path) -> int:
    """Write the course's JupyterLab defaults (:data:`LAB_SETTINGS`) into ``venv``."""
    settings = Path(venv) / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "overrides.json").write_text(json.dumps(LAB_SETTINGS, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check-pairs")
    lab = sub.add_parser("lab-settings")
    lab.add_argument("venv", type=Path)
    args = parser.parse_args(argv)
    if args.command == "check-pairs":
        return check_pairs()
    return lab_settings(args.venv)


if __name__ == "__main__":
    sys.exit(main())
