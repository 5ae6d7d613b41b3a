"""Every relative link and cross-reference in the course's text resolves.

Three kinds are checked, in README.md, cmlib/README.md, data/README.md, chapters/notes/*.md and
the markdown cells and comments of chapters/*.py:

* Markdown links ``[text](target)`` with a relative target: the file exists (relative to the
  file that links; a ``#fragment`` is ignored, an ``http(s)``/``mailto`` target is not checked);
* repository paths in backticks, such as ``chapters/notes/04_prompt_generation.md`` or
  ``cmlib/judge.py``: the path exists, from the repository's root or from the folder of the
  file that names it, with or without ``.py`` (a path with a wildcard or a placeholder, and
  the git-ignored ``data/cache/`` and anything under it, made at run time, are skipped);
* chapter names in backticks, such as ``05_captioning_heldout``: ``chapters/<name>.ipynb``
  exists.

``python tools/links.py`` prints each broken reference and exits 1 if there is one; the unit
tests run the same check.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^\s*```.*?^\s*```", re.S | re.M)
_SUFFIX = re.compile(r"(::.*|:\d+(:\d+)?)$")  # a test id or a line number after a path
_CODE = re.compile(r"`([^`\n]+)`")
_ROOTS = ("chapters/", "cmlib/", "tools/", "tests/", "data/", "models/", "benchmarks/",
          "scripts/")  # fmt: skip
_CHAPTER = re.compile(r"^\d\d_[a-z0-9_]+$")
_PLACEHOLDER = re.compile(r"[*<>{}]|\.\.\.|…|NN_|\bN\b")


def text_files(root: Path = ROOT) -> list[Path]:
    """The files whose references are checked."""
    files = [root / "README.md", root / "cmlib" / "README.md", root / "data" / "README.md"]
    files += sorted((root / "chapters" / "notes").glob("*.md"))
    files += sorted((root / "chapters").glob("[0-9][0-9]_*.py"))
    return [f for f in files if f.exists()]


def _prose(path: Path) -> str:
    """A chapter's markdown cells and comments (its code may build paths); other files whole."""
    if path.suffix != ".py":
        return _FENCE.sub("", path.read_text(encoding="utf-8"))
    return "\n".join(
        line.lstrip()[1:] for line in path.read_text(encoding="utf-8").splitlines()
        if line.lstrip().startswith("#")
    )  # fmt: skip


def _exists(relative: str, *folders: Path) -> bool:
    return any((f / name).exists() for f in folders for name in (relative, relative + ".py"))


def broken_references(root: Path = ROOT) -> list[str]:
    """``"file: reference (why)"`` for every reference that does not resolve."""
    broken = []
    for path in text_files(root):
        where = path.relative_to(root)
        text = _prose(path)
        for target in _LINK.findall(text):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            file_part = target.split("#", 1)[0]
            base = root if file_part.startswith("/") else path.parent
            if file_part and not (base / file_part.lstrip("/")).exists():
                broken.append(f"{where}: link ({target}) (no such file)")
        for code in _CODE.findall(text):
            code = _SUFFIX.sub("", code.strip())
            if _PLACEHOLDER.search(code) or " " in code:
                continue
            if (
                code.startswith(_ROOTS)
                and not (code.rstrip("/") == "data/cache" or code.startswith("data/cache/"))
                and not _exists(code.rstrip("/"), root, path.parent)
            ):
                broken.append(f"{where}: `{code}` (no such path)")
            elif _CHAPTER.match(code) and not (root / "chapters" / f"{code}.ipynb").exists():
                broken.append(f"{where}: `{code}` (no chapter of that name)")
    return broken


def main() -> int:
    broken = broken_references()
    for line in broken:
        print(line)
    print(f"{len(broken)} broken reference(s) in {len(text_files())} files")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
