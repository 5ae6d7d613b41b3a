"""Fixtures for the browser tests: a JupyterLab server, Debian's Chromium, and a page per test.

See ``harness.py`` for how the server is isolated and stopped.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
from harness import CHROMIUM, ROOT, SCREENSHOTS, Lab, missing

sys.path.insert(0, str(ROOT / "tools"))
import assignments  # noqa: E402  (tools/ is not a package)


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """JupyterLab over a scratch copy of the chapters and the student notebooks."""
    scratch = tmp_path_factory.mktemp("lab")
    root, home = scratch / "root", scratch / "home"
    (root / "chapters").mkdir(parents=True)
    shutil.copy(ROOT / "jupytext.toml", root)
    for path in (ROOT / "chapters").glob("[0-9][0-9]_*"):
        shutil.copy(path, root / "chapters")
    stems = assignments.all_chapters()  # what `make student` gives a student: nbgrader's release
    assignments.write_course(stems, scratch / "course")
    assignments.copy_release(stems, scratch / "course", root / "student", quiet=True)
    server = Lab(root, home)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean_kernels(lab):
    """Every test starts and ends with no session, whatever happened in between."""
    lab.shutdown_kernels()
    yield
    lab.shutdown_kernels()


@pytest.fixture(scope="session")
def browser():
    if importlib.util.find_spec("playwright") is None:
        missing(
            "Python Playwright is not installed (pip install playwright; never playwright install)"
        )
    if not Path(CHROMIUM).exists():
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


#: Records every JupyterLab dialog that appears, even one that is closed again at once.
DIALOG_OBSERVER = """
window.__dialogs = [];
new MutationObserver(() => {
  for (const d of document.querySelectorAll('.jp-Dialog')) {
    if (!d.__seen) { d.__seen = true; window.__dialogs.push(d.innerText.slice(0, 200)); }
  }
}).observe(document, {childList: true, subtree: true});
"""


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(DIALOG_OBSERVER)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.errors = errors
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        page.screenshot(path=str(SCREENSHOTS / f"FAILED-{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
