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


def make_student(force: bool, target: Path | None = None, quiet: bool = False) -> int:
    """Write student notebooks (solutions stripped), never overwriting a student's edits.

    Args:
        force: overwrite notebooks that were changed since they were written.
        target: the folder (default ``_build/student``).
        quiet: print nothing.
    """
    import jupytext

    target = Path(target) if target is not None else ROOT / "_build" / "student"
    target.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if quiet else print
    manifest_path = target / ".manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    kept = 0
    for py, _ in chapter_pairs():
        nb = jupytext.reads(strip_solutions(py.read_text(encoding="utf-8")), fmt="py:percent")
        out = target / py.with_suffix(".ipynb").name
        if out.exists() and not force:
            digest = hashlib.sha256(out.read_bytes()).hexdigest()
            if manifest.get(out.name) != digest:
                say(f"kept     {out} (changed since it was written; --force overwrites)")
                kept += 1
                continue
        jupytext.write(nb, out, fmt="ipynb")
        manifest[out.name] = hashlib.sha256(out.read_bytes()).hexdigest()
        say(f"wrote    {out}")
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    say(f"student notebooks in {target} ({kept} kept)")
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
