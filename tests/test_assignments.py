"""The course as an nbgrader course: the instructor's solutions get full marks, stubs none.

Builds the nbgrader course of chapter 00 (the fastest to execute), has nbgrader release it,
then autogrades three submissions with nbgrader itself: the instructor's notebook, the
released stubs, and the instructor's notebook with one plausible wrong answer. A chapter in
miniature does the same for a build exercise whose wrong answer is a stray ``detach``, and
chapter 00's release is run from top to bottom with nothing solved.
"""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("assignments", ROOT / "tools" / "assignments.py")
assignments = importlib.util.module_from_spec(spec)
spec.loader.exec_module(assignments)

CHAPTER = "00_tour"
WRONG_0_2 = """from cmlib.data.shapes.text import POSITION_WORDS


def one_object_caption(scene):
    obj = scene.objects[0]  # forgets the size
    return f"a {obj.color} {obj.shape} {POSITION_WORDS[scene.position][0]}"
"""


def test_split_exercise_turns_the_check_into_a_test_cell():
    cell = (
        "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\n\n"
        'check("3.1", f)\n'
    )
    solution, exercise, test = assignments.split_exercise(cell)
    assert exercise == "3.1" and test == 'assert check("3.1", f, raise_on_failure=True)'
    assert "BEGIN SOLUTION" in solution and "check(" not in solution
    assert assignments.split_exercise("print(1)\n") is None
    with pytest.raises(ValueError, match="must end with check"):
        assignments.split_exercise("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\nprint(x)\n")


def test_every_chapter_makes_an_nbgrader_source_notebook():
    for py in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py")):
        nb = assignments.source_notebook(py)
        marks = [c.metadata["nbgrader"] for c in nb.cells if "nbgrader" in c.metadata]
        solutions = [m for m in marks if m["solution"]]
        tests = [m for m in marks if m["grade"]]
        # one solution cell per exercise; a cell may hold several regions (a class's methods)
        cells = [c for c in nb.cells if "### BEGIN SOLUTION" in c.source]
        assert len(solutions) == len(tests) == len(cells), py
        assert sum(c.source.count("### BEGIN SOLUTION") for c in cells) == py.read_text().count(
            "### BEGIN SOLUTION"
        ), py
        assert all(m["points"] == 1 and m["locked"] for m in tests)
        assert len({m["grade_id"] for m in marks}) == len(marks)


def _score(course: Path, student: str, chapter: str = CHAPTER) -> float:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return gradebook.find_submission(chapter, student).score


