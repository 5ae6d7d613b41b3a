"""The book's table of contents follows the course's reading order (tools/book.py)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("book", ROOT / "tools" / "book.py")
book = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(book)


def test_the_book_lists_every_chapter_once():
    listed = [p.name for p in book.chapter_notebooks()]
    assert sorted(listed) == sorted(p.name for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def test_chapters_come_in_number_order_and_parts_in_part_order():
    """File names do not sort into parts: chapter 06's part 1 is 06_cyclegan, its part 2
    06_alignment. The book orders each chapter's notebooks by the part their title names."""
    order = [p.stem for p in book.chapter_notebooks()]
    assert [stem[:2] for stem in order] == sorted(stem[:2] for stem in order)
    assert order.index("06_cyclegan") < order.index("06_alignment")
    assert order.index("06_cyclegan_one_direction") < order.index("06_alignment_spaces")
    for chapter in {stem[:2] for stem in order}:
        parts = [
            book.title_of(ROOT / "chapters" / f"{stem}.ipynb")
            for stem in order
            if stem.startswith(chapter)
        ]
        numbers = [
            int(n)
            for title in parts
            for n in re.findall(r"\bpart (\d+)\b", title, flags=re.IGNORECASE)
        ]
        assert numbers == sorted(numbers), (chapter, parts)
