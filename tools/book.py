"""The course as an HTML book, built by Sphinx with myst-nb and the sphinx-book-theme.

Usage (``make book``):
    python tools/book.py            # build from the committed outputs (no execution)
    python tools/book.py --execute  # execute every chapter in place first (cpu profile)

The source goes to ``_build/book/`` and the HTML to ``_build/html/``. Besides one page per
notebook it writes a landing page (the chapters and their article sections), the errata index
(from :data:`cmlib.errata.LISTINGS`), a bilingual glossary gathered from every chapter's
"Key terms" and the learning-checkpoint table (``chapters/notes/checkpoints.md``). Sphinx runs
with warnings as errors, so a broken link or a missing image fails the build. Math is
rendered by a MathJax that ships in a PyPI package: the book works offline.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHAPTERS = ROOT / "chapters"
SOURCE = ROOT / "_build" / "book"
HTML = ROOT / "_build" / "html"
TITLE = "Cross-Modal Learning, Hands-On"

CONF = """\
project = "{title}"
author = "The course's contributors"
copyright = "the course's contributors (MIT); OpenMoji artwork CC BY-SA 4.0"
extensions = ["myst_nb", "sphinx-mathjax-offline"]
html_theme = "sphinx_book_theme"
html_title = "{title}"
html_theme_options = {{"show_toc_level": 2, "use_download_button": False}}
nb_execution_mode = "off"          # the committed outputs are the book's
nb_output_stderr = "remove-warn"   # progress bars and warnings stay in the notebooks
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]
suppress_warnings = ["mystnb.unknown_mime_type"]
"""


def chapter_notebooks() -> list[Path]:
    """The chapters in reading order: by number, then by the part their title names.

    File names do not sort into parts (``06_alignment`` is part 2 and ``06_cyclegan`` part 1),
    so each notebook's title ("…, part 3: …") orders a chapter's parts; no part named is part 1.
    """

    def reading_order(ipynb: Path) -> tuple[str, int, str]:
        part = re.search(r"\bpart (\d+)\b", title_of(ipynb), re.IGNORECASE)
        return ipynb.name[:2], int(part.group(1)) if part else 1, ipynb.name

    return sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"), key=reading_order)


def first_markdown(ipynb: Path) -> str:
    for cell in json.loads(ipynb.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            return "".join(cell["source"])
    return ""


def title_of(ipynb: Path) -> str:
    heading = re.search(r"^# (.+)$", first_markdown(ipynb), re.M)
    return heading.group(1).strip() if heading else ipynb.stem


def sections_of(ipynb: Path) -> str:
    """The "Article section(s): …" sentence of a chapter, up to its first full stop."""
    match = re.search(
        r"\*\*Article sections?:\*\*\s*(.+?)(?:\.\s|\.$|\n\n)", first_markdown(ipynb), re.S
    )
    return " ".join(match.group(1).split()) if match else ""


#: One "term (中文)" of a Key-terms paragraph: the term, then parentheses holding Chinese.
TERM = re.compile(r"([^·()]+?)\s*\(([^()]*[\u4e00-\u9fff][^()]*)\)")


def key_terms(ipynb: Path) -> list[tuple[str, str]]:
    """The (English, 中文) pairs of a chapter's "**Key terms.**" paragraph."""
    text = first_markdown(ipynb)
    start = text.find("**Key terms.**")
    if start < 0:
        return []
    paragraph = text[start + len("**Key terms.**") :].split("\n\n")[0]
    pairs = []
    for english, chinese in TERM.findall(" ".join(paragraph.split())):
        english = english.strip(" ·,;").strip()
        if english:
            pairs.append((english, chinese.strip()))
    return pairs


def glossary(notebooks: list[Path]) -> list[tuple[str, str, list[str]]]:
    """Every key term once: (English, 中文, the chapters that teach it), alphabetical."""
    terms: dict[str, tuple[str, list[str]]] = {}
    for ipynb in notebooks:
        for english, chinese in key_terms(ipynb):
            key = english.lower()
            chinese_seen, stems = terms.get(key, (chinese, []))
            if ipynb.stem not in stems:
                stems.append(ipynb.stem)
            terms[key] = (chinese_seen, stems)
    display = {}
    for ipynb in notebooks:
        for english, _ in key_terms(ipynb):
            display.setdefault(english.lower(), english)
    return [(display[k], terms[k][0], terms[k][1]) for k in sorted(terms)]


def link(stem: str) -> str:
    """A link to a chapter's page, or its number alone while the chapter is not written yet."""
    ipynb = CHAPTERS / f"{stem}.ipynb"
    if not ipynb.exists():
        return f"{stem[:2]} (planned)"
    part = re.search(r"part (\d+)", title_of(ipynb))
    label = f"{stem[:2]}·{part.group(1)}" if part else stem[:2]
    return f"[{label}](chapters/{stem}.ipynb)"


#: A chapter's markdown link to another chapter's .py (what JupyterLab opens as a notebook).
PY_LINK = re.compile(r"\]\((\d\d_\w+)\.py\)")


