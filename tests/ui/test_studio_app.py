"""The capstone studio as ``make studio`` serves it: a Voilà page, in a real browser.

A visitor types a prompt and presses the button, and sees pictures, captions and round-trip
verdicts; a prompt the studio cannot serve shows a message, not a traceback. The page loads the
models ``make test`` saved (chapter 11); with an empty cache it trains them first, within the
generous first-load timeout.
"""

from __future__ import annotations

import pytest
from harness import ROOT, SCREENSHOTS, Voila

APP = ROOT / "chapters" / "11_capstone_studio_app.ipynb"
FIRST_LOAD_MS = 420_000  # the models are trained first when the cache is empty
ANSWER_MS = 60_000


@pytest.fixture(scope="module")
def voila(tmp_path_factory):
    server = Voila(APP, tmp_path_factory.mktemp("voila"))
    server.start()
    yield server
    server.stop()


def ask(page, prompt: str) -> None:
    page.locator(".studio-prompt input").fill(prompt)
    page.locator("button.studio-ask").click()


def test_the_studio_answers_with_pictures_captions_and_verdicts(page, voila):
    page.goto(voila.url, wait_until="domcontentloaded", timeout=FIRST_LOAD_MS)
    page.locator(".studio-prompt input").wait_for(timeout=FIRST_LOAD_MS)
    assert "import " not in page.inner_text("body"), "the app shows code"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "studio-01-opened.png"), full_page=True)

    picture = page.locator(".studio-picture").first
    before = picture.get_attribute("src")
    ask(page, "a large purple square at the top")
    page.wait_for_function(
        "([el, old]) => el.getAttribute('src') !== old",
        arg=[picture.element_handle(), before],
        timeout=ANSWER_MS,
    )
    verdicts = page.locator(".studio-verdicts li.studio-verdict")
    assert verdicts.count() == 3 + 3 + 6  # found, drawn, and all six as sketches
    texts = verdicts.all_inner_texts()
    assert all(("✓" in t) or ("✗" in t) for t in texts), texts
    assert sum("✓" in t for t in texts) >= 1, texts
    assert "captions say what you asked" in page.locator(".studio-message").inner_text()
    app = page.locator(".widget-vbox").filter(has=page.locator(".studio-prompt")).first
    app.screenshot(path=str(SCREENSHOTS / "studio-02-answer.png"))

    for prompt, expected in (("draw a cat", "names no colour or shape"), ("", "empty")):
        ask(page, prompt)
        error = page.locator(".studio-error")
        error.wait_for(timeout=ANSWER_MS)
        page.wait_for_function(
            "text => document.querySelector('.studio-error')?.innerText.includes(text)",
            arg=expected,
            timeout=ANSWER_MS,
        )
        assert "understands" in error.inner_text() or "knows" in error.inner_text()
        assert page.locator(".studio-verdicts li").count() == 0
    app.screenshot(path=str(SCREENSHOTS / "studio-03-message.png"))
    assert "Traceback" not in page.inner_text("body") and not page.errors


def test_the_studio_answers_a_question_about_a_scene(page, voila):
    """The question box below the prompt box: both reasoners' answers and the program's steps,
    then a message for a word the questions do not use."""
    page.goto(voila.url, wait_until="domcontentloaded", timeout=FIRST_LOAD_MS)
    question = page.locator(".studio-question input")
    question.wait_for(timeout=FIRST_LOAD_MS)
    picture = page.locator(".studio-qa-picture").first
    before = picture.get_attribute("src")
    question.fill("What colour is the triangle?")
    page.locator(".studio-scene input").fill("3")
    page.locator("button.studio-ask-question").click()
    page.wait_for_function(
        "([el, old]) => el.getAttribute('src') !== old",
        arg=[picture.element_handle(), before],
        timeout=ANSWER_MS,
    )
    answers = page.locator(".studio-qa-reply li.studio-qa-answer")
    assert answers.count() == 2, answers.all_inner_texts()
    assert "read as: What colour is the triangle?" in page.inner_text(".studio-qa-reply")
    assert "reasoners" in page.locator(".studio-qa-message").inner_text()
    app = page.locator(".widget-vbox").filter(has=page.locator(".studio-question")).first
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    app.screenshot(path=str(SCREENSHOTS / "studio-04-question.png"))

    question.fill("Are there any unicorns?")
    page.locator("button.studio-ask-question").click()
    page.locator(".studio-qa-error").wait_for(timeout=ANSWER_MS)
    assert "unicorns" in page.locator(".studio-qa-error").inner_text()
    assert page.locator(".studio-qa-reply li").count() == 0
    assert "Traceback" not in page.inner_text("body") and not page.errors
