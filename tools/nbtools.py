"""Notebook tooling for the course: pair check, student notebooks, the HTML book.

Usage (the Makefile calls these):
    python tools/nbtools.py check-pairs          # every .ipynb converts to exactly its .py
    python tools/nbtools.py student [--force]     # _build/student/, solutions replaced
    python tools/nbtools.py book                  # execute chapters, write _build/html/
    python tools/nbtools.py lab-settings VENV     # JupyterLab opens .py chapters as notebooks
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import html
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHECK_CALL = re.compile(r"""check\(\s*["'](\d+\.\d+)["']""")


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


def strip_solutions(source: str) -> str:
    """Replace every ``### BEGIN SOLUTION`` … ``### END SOLUTION`` block with a stub.

    The stub raises ``NotImplementedError("Exercise N.M")``, where N.M is the id
    of the first ``check("N.M", …)`` after the block in the same cell.
    """
    lines, out, i = source.splitlines(keepends=True), [], 0
    while i < len(lines):
        line = lines[i]
        if line.strip() != BEGIN:
            out.append(line)
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == END), None)
        if end is None:
            raise ValueError(f"line {i + 1}: {BEGIN} without {END}")
        rest = "".join(lines[end:])
        cell_rest = re.split(r"^# %%", rest, maxsplit=1, flags=re.M)[0]
        match = CHECK_CALL.search(cell_rest)
        if match is None:
            raise ValueError(f'line {i + 1}: no check("N.M", ...) after this solution in its cell')
        indent = line[: len(line) - len(line.lstrip())]
        out.append(f'{indent}raise NotImplementedError("Exercise {match.group(1)}")\n')
        i = end + 1
    return "".join(out)


def make_student(force: bool) -> int:
    """Write student notebooks to _build/student/, never overwriting a student's edits."""
    import jupytext

    target = ROOT / "_build" / "student"
    target.mkdir(parents=True, exist_ok=True)
    manifest_path = target / ".manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    kept = 0
    for py, _ in chapter_pairs():
        text = py.read_text(encoding="utf-8")
        if BEGIN not in text and not py.name.startswith("00"):
            pass  # chapters without exercises are still copied, for a complete student set
        nb = jupytext.reads(strip_solutions(text), fmt="py:percent")
        out = target / py.with_suffix(".ipynb").name
        if out.exists() and not force:
            digest = hashlib.sha256(out.read_bytes()).hexdigest()
            if manifest.get(out.name) != digest:
                print(
                    f"kept     {out.relative_to(ROOT)} "
                    "(changed since it was written; --force overwrites)"
                )
                kept += 1
                continue
        jupytext.write(nb, out, fmt="ipynb")
        manifest[out.name] = hashlib.sha256(out.read_bytes()).hexdigest()
        print(f"wrote    {out.relative_to(ROOT)}")
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    print(f"student notebooks in {target.relative_to(ROOT)} ({kept} kept)")
    return 0


def build_book() -> int:
    """Execute every chapter in place (refreshing outputs), then write the HTML book."""
    html_dir = ROOT / "_build" / "html"
    html_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for py, ipynb in chapter_pairs():
        subprocess.run([sys.executable, "-m", "jupytext", "--sync", str(py)], check=True)
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "jupyter",
                "nbconvert",
                "--to",
                "notebook",
                "--execute",
                "--inplace",
                "--ExecutePreprocessor.timeout=1200",
                str(ipynb),
            ],
            check=True,
            cwd=CHAPTERS,
        )
        seconds = time.perf_counter() - start
        subprocess.run(
            [
                sys.executable,
                "-m",
                "jupyter",
                "nbconvert",
                "--to",
                "html",
                "--output-dir",
                str(html_dir),
                str(ipynb),
            ],
            check=True,
        )
        title = _title(ipynb)
        rows.append((ipynb.stem, title, seconds))
        print(f"executed {ipynb.name} in {seconds:.0f} s")
    items = "\n".join(
        f'<li><a href="{html.escape(stem)}.html">{html.escape(title)}</a> '
        f"<small>({seconds:.0f} s on the cpu profile)</small></li>"
        for stem, title, seconds in rows
    )
    (html_dir / "index.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>Cross-Modal Learning, Hands-On</title>"
        "<h1>Cross-Modal Learning, Hands-On</h1>"
        "<p>The executable companion to 《提示词驱动的跨模态学习：整合视觉和语言信息》.</p>"
        f"<ol start='0'>{items}</ol>\n",
        encoding="utf-8",
    )
    print(f"book: {html_dir.relative_to(ROOT)}/index.html")
    return 0


def _title(ipynb: Path) -> str:
    nb = json.loads(ipynb.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ipynb.stem


def lab_settings(venv: Path) -> int:
    """Make JupyterLab (in ``venv``) open py:percent chapters as notebooks on double-click."""
    settings = Path(venv) / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    overrides = {
        "@jupyterlab/docmanager-extension:plugin": {
            "defaultViewers": {"python": "Jupytext Notebook"}
        }
    }
    (settings / "overrides.json").write_text(json.dumps(overrides, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check-pairs")
    student = sub.add_parser("student")
    student.add_argument("--force", action="store_true", help="overwrite student edits")
    sub.add_parser("book")
    lab = sub.add_parser("lab-settings")
    lab.add_argument("venv", type=Path)
    args = parser.parse_args(argv)
    if args.command == "check-pairs":
        return check_pairs()
    if args.command == "student":
        return make_student(args.force)
    if args.command == "book":
        return build_book()
    return lab_settings(args.venv)


if __name__ == "__main__":
    sys.exit(main())