def test_nbgrader_autograde_full_marks_zero_and_one_lost_point(tmp_path, monkeypatch):
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CMLIB_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)  # the test cells raise by themselves
    course = tmp_path / "course"
    assignments.write_course([CHAPTER], course)
    release = course / "release" / CHAPTER / f"{CHAPTER}.ipynb"
    source = course / "source" / CHAPTER / f"{CHAPTER}.ipynb"
    wrong = json.loads(source.read_text())  # every solution right but one
    cell = next(
        c for c in wrong["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "ex0_2"
    )
    cell["source"] = WRONG_0_2
    for student, notebook in (
        ("instructor", source.read_text()),
        ("stubs", release.read_text()),
        ("one-wrong", json.dumps(wrong)),
    ):
        folder = course / "submitted" / student / CHAPTER
        folder.mkdir(parents=True)
        (folder / f"{CHAPTER}.ipynb").write_text(notebook)
    for student in ("instructor", "stubs", "one-wrong"):
        assignments.nbgrader(["db", "student", "add", student], course)
    assignments.nbgrader(["autograde", CHAPTER, "--force"], course)
    assert _score(course, "instructor") == 3.0
    assert _score(course, "stubs") == 0.0
    assert _score(course, "one-wrong") == 2.0
    shutil.rmtree(course / "autograded", ignore_errors=True)


def test_student_copies_keep_student_edits(tmp_path):
    course, target = tmp_path / "course", tmp_path / "student"
    (course / "release" / "99_test").mkdir(parents=True)
    released = course / "release" / "99_test" / "99_test.ipynb"
    released.write_text('{"cells": ["released"]}')
    assert assignments.copy_release(["99_test"], course, target, quiet=True) == 0
    out = target / "99_test.ipynb"
    assert out.read_text() == released.read_text()
    out.write_text('{"cells": ["student work"]}')
    released.write_text('{"cells": ["released again"]}')
    assert assignments.copy_release(["99_test"], course, target, quiet=True) == 1
    assert "student work" in out.read_text()  # not overwritten
    assignments.copy_release(["99_test"], course, target, force=True, quiet=True)
    assert "released again" in out.read_text()


def test_released_notebooks_carry_the_kernelspec(tmp_path):
    assignments.write_course([CHAPTER], tmp_path / "course")
    nb = json.loads((tmp_path / "course" / "release" / CHAPTER / f"{CHAPTER}.ipynb").read_text())
    assert nb["metadata"]["kernelspec"] == {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }


def test_the_readmes_exercise_table_lists_each_chapters_exercises():
    """The teachers' table in README.md names, for each notebook, the exercises its `.py` checks."""
    import re

    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(\d\d_\w+)` \| ([\d., ()a-z]+?) \| \d+ min \|$", readme, re.M))
    assert rows, "README.md has no exercise table"
    for py in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py")):
        checked = sorted(set(re.findall(r'^check\("(\d+\.\d+)"', py.read_text(), re.M)))
        listed = sorted(re.findall(r"\d+\.\d+", rows.get(py.stem, "")))
        assert listed == checked, (
            f"README.md's exercise table: {py.stem} lists {listed}, checks {checked}"
        )


def test_the_release_runs_to_the_end_with_nothing_solved(tmp_path, monkeypatch):
    """A student who runs every cell of an unsolved release reaches the chapter's end: the
    solution and test cells that raise carry Jupyter's raises-exception tag, and the build
    exercises fall back to cmlib's pieces."""
    import nbclient
    import nbformat

    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CMLIB_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)
    course = tmp_path / "course"
    assignments.write_course([CHAPTER], course)
    release = nbformat.read(course / "release" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    graded = [c for c in release.cells if "nbgrader" in c.metadata]
    assert graded and all(assignments.MAY_RAISE in c.metadata.get("tags", []) for c in graded)
    nbclient.NotebookClient(
        release, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()  # raises CellExecutionError at the first untagged cell that fails
    code = [c for c in release.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "a cell did not run"
    failed = [c for c in code if any(o.get("output_type") == "error" for o in c.outputs)]
    assert failed and all(c in graded for c in failed)  # only the exercises' own cells fail


def test_every_solution_and_test_cell_may_raise():
    for py in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py")):
        for cell in assignments.source_notebook(py).cells:
            if "nbgrader" in cell.metadata:
                assert assignments.MAY_RAISE in cell.metadata.get("tags", []), py.name


def test_a_cell_that_calls_the_readers_function_may_raise_and_use_if_passed_needs_no_tag():
    nb = assignments.source_notebook(ROOT / "chapters" / "11_capstone_studio.py")
    callers = [
        c
        for c in nb.cells
        if c.cell_type == "code"
        and "nbgrader" not in c.metadata
        and assignments.MAY_RAISE in c.metadata.get("tags", [])
    ]
    assert [("scene_agreement(" in c.source, "combined_ranking(" in c.source) for c in callers] == [
        (True, False),
        (False, True),
    ]
    nb = assignments.source_notebook(ROOT / "chapters" / "01_visual_features.py")
    builds = [c for c in nb.cells if "use_if_passed(" in c.source]
    assert builds and not any(assignments.MAY_RAISE in c.metadata.get("tags", []) for c in builds)


#: A chapter in miniature with a function exercise (3.1) and a build exercise (3.8, as chapter 03
#: has it: the reader's fusion rule, then a cell that runs with it).
BUILD_CHAPTER = """# %%
import torch
import torch.nn.functional as F

from cmlib.exercises import check, use_if_passed
from cmlib.fusion import low_rank_bilinear

# %%
def multiplicative_fusion(vision, language, w_vision, w_language):
    ### BEGIN SOLUTION
    return torch.tanh(vision @ w_vision) * torch.tanh(language @ w_language)
    ### END SOLUTION


check("3.1", multiplicative_fusion)

# %%
def my_low_rank_bilinear(vision, language, vision_factor, language_factor, out):
    ### BEGIN SOLUTION
    joint = torch.tanh(vision_factor(vision)) * torch.tanh(language_factor(language))
    return F.relu(out(joint))
    ### END SOLUTION


check("3.8", my_low_rank_bilinear)

# %%
rule = use_if_passed("3.8", my_low_rank_bilinear, low_rank_bilinear, "this model fuses with")
layers = torch.nn.Linear(3, 4), torch.nn.Linear(2, 4), torch.nn.Linear(4, 5)
print(rule(torch.randn(2, 3), torch.randn(2, 2), *layers).shape)
"""
#: The plausible mistake: the right values, with the language factor detached.
WRONG_BUILD = """def my_low_rank_bilinear(vision, language, vision_factor, language_factor, out):
    joint = torch.tanh(vision_factor(vision)) * torch.tanh(language_factor(language)).detach()
    return F.relu(out(joint))
"""


def test_a_build_answer_with_a_stray_detach_loses_exactly_its_point(tmp_path, monkeypatch):
    """A build exercise graded by nbgrader: the instructor's notebook gets full marks, the
    release none, and a fusion rule whose values are right but whose gradient is cut by a
    detach loses its one point and no other (the chapter still runs on cmlib's rule)."""
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    (chapters / "99_build.py").write_text(BUILD_CHAPTER)
    monkeypatch.setattr(assignments, "CHAPTERS", chapters)
    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)
    course = tmp_path / "course"
    assignments.write_course(["99_build"], course)
    release = course / "release" / "99_build" / "99_build.ipynb"
    source = course / "source" / "99_build" / "99_build.ipynb"
    wrong = json.loads(source.read_text())
    cell = next(
        c for c in wrong["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "ex3_8"
    )
    cell["source"] = WRONG_BUILD
    for student, notebook in (
        ("instructor", source.read_text()),
        ("stubs", release.read_text()),
        ("stray-detach", json.dumps(wrong)),
    ):
        folder = course / "submitted" / student / "99_build"
        folder.mkdir(parents=True)
        (folder / "99_build.ipynb").write_text(notebook)
        assignments.nbgrader(["db", "student", "add", student], course)
    assignments.nbgrader(["autograde", "99_build", "--force"], course)
    assert _score(course, "instructor", "99_build") == 2.0
    assert _score(course, "stubs", "99_build") == 0.0
    assert _score(course, "stray-detach", "99_build") == 1.0
