"""The course as an nbgrader course: one assignment per chapter, autograded by the exercise checks.

Usage (``make assignments`` and ``make student``):
    python tools/assignments.py                    # every chapter
    python tools/assignments.py 00_tour 01_visual_features
    python tools/assignments.py --course DIR ...   # another course folder
    python tools/assignments.py --student [--force]  # also copy the release to _build/student/

It writes an nbgrader course folder (default ``_build/nbgrader``):

* ``source/<chapter>/<chapter>.ipynb`` — the instructor's notebook with nbgrader metadata. The
  code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes a *solution cell*, and
  each exercise's ``check("N.M", answer)`` a locked, autograded *test cell* worth one point that
  fails unless the answer passes (``check(..., raise_on_failure=True)``);
* ``release/<chapter>/<chapter>.ipynb`` — what nbgrader's own ``generate_assignment`` makes of
  it: the solutions replaced by ``raise NotImplementedError()``, the test cells locked.

Grading is nbgrader's: collect the students' notebooks into ``submitted/<student>/<chapter>/``
and run ``nbgrader autograde <chapter>`` in the course folder (README: "For teachers").

``--student`` copies the released notebooks to ``_build/student/`` for self-study, and never
overwrites a notebook a student has changed since it was written (``--force`` does).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
COURSE = ROOT / "_build" / "nbgrader"
STUDENT = ROOT / "_build" / "student"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHECK = re.compile(r"""^check\(\s*["'](\d+)\.(\d+)["']\s*,(.*)\)\s*$""", re.S)
CONFIG = """\
c = get_config()  # noqa: F821 (nbgrader's config loader defines it)
c.CourseDirectory.course_id = "cross-modal-learning"
c.CourseDirectory.root = {root!r}
c.ExecutePreprocessor.timeout = 1800  # a chapter trains its models before its last exercises
c.Execute.timeout = 1800
"""


#: Jupyter's tag for a cell that may raise: "Run All" (JupyterLab, nbclient, nbconvert) goes on
#: past it. A released solution cell raises NotImplementedError and its test cell fails until
#: the exercise is solved; with the tag, the rest of the chapter still runs (a build exercise
#: falls back to cmlib's piece), and nbgrader still sees the error and gives no point.
MAY_RAISE = "raises-exception"


def _metadata(grade_id: str, solution: bool, points: int | None = None) -> dict:
    grade = points is not None
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": grade,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def split_exercise(source: str) -> tuple[str, str, str] | None:
    """``(solution code, exercise id, test code)`` of a cell that holds a solution and its check.

    The cell's last statement must be ``check("N.M", answer)``; it becomes the test cell
    ``check("N.M", answer, raise_on_failure=True)``, so that a wrong answer fails autograding.
    """
    if BEGIN not in source:
        return None
    head, sep, last = source.rstrip().rpartition("\ncheck(")
    match = CHECK.match("check(" + last) if sep else None
    if match is None:
        raise ValueError(f'a solution cell must end with check("N.M", answer):\n{source}')
    exercise = f"{match.group(1)}.{match.group(2)}"
    test = f'assert check("{exercise}",{match.group(3)}, raise_on_failure=True)'
    return head.rstrip() + "\n", exercise, test


SOLVED = re.compile(r"^(?:def|class) (\w+)", re.M)


def _may_raise(cell) -> None:
    tags = cell.metadata.setdefault("tags", [])
    if MAY_RAISE not in tags:
        tags.append(MAY_RAISE)


def source_notebook(py: Path):
    """The chapter as an nbgrader source notebook (nbformat), solutions and test cells marked.

    Every cell that can raise in the release is tagged ``raises-exception``: the solution and
    test cells, and a later cell that calls a function or class the reader writes (``f(``; a
    build exercise's ``use_if_passed("N.M", f, ...)`` does not call it, and needs no tag).
    """
    import jupytext
    import nbformat

    nb = jupytext.read(py)
    cells, written = [], set()
    for cell in nb.cells:
        parts = split_exercise(cell.source) if cell.cell_type == "code" else None
        if parts is None:
            if cell.cell_type == "code" and any(
                re.search(rf"(?<![\w.]){name}\(", cell.source) for name in written
            ):
                _may_raise(cell)
            cells.append(cell)
            continue
        written |= set(SOLVED.findall(parts[0]))
        solution, exercise, test = parts
        grade_id = "ex" + exercise.replace(".", "_")
        cell.source = solution
        cell.metadata.update(_metadata(grade_id, solution=True))
        check = nbformat.v4.new_code_cell(test)
        check.metadata.update(_metadata(f"{grade_id}_check", solution=False, points=1))
        for part in (cell, check):
            _may_raise(part)
            cells.append(part)
    nb.cells = cells
    return nb


def nbgrader(args: list[str], course: Path) -> None:
    """Run nbgrader in ``course``, with this interpreter's scripts on the PATH.

    nbgrader calls ``alembic`` by name to set up its gradebook; in an unactivated venv that
    script is not on the PATH.
    """
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"],
        check=True,
        cwd=course,
        env=env,
    )


def write_course(stems: list[str], course: Path) -> None:
    """The course folder with every chapter's source notebook, then nbgrader's release.

    nbgrader runs once for all of them (its assignment id is a pattern): one process instead
    of one per chapter, which took most of a minute.
    """
    import nbformat

    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(CONFIG.format(root=str(course)))
    for stem in stems:
        folder = course / "source" / stem
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        nbformat.write(source_notebook(CHAPTERS / f"{stem}.py"), folder / f"{stem}.ipynb")
    pattern = stems[0] if len(stems) == 1 else "[0-9][0-9]_*"
    nbgrader(["generate_assignment", pattern, "--force"], course)
    for stem in stems:
        release = course / "release" / stem / f"{stem}.ipynb"
        if not release.exists():
            raise RuntimeError(f"nbgrader wrote no release of {stem} (expected {release})")
        print(f"assignment {stem}: {release}")


def copy_release(
    stems: list[str], course: Path, target: Path, force: bool = False, quiet: bool = False
) -> int:
    """Copy the released notebooks to ``target``; return how many edited ones were kept."""
    target.mkdir(parents=True, exist_ok=True)
    say = (lambda *a: None) if quiet else print
    manifest_path = target / ".manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    kept = 0
    for stem in stems:
        out = target / f"{stem}.ipynb"
        if out.exists() and not force:
            if manifest.get(out.name) != hashlib.sha256(out.read_bytes()).hexdigest():
                say(f"kept     {out} (changed since it was written; --force overwrites)")
                kept += 1
                continue
        shutil.copy(course / "release" / stem / f"{stem}.ipynb", out)
        manifest[out.name] = hashlib.sha256(out.read_bytes()).hexdigest()
        say(f"wrote    {out}")
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    say(f"student notebooks in {target} ({kept} kept)")
    return kept


def all_chapters() -> list[str]:
    return [p.stem for p in sorted(CHAPTERS.glob("[0-9][0-9]_*.py"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("chapters", nargs="*", help="chapter stems (default: all)")
    parser.add_argument("--course", type=Path, default=COURSE, help="the nbgrader course folder")
    parser.add_argument(
        "--student", action="store_true", help=f"copy the release to {STUDENT.relative_to(ROOT)}"
    )
    parser.add_argument("--force", action="store_true", help="overwrite edited student notebooks")
    args = parser.parse_args(argv)
    unknown = set(args.chapters) - set(all_chapters())
    if unknown:
        parser.error(f"unknown chapters {sorted(unknown)}; known: {all_chapters()}")
    stems = args.chapters or all_chapters()
    write_course(stems, args.course.resolve())
    if args.student:
        copy_release(stems, args.course.resolve(), STUDENT, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
