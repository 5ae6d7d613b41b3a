"""A newcomer's JupyterLab, in a real browser: chapters open as notebooks, run, and stay unchanged.

Run with ``make test-browser``. See ``conftest.py`` for the server, the browser and the page.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from pathlib import Path

from harness import AUTOSAVE_SECONDS, ROOT, SCREENSHOTS

NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
OPEN_TIMEOUT_MS = 60_000


def open_notebook(page, lab, path: str, workspace: str | None = None) -> None:
    """Open ``path`` and wait (bounded) until it is a notebook with an idle kernel."""
    page.goto(lab.url(path, workspace), wait_until="domcontentloaded", timeout=OPEN_TIMEOUT_MS)
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.started !== undefined",
        timeout=OPEN_TIMEOUT_MS,
    )
    page.locator(f"{NOTEBOOK} .jp-Cell").first.wait_for(timeout=OPEN_TIMEOUT_MS)
    page.locator("#jp-main-statusbar").get_by_text("Idle").first.wait_for(timeout=OPEN_TIMEOUT_MS)


def open_in_app(page, lab, path: str, timeout: float = 60.0) -> None:
    """Open ``path`` as a double-click would (its default viewer); wait for its kernel to idle."""
    page.evaluate("path => window.jupyterapp.commands.execute('docmanager:open', {path})", path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {s["path"]: s["kernel"]["execution_state"] for s in lab.api("/api/sessions")}
        if states.get(path) == "idle":
            return
        time.sleep(0.5)
    raise TimeoutError(f"{path}: no idle kernel after {timeout} s")


def command(page, name: str) -> None:
    """Run a JupyterLab command, as a menu item would."""
    page.evaluate("name => window.jupyterapp.commands.execute(name)", name)


def kernel_python(page, timeout_ms: int = 30_000) -> str:
    """``sys.executable`` as the notebook's own kernel reports it (the notebook is not changed)."""
    return page.evaluate(
        """async (timeout) => {
          const panel = window.jupyterapp.shell.currentWidget;
          const kernel = panel.sessionContext.session.kernel;
          let text = '';
          const future = kernel.requestExecute({code: 'import sys; print(sys.executable)'});
          future.onIOPub = msg => {
            if (msg.header.msg_type === 'stream') text += msg.content.text;
          };
          await Promise.race([future.done, new Promise((_, no) => setTimeout(
              () => no(new Error('the kernel did not answer')), timeout))]);
          return text.trim();
        }""",
        timeout_ms,
    )


def executed_counts(page) -> list[str]:
    """The input prompt of every code cell of the open notebook ('' if never run)."""
    return page.evaluate(
        f"""() => [...document.querySelectorAll('{NOTEBOOK} .jp-CodeCell .jp-InputPrompt')]
              .map(p => p.textContent.trim())"""
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_newcomer_opens_runs_and_uses_a_widget(page, lab):
    # Open a .py chapter: it must be a notebook (not a text editor), with no dialog.
    open_notebook(page, lab, "chapters/00_tour.py")
    assert page.locator(".jp-FileEditor").count() == 0, "the chapter opened as a text file"
    assert page.evaluate("window.__dialogs") == []
    sessions = lab.api("/api/sessions")
    assert [s["kernel"]["name"] for s in sessions] == ["python3"]
    assert Path(kernel_python(page)).resolve() == Path(sys.executable).resolve()
    page.screenshot(path=str(SCREENSHOTS / "lab-01-opened.png"))

    # Clear the stored outputs, run every cell, and see text and figures come back.
    command(page, "editmenu:clear-all")
    page.wait_for_function(
        f"() => !document.querySelector('{NOTEBOOK} .jp-OutputArea-output')", timeout=10_000
    )
    command(page, "runmenu:run-all")
    page.wait_for_function(
        f"""() => {{
          const prompts = [...document.querySelectorAll('{NOTEBOOK} .jp-CodeCell .jp-InputPrompt')];
          return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }}""",
        timeout=180_000,
        polling=1000,
    )
    counts = executed_counts(page)
    assert all(re.fullmatch(r"\[\d+\]:", c) for c in counts), counts
    outputs = page.locator(f"{NOTEBOOK} .jp-OutputArea-output")
    text = " ".join(outputs.all_text_contents())
    assert "'profile': 'cpu'" in text and "chapter took" in text
    assert "Traceback (most recent call last)" not in text
    figures = page.locator(f"{NOTEBOOK} .jp-OutputArea-output[data-mime-type='image/png'] img")
    assert figures.count() >= 4
    page.screenshot(path=str(SCREENSHOTS / "lab-02-ran.png"), full_page=False)

    # Operate one of the course's widgets: the scene explorer redraws its picture.
    explorer = page.locator(f"{NOTEBOOK} .widget-vbox").filter(has=page.locator("select")).first
    explorer.scroll_into_view_if_needed(timeout=10_000)
    picture = explorer.locator("img").first
    picture.wait_for(timeout=30_000)
    before = picture.get_attribute("src")
    explorer.locator("select").first.select_option("blue")
    page.wait_for_function(
        "([el, old]) => el.getAttribute('src') !== old",
        arg=[picture.element_handle(), before],
        timeout=30_000,
    )
    explorer.screenshot(path=str(SCREENSHOTS / "lab-03-widget.png"))
    assert page.evaluate("window.__dialogs") == [] and not page.errors


def test_every_chapter_opens_and_idles_without_changing(page, lab):
    chapters = sorted((lab.root / "chapters").glob("[0-9][0-9]_*.py"))
    before = {p: digest(p) for p in chapters} | {
        p.with_suffix(".ipynb"): digest(p.with_suffix(".ipynb")) for p in chapters
    }
    open_notebook(page, lab, f"chapters/{chapters[0].name}", "chapters-idle")
    for chapter in chapters[1:]:
        open_in_app(page, lab, f"chapters/{chapter.name}")
    assert page.locator(".jp-NotebookPanel").count() == len(chapters)
    assert page.locator(".jp-FileEditor").count() == 0, "a chapter opened as a text file"
    time.sleep(AUTOSAVE_SECONDS * 2 + 2)  # past the autosave interval, twice
    dirty = page.locator(".lm-TabBar-tab.jp-mod-dirty").all_text_contents()
    assert dirty == [], f"opened but unedited chapters turned unsaved: {dirty}"
    changed = [p.name for p, d in before.items() if digest(p) != d]
    assert changed == [], f"opening and idling rewrote {changed}"
    assert page.evaluate("window.__dialogs") == []
    names = {s["path"]: s["kernel"]["name"] for s in lab.api("/api/sessions")}
    assert len(names) == len(chapters) and set(names.values()) == {"python3"}, names
    page.screenshot(path=str(SCREENSHOTS / "lab-04-all-chapters.png"))


def test_student_notebooks_open_without_a_dialog(page, lab):
    students = sorted((lab.root / "student").glob("*.ipynb"))
    assert len(students) == len(list((ROOT / "chapters").glob("[0-9][0-9]_*.py")))
    open_notebook(page, lab, f"student/{students[0].name}", "students")
    for notebook in students[1:]:
        open_in_app(page, lab, f"student/{notebook.name}")
    assert page.evaluate("window.__dialogs") == [], "a student notebook asked for a kernel"
    names = {s["path"]: s["kernel"]["name"] for s in lab.api("/api/sessions")}
    assert len(names) == len(students) and set(names.values()) == {"python3"}, names
    page.screenshot(path=str(SCREENSHOTS / "lab-05-student.png"))
