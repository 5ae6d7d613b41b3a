"""A question explorer (chapter 08): type a question about a scene and see how each reasoner
answers it: the neural reasoners' answers, the neuro-symbolic reasoner's parsed scene and
program steps, and where the cross-attention transformer's question looked."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ..backbone import grid_features
from ..data.reasoning import ANSWERS, encode_question
from ..reasoning.symbolic import NeuroSymbolicReasoner
from ..validate import check_int, check_tensor, check_type
from .base import interactive_view, show_static


def _attention(model: nn.Module) -> np.ndarray | None:
    """The last question layer's attention on the patches, mean of heads, ``(g, g)``; ``None``
    for a reasoner without attention maps."""
    if not hasattr(model, "patch_attention"):
        return None
    return model.patch_attention(-1)[0].mean(0).cpu().numpy()


@torch.no_grad()
def draw_question(
    images: torch.Tensor,
    index: int,
    question: str,
    reasoners: Mapping[str, nn.Module],
    neuro_symbolic: NeuroSymbolicReasoner,
    device: torch.device,
) -> Figure:
    """Scene ``index`` with what the neuro-symbolic reasoner parsed, the first attention map
    among ``reasoners``, and every answer with the program's steps.

    Args:
        images: ``(N, 3, S, S)`` scenes in [0, 1].
        index: which scene.
        question: a question in the course's words (the parser names a word it does not know).
        reasoners: neural reasoners by label, each ``model(grids, questions)`` on the grids of
            ``neuro_symbolic``'s tagger.
        neuro_symbolic: the neuro-symbolic reasoner (its tagger makes the grids too).
        device: where the models run.

    Raises:
        TypeError, ValueError: for a bad index, a question the parser cannot read, or no
            reasoner.
    """
    check_tensor("images", images, ("N", 3, "S", "S"), floating=True, nonempty=True)
    check_int("index", index, minimum=0, maximum=len(images) - 1)
    check_type("question", question, str)
    check_type("neuro_symbolic", neuro_symbolic, NeuroSymbolicReasoner)
    if not reasoners:
        raise ValueError("reasoners must name at least one neural reasoner, got none")
    explained = neuro_symbolic.explain(images[index], question)  # reads the question, or says why
    tokens = encode_question(question)[None].to(device)
    grid = grid_features(neuro_symbolic.tagger.encoder, images[index : index + 1], device)
    answers, attention = {}, None
    for label, model in reasoners.items():
        model.eval().to(device)
        answers[label] = ANSWERS[model(grid.float(), tokens).argmax(1).item()]
        if attention is None and (found := _attention(model)) is not None:
            attention = (label, found)
    answers["neuro-symbolic"] = explained.answer

    image = images[index].permute(1, 2, 0).cpu().numpy()
    size = image.shape[0]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), width_ratios=(1, 1, 1.6))
    axes[0].imshow(image)
    for obj in explained.graph["objects"]:
        axes[0].text(
            obj["x"] * size,
            obj["y"] * size,
            f"{obj['color']}\n{obj['shape']}",
            ha="center",
            va="center",
            fontsize=6,
            bbox={"facecolor": "white", "alpha": 0.7, "pad": 1, "lw": 0},
        )
    axes[0].set_title("scene, as the tagger parsed it", fontsize=9)
    axes[1].imshow(image)
    if attention is not None:
        label, grid_map = attention
        shown = axes[1].imshow(
            grid_map, cmap="magma", alpha=0.6, extent=(-0.5, size - 0.5, size - 0.5, -0.5)
        )
        fig.colorbar(shown, ax=axes[1], shrink=0.7, label="share of the attention")
        axes[1].set_title(f"where the {label} model looked", fontsize=9)
    else:
        axes[1].set_title("(no reasoner with attention maps)", fontsize=9)
    lines = [f"{label}: {answer}" for label, answer in answers.items()]
    lines += ["", "neuro-symbolic program:"]
    lines += [textwrap.shorten(str(step), 60) for step in explained.steps]
    if explained.error:
        lines.append(textwrap.shorten(f"stopped: {explained.error}", 60))
    axes[2].text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=7.5)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(textwrap.shorten(f"scene {index}: {question}", 90), fontsize=10)
    fig.tight_layout()
    return fig


def question_explorer(
    images: torch.Tensor,
    reasoners: Mapping[str, nn.Module],
    neuro_symbolic: NeuroSymbolicReasoner,
    device: torch.device,
    question: str = "How many things are left of the red circle?",
    index: int = 0,
):
    """A static figure for ``question`` about scene ``index``, then a box to type a question
    and a number to pick the scene; the picture is redrawn for each."""
    try:
        import ipywidgets as w
    except ImportError:
        fig = draw_question(images, index, question, reasoners, neuro_symbolic, device)
        show_static(fig, {"index": index, "question": question})
        print("ipywidgets is not installed: showing the static figure only.")
        return None
    scene = w.BoundedIntText(value=index, min=0, max=len(images) - 1, description="scene")
    asked = w.Text(
        value=question,
        description="question",
        continuous_update=False,
        layout=w.Layout(width="32em"),
    )
    return interactive_view(
        lambda index, question: draw_question(
            images, index, question, reasoners, neuro_symbolic, device
        ),
        index=scene,
        question=asked,
    )
