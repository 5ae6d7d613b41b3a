"""The studio app: a prompt box and a button; the found, drawn and translated images, each with
its caption and round-trip verdict. And its question box (:func:`question_app`): a question about
one of chapter 08's scenes, answered by two reasoners that check each other.

As every course widget, it first shows a static figure (for readers without a kernel), then the
live controls. The pictures go into an ``ipywidgets.Image``, and the captions and verdicts into
an HTML list (so a browser, or a screen reader, can read them). A prompt the studio cannot serve
shows a message naming what it understands, never a traceback.
"""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..studio.pipeline import Answer, Studio
from ..studio.questions import EXAMPLE_QUESTION, QuestionAnswerer, QuestionNotUnderstood, Reply
from ..studio.understand import EXAMPLE, PromptNotUnderstood
from ..validate import check_int, check_tensor, check_type
from ..viz import show
from .base import error_message, figure_png, message_figure, static_alt
from .reasoning import draw_question

#: Row titles of the answer figure, by kind of image.
ROW_TITLES = {
    "found": "found (ch. 07)",
    "drawn": "drawn (ch. 04)",
    "sketch": "as sketches (ch. 06)",
}


def answer_figure(answer: Answer) -> Figure:
    """One row per kind of image (found, drawn, sketches), each titled with its caption and a
    ✓ or ✗ verdict."""
    kinds = [k for k in ROW_TITLES if answer.of_kind(k)]
    ncols = max(len(answer.of_kind(k)) for k in kinds)
    fig, axes = plt.subplots(
        len(kinds), ncols, figsize=(2.3 * ncols, 2.5 * len(kinds)), squeeze=False
    )
    for row, kind in zip(axes, kinds):
        shown = answer.of_kind(kind)
        for col, ax in enumerate(row):
            ax.set_axis_off()
            if col >= len(shown):
                continue
            item = shown[col]
            ax.imshow(item.image.permute(1, 2, 0).numpy(), interpolation="nearest")
            mark = "✓" if item.verdict.agrees else "✗"
            ax.set_title(
                f"{mark} {_wrap(item.caption)}",
                fontsize=8,
                color="darkgreen" if item.verdict.agrees else "darkred",
            )
        row[0].text(
            -0.15,
            0.5,
            ROW_TITLES[kind],
            rotation=90,
            va="center",
            ha="right",
            transform=row[0].transAxes,
            fontsize=9,
        )
    fig.suptitle(f"“{answer.request.prompt}”: ✓ the caption says what you asked, ✗ it does not")
    fig.tight_layout()
    return fig


def _wrap(caption: str, width: int = 22) -> str:
    words, lines, line = caption.split(), [], ""
    for word in words:
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


def answer_html(answer: Answer) -> str:
    """The captions and verdicts as an HTML list, in the figure's order."""
    items = []
    for kind in ROW_TITLES:
        for k, item in enumerate(answer.of_kind(kind), start=1):
            items.append(
                f"<li class='studio-verdict'><b>{kind} {k}</b>: "
                f"{html.escape(item.verdict.message())}</li>"
            )
    return "<ul class='studio-answer'>" + "".join(items) + "</ul>"


def studio_app(
    studio: Studio,
    prompt: str = EXAMPLE,
    k: int = 3,
    n: int = 3,
    seed: int = 0,
    static: bool = True,
):
    """Show the studio: a static answer for ``prompt``, then the live prompt box.

    Args:
        studio: a loaded :class:`~cmlib.studio.pipeline.Studio`.
        prompt: the first prompt.
        k: images to find; ``n``: images to draw.
        seed: the drawing seed.
        static: first show the answer to ``prompt`` as a plain figure.

    Returns:
        The displayed ``VBox``, or ``None`` without ipywidgets.
    """
    if static:
        fig = _figure_or_message(studio, prompt, k, n, seed)[0]
        show(fig, static_alt(fig, {"prompt": prompt, "seed": seed}))
    try:
        import ipywidgets
        from IPython.display import display
    except ImportError:
        print("ipywidgets is not installed: showing the static figure only.")
        return None
    box = ipywidgets.Text(
        value=prompt,
        placeholder=EXAMPLE,
        description="Prompt",
        layout=ipywidgets.Layout(width="28em"),
    )
    box.add_class("studio-prompt")  # stable hooks for the browser test and for styling
    button = ipywidgets.Button(description="Ask the studio", button_style="primary")

    def produce():
        fig, text, answer = _figure_or_message(studio, box.value, k, n, seed)
        return fig, text, None if answer is None else answer_html(answer)

    app = _panel([box], button, produce, PROMPT_CLASSES)
    display(app)
    return app


#: The CSS classes of the prompt box's parts, and of the question box's (:func:`_panel`).
PROMPT_CLASSES = {
    "ask": "studio-ask",
    "message": "studio-message",
    "picture": "studio-picture",
    "details": "studio-verdicts",
    "ok": "studio-ok",
    "error": "studio-error",
}
QUESTION_CLASSES = {
    "ask": "studio-ask-question",
    "message": "studio-qa-message",
    "picture": "studio-qa-picture",
    "details": "studio-qa-reply",
    "ok": "studio-qa-ok",
    "error": "studio-qa-error",
}


