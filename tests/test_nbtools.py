"""Notebook tooling: the pair check, kernelspecs, JupyterLab's settings."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("nbtools", ROOT / "tools" / "nbtools.py")
nbtools = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nbtools)


def test_committed_pairs_are_in_sync():
    assert nbtools.check_pairs() == 0


def test_every_chapter_names_the_kernelspec_jupyterlab_writes():
    for py, ipynb in nbtools.chapter_pairs():
        header = py.read_text(encoding="utf-8").split("# ---\n")[1]
        assert "display_name: Python 3 (ipykernel)" in header and "name: python3" in header, py
        assert json.loads(ipynb.read_text())["metadata"]["kernelspec"] == nbtools.KERNELSPEC, ipynb


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
