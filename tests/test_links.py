"""Every relative link and cross-reference in the course's text resolves (tools/links.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("links", ROOT / "tools" / "links.py")
links = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(links)


def test_every_reference_in_the_course_resolves():
    broken = links.broken_references()
    assert not broken, "fix these references:\n" + "\n".join(broken)


def test_the_check_finds_each_kind_of_broken_reference(tmp_path):
    (tmp_path / "chapters" / "notes").mkdir(parents=True)
    (tmp_path / "cmlib").mkdir()
    (tmp_path / "cmlib" / "judge.py").write_text("")
    (tmp_path / "chapters" / "01_visual.ipynb").write_text("{}")
    (tmp_path / "chapters" / "notes" / "a.md").write_text("")
    (tmp_path / "README.md").write_text(
        "[ok](chapters/notes/a.md#part) [gone](chapters/notes/b.md) [web](https://example.org)\n"
        "`cmlib/judge.py` `cmlib/judge` `cmlib/missing.py` `chapters/NN_name.py`\n"
        "`01_visual` `05_captioning_generalisation` `data/cache/anything.npz` `data/cache`\n"
        '`cmlib/judge.py:12` `tests/test_gone.py::test_x` [titled](gone.md "a title")\n'
        "```\n`cmlib/in_a_fenced_block.py`\n```\n"
    )
    (tmp_path / "chapters" / "01_visual.py").write_text(
        'x = "`cmlib/in_code_is_fine.py`"\n# see `02_missing` and [this](../README.md)\n'
    )
    broken = links.broken_references(tmp_path)
    assert broken == [
        "README.md: link (chapters/notes/b.md) (no such file)",
        "README.md: link (gone.md) (no such file)",
        "README.md: `cmlib/missing.py` (no such path)",
        "README.md: `05_captioning_generalisation` (no chapter of that name)",
        "README.md: `tests/test_gone.py` (no such path)",
        "chapters/01_visual.py: `02_missing` (no chapter of that name)",
    ]
