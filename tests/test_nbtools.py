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


def test_every_chapter_names_the_kernelspec_jupyterlab_writes():
    for py, ipynb in nbtools.chapter_pairs():
        header = py.read_text(encoding="utf-8").split("# ---\n")[1]
        assert "display_name: Python 3 (ipykernel)" in header and "name: python3" in header, py
        assert json.loads(ipynb.read_text())["metadata"]["kernelspec"] == nbtools.KERNELSPEC, ipynb


def test_student_notebooks_carry_the_kernelspec(tmp_path, monkeypatch):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    header = (ROOT / "chapters" / "00_tour.py").read_text().split("# %%")[0]
    (chapters / "99_test.py").write_text(header + CHAPTER)
    monkeypatch.setattr(nbtools, "ROOT", tmp_path)
    monkeypatch.setattr(nbtools, "CHAPTERS", chapters)
    nbtools.make_student(force=True)
    nb = json.loads((tmp_path / "_build" / "student" / "99_test.ipynb").read_text())
    assert nb["metadata"]["kernelspec"] == nbtools.KERNELSPEC


def test_lab_settings_open_chapters_as_notebooks_and_ask_no_news(tmp_path):
    nbtools.lab_settings(tmp_path)
    settings = json.loads((tmp_path / "share/jupyter/lab/settings/overrides.json").read_text())
    viewers = settings["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers == {"python": "Jupytext Notebook"}
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def test_make_lab_allows_root():
    makefile = (ROOT / "Makefile").read_text()
    assert "--allow-root" in makefile and "$(ROOT_FLAG)" in makefile


def test_every_committed_notebook_was_executed_by_a_python_kernel():
    """A notebook without language_info is rewritten by JupyterLab the moment a kernel connects."""
    for _, ipynb in nbtools.chapter_pairs():
        metadata = json.loads(ipynb.read_text())["metadata"]
        assert metadata.get("language_info", {}).get("name") == "python", (
            f"{ipynb.name} has no language_info: execute it (make book EXECUTE=1)"
        )
