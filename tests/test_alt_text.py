"""Every figure a chapter shows has alt text (one sentence for a reader who cannot see it).

Chapters show figures through :func:`cmlib.viz.show`, whose output carries the PNG inside an
HTML ``<img alt="…">``; JupyterLab and the book both render that HTML. This test reads the
committed outputs, so a figure shown any other way (``plt.show()``, or a figure the inline backend
shows at the end of a cell) fails it after the next re-execution. The book test
(``tests/ui/test_book.py``) checks the same in the built HTML.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
ALT = re.compile(r'<img\b[^>]*\balt="([^"]+)"')


def figures_without_alt(notebook: dict) -> list[str]:
    """``cell N`` for every image output of ``notebook`` that has no alt text."""
    missing = []
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" not in data and "image/jpeg" not in data:
                continue
            html = data.get("text/html", "")
            html = "".join(html) if isinstance(html, list) else html
            match = ALT.search(html)
            if match is None or not match.group(1).strip():
                missing.append(f"cell {index}")
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_committed_figure_has_alt_text(path):
    missing = figures_without_alt(json.loads(path.read_text(encoding="utf-8")))
    assert not missing, (
        f"{path.name}: figures without alt text in {missing}; show them with "
        "cmlib.viz.show(fig, alt) and re-execute the notebook"
    )


def test_chapters_do_not_show_figures_without_alt_text():
    bare = [
        f"{path.name}:{number}"
        for path in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bplt\.show\(", line)
    ]
    assert not bare, f"plt.show() shows a figure without alt text (use cmlib.viz.show): {bare}"


def test_the_check_finds_a_figure_without_alt_text():
    png = {"output_type": "display_data", "data": {"image/png": "iVBOR"}, "metadata": {}}
    with_alt = {
        "output_type": "display_data",
        "data": {"image/png": "iVBOR", "text/html": '<img src="data:image/png;base64,iVBOR" '
                 'alt="A bar chart of R@1 per model.">'},
        "metadata": {},
    }  # fmt: skip
    empty_alt = {"output_type": "display_data",
                 "data": {"image/png": "iVBOR", "text/html": '<img src="x" alt=" ">'}}  # fmt: skip
    notebook = {"cells": [{"cell_type": "code", "outputs": outputs} for outputs in
                          ([png], [with_alt], [empty_alt], [])]}  # fmt: skip
    assert figures_without_alt(notebook) == ["cell 0", "cell 2"]
