"""The course's widgets: each draws a static figure first, then redraws an Image widget in place.

One mechanism for all of them, :func:`cmlib.widgets.base.interactive_view`; a bad input shows a
message, never a traceback.

* :mod:`~cmlib.widgets.features` — a CNN's feature maps (chapter 01);
* :mod:`~cmlib.widgets.words` — nearest words in several embeddings (chapter 02);
* :mod:`~cmlib.widgets.generative` — a prompt box over the generators (chapters 04, 11);
* :mod:`~cmlib.widgets.translation` — CycleGAN translations beside the truth (chapter 06);
* :mod:`~cmlib.widgets.retrieval` — a search box over a gallery (chapter 07);
* :mod:`~cmlib.widgets.reasoning` — a typed question, each reasoner's answer, the parse and the
  attention (chapter 08).
"""

from .base import figure_png, interactive_view, message_figure

__all__ = ["figure_png", "interactive_view", "message_figure"]
