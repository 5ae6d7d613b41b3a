"""The HTML book in a real browser: it renders, its links and images work, search finds terms."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import re
import threading

import pytest
from harness import ROOT, SCREENSHOTS

spec = importlib.util.spec_from_file_location("book", ROOT / "tools" / "book.py")
book = importlib.util.module_from_spec(spec)
spec.loader.exec_module(book)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The book, built from the committed outputs and served on a loopback port."""
    scratch = tmp_path_factory.mktemp("book")
    assert book.build(source=scratch / "source", html_dir=scratch / "html") == 0
    handler = functools.partial(QuietHandler, directory=scratch / "html")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=10)


def test_landing_page_links_and_images(page, site):
    page.goto(f"{site}/index.html", timeout=30_000)
    assert "Cross-Modal Learning" in page.title()
    assert page.locator("table").first.is_visible()
    page.screenshot(path=str(SCREENSHOTS / "book-01-landing.png"))
    chapters = sorted(
        {
            a.get_attribute("href")
            for a in page.locator("article a").all()
            if re.match(r"chapters/\d\d_\w+\.html$", a.get_attribute("href") or "")
        }
    )
    expected = {f"chapters/{p.stem}.html" for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")}
    assert set(chapters) == expected
    for href in chapters:
        response = page.goto(f"{site}/{href}", timeout=30_000)
        assert response.ok, href
        images = page.locator("article img")
        page.wait_for_function(
            "() => [...document.querySelectorAll('article img')].every(i => i.complete)",
            timeout=30_000,
        )
        broken = page.evaluate(
            "() => [...document.querySelectorAll('article img')]"
            ".filter(i => !(i.naturalWidth > 0)).map(i => i.src)"
        )
        assert broken == [], f"{href}: images that do not load: {broken}"
        # every figure has alt text: a sentence, not empty and not the image's file name
        without_alt = page.evaluate(
            "() => [...document.querySelectorAll('article img')]"
            ".filter(i => !/\\w+ \\w+/.test(i.alt || '') || /\\.(png|jpe?g|svg)$/.test(i.alt))"
            ".map(i => i.src.slice(0, 60))"
        )
        assert without_alt == [], f"{href}: figures without alt text: {without_alt}"
        assert images.count() > 0, f"{href} shows no figure"
    page.screenshot(path=str(SCREENSHOTS / "book-02-chapter.png"))


def test_reference_pages_and_search(page, site):
    for name in ("errata", "checkpoints", "glossary"):
        assert page.goto(f"{site}/{name}.html", timeout=30_000).ok, name
    assert page.locator("table tr").count() > 20  # the glossary's terms
    page.screenshot(path=str(SCREENSHOTS / "book-03-glossary.png"))
    term = "gradient reversal"
    page.goto(f"{site}/search.html?q={term.replace(' ', '+')}", timeout=30_000)
    results = page.locator("#search-results li")
    results.first.wait_for(timeout=30_000)
    assert "Glossary" in " ".join(results.all_text_contents())
    page.screenshot(path=str(SCREENSHOTS / "book-04-search.png"))
