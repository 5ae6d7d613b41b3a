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
    # figures come back as the HTML <img> of cmlib.viz.show, with their alt text
    figures = page.locator(f"{NOTEBOOK} .jp-OutputArea-output[data-mime-type='text/html'] img")
    assert figures.count() >= 4
    alts = [figures.nth(i).get_attribute("alt") or "" for i in range(figures.count())]
    assert all(alt.strip() for alt in alts), alts
    assert page.evaluate(
        f"() => [...document.querySelectorAll('{NOTEBOOK} .jp-OutputArea-output img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    ), "a figure does not load"
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


#: Notebooks open at once. Each open notebook slows the opening of the next (21 at once took
#: 17 minutes on 2 cores), so they are opened a few at a time and closed again. Groups of 7
#: took 55 s for the 21 chapters on 2 cores, groups of 4 took 92 s (fewer autosave waits).
GROUP = 7


def frontend_states(page) -> dict:
    """What JupyterLab's own panels say of each open document: loaded, and its kernel's status."""
    return page.evaluate(
        """() => Object.fromEntries([...window.jupyterapp.shell.widgets('main')]
              .filter(w => w.context && w.sessionContext)
              .map(w => [w.context.path, {
                  loaded: w.context.isReady,
                  session: Boolean(w.sessionContext.session),
                  status: w.sessionContext.kernelDisplayStatus,
              }]))"""
    )


def open_group(page, lab, paths: list[str], timeout: float = 120.0) -> None:
    """Open ``paths`` as double-clicks would, all at once; wait until each has an idle kernel.

    On a loaded 2-core machine one kernel of seven now and then was late: it stayed "starting"
    past the timeout, or its session was not even listed yet (seen in four fresh-clone CI runs,
    each time another notebook, every other kernel idle; in the fourth, a restart did not help).
    The kernels then spoke TCP, and the likely cause was a port taken before the kernel bound
    it; they now use Unix sockets (see ``harness.py``). The wait keeps a second round: a kernel
    stuck "starting" is restarted once, through the server as the Kernel menu would, and a
    session not yet listed is waited for again. A kernel that cannot start at all still fails
    the test, with what the server and the frontend said and the server log's lines about it.
    """
    page.evaluate(
        "paths => Promise.all(paths.map(path =>"
        " window.jupyterapp.commands.execute('docmanager:open', {path})))",
        paths,
    )
    restarted: list[str] = []
    late: list[str] = []
    for attempt in range(2):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sessions = {s["path"]: s["kernel"] for s in lab.api("/api/sessions")}
            states = {path: kernel["execution_state"] for path, kernel in sessions.items()}
            if all(states.get(path) == "idle" for path in paths):
                if restarted or late:
                    print(
                        f"restarted a kernel stuck starting for {restarted}, waited again for "
                        f"sessions not yet listed for {late}; then idle"
                    )
                return
            time.sleep(0.25)
        if attempt == 0:
            restarted = [p for p in paths if p in sessions and states[p] == "starting"]
            late = [p for p in paths if p not in sessions]
            if not restarted and not late:
                break
            for path in restarted:
                lab.api(f"/api/kernels/{sessions[path]['id']}/restart", method="POST", timeout=60)
    stuck = [sessions[p]["id"] for p in paths if p in sessions and states[p] != "idle"]
    raise TimeoutError(
        f"no idle kernel after {timeout} s for some of {paths} (restarted once: {restarted}; "
        f"waited twice for: {late}): server {states}; frontend {frontend_states(page)}; "
        f"dialogs {page.evaluate('window.__dialogs')}; "
        f"server log, on these kernels and errors:\n"
        f"{lab.log_about(stuck)}"
    )


def close_group(page, lab) -> None:
    """Close every tab without saving (no dialog asks), and end the kernels."""
    page.evaluate(
        "() => { for (const w of [...window.jupyterapp.shell.widgets('main')]) w.dispose(); }"
    )
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-NotebookPanel').length === 0", timeout=30_000
    )
    lab.shutdown_kernels()


def check_group(page, lab, paths: list[str]) -> None:
    """Each notebook of the group is open as a notebook, with the course's kernel, no dialog."""
    assert page.locator(".jp-NotebookPanel").count() == len(paths), paths
    assert page.locator(".jp-FileEditor").count() == 0, f"a text editor opened among {paths}"
    assert page.evaluate("window.__dialogs") == [], f"a dialog opened among {paths}"
    names = {s["path"]: s["kernel"]["name"] for s in lab.api("/api/sessions")}
    assert set(names) == set(paths) and set(names.values()) == {"python3"}, names


def start_page(page, lab, workspace: str) -> None:
    """JupyterLab, started, with nothing open."""
    page.goto(
        lab.url("chapters", workspace), wait_until="domcontentloaded", timeout=OPEN_TIMEOUT_MS
    )
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.started !== undefined",
        timeout=OPEN_TIMEOUT_MS,
    )
    page.evaluate("() => window.jupyterapp.started")


def test_every_chapter_opens_and_idles_without_changing(page, lab):
    chapters = sorted((lab.root / "chapters").glob("[0-9][0-9]_*.py"))
    assert len(chapters) >= 20
    before = {p: digest(p) for p in chapters} | {
        p.with_suffix(".ipynb"): digest(p.with_suffix(".ipynb")) for p in chapters
    }
    start_page(page, lab, "chapters-idle")
    for first in range(0, len(chapters), GROUP):
        group = [f"chapters/{p.name}" for p in chapters[first : first + GROUP]]
        open_group(page, lab, group)
        check_group(page, lab, group)
        time.sleep(AUTOSAVE_SECONDS * 2 + 1)  # past the autosave interval, twice
        dirty = page.locator(".lm-TabBar-tab.jp-mod-dirty").all_text_contents()
        assert dirty == [], f"opened but unedited chapters turned unsaved: {dirty}"
        if first == 0:
            page.screenshot(path=str(SCREENSHOTS / "lab-04-chapters.png"))
        close_group(page, lab)
    changed = [p.name for p, d in before.items() if digest(p) != d]
    assert changed == [], f"opening and idling rewrote {changed}"
    assert page.evaluate("window.__dialogs") == [] and not page.errors


def test_student_notebooks_open_without_a_dialog(page, lab):
    students = sorted((lab.root / "student").glob("*.ipynb"))
    assert len(students) == len(list((ROOT / "chapters").glob("[0-9][0-9]_*.py")))
    # Some student notebooks turn unsaved when opened, and autosave then rewrites them, which
    # raises JupyterLab's "File Changed" dialog (a known defect, left for its own fix). This
    # test is about the kernel dialog, so autosave is off while it runs.
    lab.set_autosave(False)
    start_page(page, lab, "students")
    for first in range(0, len(students), GROUP):
        group = [f"student/{p.name}" for p in students[first : first + GROUP]]
        open_group(page, lab, group)
        check_group(page, lab, group)
        if first == 0:
            page.screenshot(path=str(SCREENSHOTS / "lab-05-student.png"))
        close_group(page, lab)
    lab.set_autosave(True)
    assert not page.errors
