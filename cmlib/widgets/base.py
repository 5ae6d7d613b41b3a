"""The one way a course widget draws: a static figure first, then an Image widget redrawn in place.

:func:`interactive_view` takes a function that draws a matplotlib figure from the controls'
values. It first shows that figure as an ordinary cell output — so a notebook read without a
kernel (on GitHub, in the book, in a CI log) still shows the picture — and then, under it, the
controls and an ``ipywidgets.Image`` that is redrawn whenever a control changes.

Why an Image widget: ``interact`` and ``Output`` widgets capture printed output through the
kernel, and headless runners (nbconvert, nbval) were seen stalling for minutes after such a cell.
A bad input never shows a traceback: the error becomes a one-line message above the picture.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..viz import show


def figure_png(fig: Figure, dpi: int = 72) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def message_figure(title: str, message: str) -> Figure:
    """A small figure that says ``message`` under ``title`` (for a view that cannot draw)."""
    fig, ax = plt.subplots(figsize=(6, 1.6))
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, wrap=True)
    ax.set_axis_off()
    ax.set_title(title)
    return fig


def error_message(err: Exception) -> str:
    """What a widget shows for an error: the message of a bad input, the type of anything else."""
    if isinstance(err, (ValueError, KeyError, TypeError)):
        return f"⚠ {err}"
    return f"⚠ could not draw this view: {type(err).__name__}: {err}"


def _html(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def figure_title(fig: Figure) -> str:
    """The figure's title: its suptitle, else its first axes title ("" when it has none)."""
    suptitle = fig.get_suptitle()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    return suptitle or (titles[0] if titles else "")


def static_alt(fig: Figure, values: dict) -> str:
    """Alt text for a widget's first, static view: its title and the controls it was drawn for."""
    if not isinstance(values, dict):
        raise TypeError(f"values must be a dict of control values, got {type(values).__name__}")
    title = " ".join(figure_title(fig).split()) or "The widget's first view"
    if not values:
        return f"{title.rstrip('.')}: the widget's first view."
    drawn_for = ", ".join(f"{name} {value!r}" for name, value in values.items())
    return f"{title.rstrip('.')}: the widget's first view, drawn for {drawn_for}."


def show_static(fig: Figure, values: dict) -> None:
    """Show a widget's first view with :func:`static_alt` as its alt text (and close it)."""
    show(fig, static_alt(fig, values))


def interactive_view(draw: Callable[..., Figure], static: bool = True, **controls):
    """A static figure, then ``controls`` above an Image widget that ``draw(**values)`` redraws.

    Args:
        draw: ``draw(**{name: control.value})`` → a matplotlib figure.
        static: first show the figure for the controls' initial values as a plain output, with
            alt text (:func:`static_alt`).
        **controls: ipywidgets controls (``Text``, ``IntSlider``, ``Dropdown``…) by argument name.

    Returns:
        The displayed ``VBox``, or ``None`` (after a printed note) without ipywidgets.
    """
    if static:
        values = {name: control.value for name, control in controls.items()}
        before = set(plt.get_fignums())
        try:
            fig = draw(**values)
        except Exception as err:  # a widget shows a message, never a traceback
            for number in set(plt.get_fignums()) - before:  # a half-drawn figure, no alt text
                plt.close(number)
            fig = message_figure("this view", error_message(err))
        show_static(fig, values)
    try:
        import ipywidgets
        from IPython.display import display
    except ImportError:
        print(
            "ipywidgets is not installed: showing the static figure only "
            "(pip install ipywidgets for the interactive version)."
        )
        return None
    picture = ipywidgets.Image(format="png")
    message = ipywidgets.HTML()

    def update(_change=None) -> None:
        try:
            picture.value = figure_png(draw(**{name: c.value for name, c in controls.items()}))
            message.value = ""
        except Exception as err:  # a widget shows a message, never a traceback
            plt.close("all")
            message.value = _html(error_message(err))

    for control in controls.values():
        control.observe(update, names="value")
    update()
    box = ipywidgets.VBox([ipywidgets.HBox(list(controls.values())), message, picture])
    display(box)
    return box
