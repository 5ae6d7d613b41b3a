"""Notebook tooling: solution stripping, student notebooks, the pair check."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("nbtools", ROOT / "tools" / "nbtools.py")
nbtools = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nbtools)

CHAPTER = """# %% [markdown]
# # 99 · Test

# %%
def relu(x):
    ### BEGIN SOLUTION
    return max(x, 0)
    ### END SOLUTION


check("9.1", relu)

# %%
print("kept")
"""


def test_strip_solutions_names_the_exercise():
    out = nbtools.strip_solutions(CHAPTER)
    assert 'raise NotImplementedError("Exercise 9.1")' in out
    assert "return max" not in out and "BEGIN SOLUTION" not in out
    assert "    raise NotImplementedError" in out  # indentation kept
    assert 'print("kept")' in out


def test_strip_solutions_errors():
    with pytest.raises(ValueError, match="without"):
        nbtools.strip_solutions("### BEGIN SOLUTION\nx = 1\n")
    with pytest.raises(ValueError, match="no check"):
        nbtools.strip_solutions(
            "### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n# %%\ncheck('1.1', x)\n"
        )


def test_student_notebooks_keep_student_edits(tmp_path, monkeypatch):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    (chapters / "99_test.py").write_text(CHAPTER)
    monkeypatch.setattr(nbtools, "ROOT", tmp_path)
    monkeypatch.setattr(nbtools, "CHAPTERS", chapters)
    nbtools.make_student(force=False)
    out = tmp_path / "_build" / "student" / "99_test.ipynb"
    source = "".join("".join(c["source"]) for c in json.loads(out.read_text())["cells"])
    assert "NotImplementedError" in source and "return max" not in source
    out.write_text(out.read_text().replace("kept", "student work"))
    nbtools.make_student(force=False)
    assert "student work" in out.read_text()  # not overwritten
    nbtools.make_student(force=True)
    assert "student work" not in out.read_text()


def test_committed_pairs_are_in_sync():
    assert nbtools.check_pairs() == 0
