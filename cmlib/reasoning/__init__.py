"""Cross-modal reasoning (跨模态推理, article §4.2): models that answer questions about scenes.

The data — scenes, questions as programs, the executor — is in :mod:`cmlib.data.reasoning`;
the transformer blocks in :mod:`cmlib.transformer`. This package holds what reasons:

* :mod:`~cmlib.reasoning.perception` — a cell tagger on a grid fine enough for one object per
  cell, and the scene graphs read off its tags;
* :mod:`~cmlib.reasoning.parser` — questions back to their programs (template matching);
"""