def copy_notebook(ipynb: Path, target: Path) -> None:
    """Copy a chapter into the book, its links to other chapters' ``.py`` made ``.ipynb``."""
    nb = json.loads(ipynb.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = [PY_LINK.sub(r"](\1.ipynb)", line) for line in cell["source"]]
    target.write_text(json.dumps(nb, ensure_ascii=False, indent=1), encoding="utf-8")


def landing_page(notebooks: list[Path]) -> str:
    rows = "\n".join(
        f"| {link(nb.stem)} | {title_of(nb).split('·', 1)[-1].strip()} | {sections_of(nb)} |"
        for nb in notebooks
    )
    toc = "\n".join(f"chapters/{nb.stem}" for nb in notebooks)
    return f"""# {TITLE}

The executable companion to the article 《提示词驱动的跨模态学习：整合视觉和语言信息》
(*prompt-driven cross-modal learning: integrating vision and language*). Every chapter is a
notebook that trains its models on a laptop CPU; the pages here show the outputs of a real run.
Every claim about a trained model is a *learning checkpoint*: asserted in the notebook, and
measured over seeds in the [checkpoint table](checkpoints.md).

| chapter | topic | article sections (文章章节) |
|---|---|---|
{rows}

The article's code listings do not run as printed; the [errata](errata.md) list each one, what
fails and what replaces it. The [glossary](glossary.md) gathers every chapter's key terms in
English and Chinese.

```{{toctree}}
:maxdepth: 1
:caption: Chapters

{toc}
```

```{{toctree}}
:maxdepth: 1
:caption: Reference

errata
glossary
checkpoints
```
"""


def errata_page() -> str:
    from cmlib.errata import LISTINGS

    parts = [
        "# Errata: the article's listings\n",
        "Each of the article's ten code listings, exactly as printed, what goes wrong when it "
        "runs, what replaces it in `cmlib`, and the chapter that shows both "
        "(`cmlib.errata` holds the listings and `build()` runs them with their undefined "
        "names supplied).\n",
        "| listing | article section | chapter | what fails |",
        "|---|---|---|---|",
    ]
    for listing in LISTINGS.values():
        parts.append(
            f"| [`{listing.name}`](#{listing.name.lower()}) | {listing.section} | "
            f"{link(listing.chapter)} | {listing.fails.split(';')[0].split(':')[0]} |"
        )
    for listing in LISTINGS.values():
        parts += [
            f"\n({listing.name.lower()})=",
            f"## `{listing.name}` — {listing.title}",
            f"**Section:** {listing.section} · **Chapter:** {link(listing.chapter)}\n",
            "```python",
            listing.source.rstrip(),
            "```\n",
            f"**What fails.** {listing.fails}\n",
            f"**The fix.** {listing.fix}\n",
        ]
    return "\n".join(parts) + "\n"


def glossary_page(notebooks: list[Path]) -> str:
    rows = [
        f"| {html.escape(english)} | {chinese} | {', '.join(link(stem) for stem in stems)} |"
        for english, chinese, stems in glossary(notebooks)
    ]
    return (
        "# Glossary · 术语表\n\nThe key terms of every chapter, in English and Chinese, and the "
        "chapters that teach them.\n\n| term | 中文 | chapters |\n|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )


def checkpoints_page() -> str:
    summary = CHAPTERS / "notes" / "checkpoints.md"
    if summary.exists():
        return summary.read_text(encoding="utf-8")
    return "# Learning checkpoints over seeds\n\nRun `make seeds` to measure them.\n"


def write_source(notebooks: list[Path], source: Path = SOURCE) -> None:
    """The book's Sphinx source: the pages and a copy of every chapter."""
    if source.exists():
        shutil.rmtree(source)
    (source / "chapters").mkdir(parents=True)
    for ipynb in notebooks:
        copy_notebook(ipynb, source / "chapters" / ipynb.name)
    (source / "conf.py").write_text(CONF.format(title=TITLE), encoding="utf-8")
    (source / "index.md").write_text(landing_page(notebooks), encoding="utf-8")
    (source / "errata.md").write_text(errata_page(), encoding="utf-8")
    (source / "glossary.md").write_text(glossary_page(notebooks), encoding="utf-8")
    (source / "checkpoints.md").write_text(checkpoints_page(), encoding="utf-8")


def execute(notebooks: list[Path]) -> None:
    """Execute every chapter in place (refreshing its outputs), then re-pair it."""
    for ipynb in notebooks:
        py = ipynb.with_suffix(".py")
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
        subprocess.run([sys.executable, "-m", "jupytext", "--sync", str(py)], check=True)
        print(f"executed {ipynb.name} in {time.perf_counter() - start:.0f} s", flush=True)


def build(run_first: bool = False, source: Path = SOURCE, html_dir: Path = HTML) -> int:
    """Write the source, run Sphinx (warnings are errors); return its exit status."""
    notebooks = chapter_notebooks()
    if run_first:
        execute(notebooks)
    write_source(notebooks, source)
    if html_dir.exists():
        shutil.rmtree(html_dir)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q"]
    result = subprocess.run([*command, str(source), str(html_dir)])
    if result.returncode == 0:
        print(f"book: {html_dir}/index.html")
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--execute", action="store_true", help="execute every chapter in place before building"
    )
    return build(parser.parse_args(argv).execute)


if __name__ == "__main__":
    sys.exit(main())
