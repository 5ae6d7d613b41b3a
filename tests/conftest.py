"""Shared fixtures."""

from __future__ import annotations

import pytest

from cmlib.data.shapes import ShapesWorld


@pytest.fixture(scope="module")
def shapes():
    """64 one-object, photo-style ShapesWorld training images and their attributes."""
    return ShapesWorld("train", size=64, num_objects=1, style="photo").tensors(cache=False)


def train_then_load(recipe, seed, monkeypatch, cache):
    """Call a shared-model recipe twice from the same random state, in a fresh registry.

    Returns the two ``(model, torch.rand(3) drawn after it)`` pairs; asserts the first call
    trained, the second loaded, both in eval mode, and that they left the same random state and
    the same weights (loading draws the initial weights just as training does).
    """
    import torch

    from cmlib import runtime

    monkeypatch.setenv("CMLIB_CACHE_DIR", str(cache))
    monkeypatch.delenv("CMLIB_REGISTRY_DIR", raising=False)
    monkeypatch.setenv("CMLIB_PROFILE", "cpu")
    runs = []
    for expected in ("trained: missing", "loaded"):
        runtime.seed_everything(seed)
        model, status = recipe(torch.device("cpu"), seed, progress=False)
        assert status == expected and not model.training
        runs.append((model, torch.rand(3)))
    assert torch.equal(runs[0][1], runs[1][1])
    for a, b in zip(runs[0][0].parameters(), runs[1][0].parameters()):
        assert torch.equal(a, b)
    return runs


def chapter_solution(notebook: str, start: str, exercise_id: str, name: str, edit=None):
    """An exercise's instructor solution, executed from the chapter's ``.py`` as written there.

    Args:
        notebook: the chapter, e.g. ``"04_prompt_generation_digits"``.
        start: where the solution starts, e.g. ``"def negative_elbo("`` or ``"class Reverse"``.
        exercise_id: the id of the ``check("N.M", ...)`` call that ends it.
        name: the function to return from the executed code.
        edit: an optional ``str -> str`` applied to the code first (a student's version of it).
    """
    import math
    import re
    from pathlib import Path

    import torch
    import torch.nn.functional as F

    source = (Path(__file__).resolve().parents[1] / "chapters" / f"{notebook}.py").read_text()
    pattern = rf"^{re.escape(start)}.*?(?=^check\(\"{re.escape(exercise_id)}\")"
    block = re.search(pattern, source, re.S | re.M)
    assert block, f"{notebook} no longer has {start!r} before check({exercise_id!r}, ...)"
    code = edit(block.group(0)) if edit else block.group(0)
    namespace = {"torch": torch, "F": F, "math": math}
    exec(code, namespace)
    return namespace[name]