def _panel(controls: list, button, produce, classes: dict[str, str]):
    """The mechanism both boxes share: on each click (and once at the start), ``produce()`` gives
    ``(figure, one-line text, details HTML)``; the picture, the line and the details are redrawn.
    Details of ``None`` mean the text is a message: it replaces the old picture and details.

    Returns:
        ``VBox([HBox([*controls, button]), message, picture, details])``.
    """
    import ipywidgets

    message, picture, details = ipywidgets.HTML(), ipywidgets.Image(format="png"), ipywidgets.HTML()
    for widget, part in (
        (button, "ask"),
        (message, "message"),
        (picture, "picture"),
        (details, "details"),
    ):
        widget.add_class(classes[part])  # stable hooks for the browser test and for styling

    def ask(_=None) -> None:
        fig, text, shown = produce()
        if shown is None:  # a message instead of pictures; the old pictures go
            plt.close(fig)
            message.value = f"<p class='{classes['error']}'>{html.escape(text)}</p>"
            picture.value, details.value = b"", ""
            return
        picture.value = figure_png(fig)
        message.value = f"<p class='{classes['ok']}'>{html.escape(text)}</p>"
        details.value = shown

    button.on_click(ask)
    ask()
    return ipywidgets.VBox([ipywidgets.HBox([*controls, button]), message, picture, details])


def _figure_or_message(studio: Studio, prompt: str, k: int, n: int, seed: int):
    """``(figure, one-line summary, answer)``, or a message figure and ``answer=None``."""
    try:
        answer = studio.serve(prompt, k=k, n=n, seed=seed)
    except PromptNotUnderstood as err:
        return message_figure("the studio", str(err)), str(err), None
    except Exception as err:  # a widget shows a message, never a traceback
        return message_figure("the studio", error_message(err)), error_message(err), None
    agreeing = sum(item.verdict.agrees for item in answer.shown)
    summary = (
        f"{agreeing} of {len(answer.shown)} captions say what you asked (✓ agrees, ✗ does not)."
    )
    return answer_figure(answer), summary, answer


def reply_summary(reply: Reply) -> str:
    """One line: the shared answer, or both answers when the reasoners disagree."""
    if reply.agree:
        return f"Both reasoners answer “{reply.answer}” (✓ they agree)."
    return (
        f"✗ The reasoners disagree: the transformer says “{reply.transformer}”, the program on "
        f"the parsed scene says “{reply.neuro_symbolic}”. The studio is not sure."
    )


def reply_html(reply: Reply) -> str:
    """Both answers and the program's steps as HTML lists (for a browser or a screen reader)."""
    answers = (
        ("transformer (ch. 08, cross-attention)", reply.transformer),
        ("neuro-symbolic (ch. 08, program on the parsed scene)", reply.neuro_symbolic),
    )
    items = "".join(
        f"<li class='studio-qa-answer'><b>{html.escape(who)}</b>: {html.escape(said)}</li>"
        for who, said in answers
    )
    steps = "".join(f"<li>{html.escape(step)}</li>" for step in reply.steps)
    if steps:
        steps = f"<p>the program's steps:</p><ol class='studio-qa-steps'>{steps}</ol>"
    if reply.stopped:  # the question presupposes what the parsed scene does not hold
        steps += f"<p>the program stopped: {html.escape(reply.stopped)}</p>"
    return (
        f"<p>read as: {html.escape(reply.question)} ({reply.family})</p>"
        f"<ul class='studio-qa-answers'>{items}</ul>{steps}"
    )


def _reply_or_message(qa: QuestionAnswerer, images, index: int, question: str):
    """``(figure, one-line summary, reply)``, or a message figure and ``reply=None``."""
    try:
        check_int("scene", index, minimum=0, maximum=len(images) - 1)
        reply = qa.ask(images[index], question)
        fig = draw_question(
            images,
            index,
            reply.question,
            {"transformer": qa.transformer},
            qa.neuro_symbolic,
            qa.device,
        )
    except QuestionNotUnderstood as err:
        text = f"The studio cannot read this question. {err}"
        return message_figure("the studio", text), text, None
    except Exception as err:  # a widget shows a message, never a traceback
        return message_figure("the studio", error_message(err)), error_message(err), None
    return fig, reply_summary(reply), reply


def question_app(
    qa: QuestionAnswerer,
    images,
    question: str = EXAMPLE_QUESTION,
    index: int = 0,
    static: bool = True,
):
    """Show the question box: a static answer for ``question`` about scene ``index``, then a
    scene number, a question box and a button.

    Args:
        qa: a loaded :class:`~cmlib.studio.questions.QuestionAnswerer`.
        images: ``(N, 3, S, S)`` scenes of chapter 08 (:meth:`QuestionAnswerer.scenes`).
        question: the first question; ``index``: the first scene.
        static: first show the answer as a plain figure.

    Returns:
        The displayed ``VBox``, or ``None`` without ipywidgets.
    """
    check_type("qa", qa, QuestionAnswerer)
    check_tensor("images", images, ("N", 3, "S", "S"), floating=True, nonempty=True)
    if static:
        fig = _reply_or_message(qa, images, index, question)[0]
        show(fig, static_alt(fig, {"scene": index, "question": question}))
    try:
        import ipywidgets
        from IPython.display import display
    except ImportError:
        print("ipywidgets is not installed: showing the static figure only.")
        return None
    scene = ipywidgets.BoundedIntText(
        value=index,
        min=0,
        max=len(images) - 1,
        description="Scene",
        layout=ipywidgets.Layout(width="10em"),
    )
    box = ipywidgets.Text(
        value=question,
        placeholder=EXAMPLE_QUESTION,
        description="Question",
        layout=ipywidgets.Layout(width="30em"),
    )
    scene.add_class("studio-scene")
    box.add_class("studio-question")
    button = ipywidgets.Button(
        description="Ask about the scene",
        button_style="primary",
        layout=ipywidgets.Layout(width="auto"),  # the default width cuts the label
    )

    def produce():
        fig, text, reply = _reply_or_message(qa, images, scene.value, box.value)
        return fig, text, None if reply is None else reply_html(reply)

    app = _panel([scene, box], button, produce, QUESTION_CLASSES)
    display(app)
    return app
