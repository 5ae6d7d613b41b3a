"""Diagrams of the studio (chapter 11): how a prompt flows through the course's models, and how
a question about a scene reaches two reasoners whose agreement decides what the studio says.

Each diagram is a set of boxes (a label and a centre in axes coordinates) and arrows between
them, drawn by one helper; the yellow boxes are what goes in and what comes out.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: The studio's data flow: each box's label and centre, and the arrows between boxes.
FLOW_BOXES = {
    "prompt": ("prompt\n“a small red circle…”", 0.07, 0.5),
    "understand": ("understand\n(caption grammar)", 0.24, 0.5),
    "finder": ("find: dual encoder\nch. 07 · cmlib.retrieval", 0.45, 0.85),
    "drawer": ("draw: CVAE\nch. 04 · cmlib.generation.cvae", 0.45, 0.5),
    "translator": ("translate photos to sketches:\nCycleGAN, ch. 06", 0.6, 0.13),
    "describer": ("describe: captioner\nch. 05 · cmlib.captioning", 0.75, 0.5),
    "verdict": ("check: round-trip\nverdict ✓/✗", 0.93, 0.5),
}
FLOW_ARROWS = (
    ("prompt", "understand"),
    ("understand", "finder"),
    ("understand", "drawer"),
    ("drawer", "translator"),
    ("finder", "describer"),
    ("drawer", "describer"),
    ("translator", "describer"),
    ("describer", "verdict"),
)
#: The question-answering role's flow (:mod:`cmlib.studio.questions`).
QUESTION_BOXES = {
    "scene": ("scene\n(3–8 objects, 48×48)", 0.08, 0.8),
    "question": ("question\n“How many red shapes…?”", 0.08, 0.2),
    "tagger": ("scene tagger\nch. 08 · frozen CNN", 0.33, 0.8),
    "read": ("read: synonyms,\nparser → program", 0.33, 0.2),
    "transformer": ("cross-attention transformer\nch. 08 · on the tagger's features", 0.63, 0.8),
    "program": ("program on the scene graph\nch. 08 · neuro-symbolic", 0.63, 0.2),
    "agree": ("agree?\n✓ state the answer\n✗ show both", 0.91, 0.5),
}
QUESTION_ARROWS = (
    ("scene", "tagger"),
    ("question", "read"),
    ("tagger", "transformer"),
    ("tagger", "program"),
    ("read", "transformer"),
    ("read", "program"),
    ("transformer", "agree"),
    ("program", "agree"),
)


def _draw_flow(ax: Axes, boxes: dict, arrows: tuple, ends: tuple[str, ...]) -> dict:
    """Draw ``boxes`` and ``arrows`` on ``ax``; the boxes named in ``ends`` are yellow. Returns
    the text artist of each box (arrows attach to them)."""
    drawn = {}
    for name, (label, x, y) in boxes.items():
        colour = "lightyellow" if name in ends else "aliceblue"
        drawn[name] = ax.text(
            x,
            y,
            label,
            ha="center",
            va="center",
            fontsize=9,
            bbox={"boxstyle": "round,pad=0.5", "facecolor": colour, "edgecolor": "grey"},
        )
    for start, end in arrows:
        (_, x0, y0), (_, x1, y1) = boxes[start], boxes[end]
        sideways = abs(x1 - x0) > abs(y1 - y0)
        # Leave each box from the side that faces the other, so no arrow crosses a box.
        if sideways:
            a, b = (1, 0.5), (0, 0.5)
        else:
            a, b = ((0.5, 0), (0.5, 1)) if y1 < y0 else ((0.5, 1), (0.5, 0))
        ax.annotate(
            "",
            xy=b,
            xycoords=drawn[end],
            xytext=a,
            textcoords=drawn[start],
            arrowprops={"arrowstyle": "->", "color": "grey"},
        )
    ax.set(xlim=(-0.03, 1.03), ylim=(0, 1))
    ax.set_axis_off()
    return drawn


def data_flow_figure() -> Figure:
    """A diagram of how a prompt flows through the course's models in the studio."""
    fig, ax = plt.subplots(figsize=(12, 4.2))
    boxes = _draw_flow(ax, FLOW_BOXES, FLOW_ARROWS, ("prompt", "verdict"))
    ax.text(0.6, 0.99, "the prompt's scene, to compare with", fontsize=8, color="grey", ha="center")
    ax.annotate(
        "",
        xy=(0.5, 1),
        xycoords=boxes["verdict"],
        xytext=(0.5, 1),
        textcoords=boxes["understand"],
        arrowprops={
            "arrowstyle": "->",
            "color": "grey",
            "linestyle": "--",
            "connectionstyle": "arc3,rad=-0.25",
        },
    )
    ax.set_title("The studio: how a prompt flows through the course's models")
    fig.tight_layout()
    return fig


def question_flow_figure() -> Figure:
    """A diagram of the question-answering role: one tagger under two reasoners, and agreement
    deciding whether the studio states an answer."""
    fig, ax = plt.subplots(figsize=(12, 3.6))
    _draw_flow(ax, QUESTION_BOXES, QUESTION_ARROWS, ("scene", "question", "agree"))
    ax.set_title("The studio's questions: one tagger, two reasoners, and their agreement")
    fig.tight_layout()
    return fig
