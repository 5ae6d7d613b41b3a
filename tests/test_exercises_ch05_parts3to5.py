"""Exercises 5.9 (the sampling temperature) and 5.11 (the retrieval captioner's search): the
checks accept the chapters' solutions and reject each named mistake, and the seam through which
the chapters run the reader's answer gives cmlib's results with a right one."""

import pytest
import torch
from conftest import chapter_solution

from cmlib.captioning import NearestNeighbourCaptioner, nearest_neighbours
from cmlib.exercises import check
from cmlib.exercises.ch05 import RETRIEVAL_MISTAKES
from cmlib.exercises.ch05_images import TEMPERATURE_MISTAKES


@pytest.fixture(autouse=True)
def _no_raising(monkeypatch):
    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)


def test_the_chapters_solutions_pass():
    tempered = chapter_solution("05_text_to_image_fidelity", "def tempered(", "5.9", "tempered")
    assert check("5.9", tempered, quiet=True)
    nearest = chapter_solution(
        "05_captioning_heldout", "def nearest_by_cosine(", "5.11", "nearest_by_cosine"
    )
    assert check("5.11", nearest, quiet=True)
    # a right answer written another way: squared distance between unit vectors
    by_distance = lambda q, k: torch.cdist(  # noqa: E731
        torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(k, dim=1)
    ).argmin(1)
    assert check("5.11", by_distance, quiet=True)


@pytest.mark.parametrize("mistake", sorted(TEMPERATURE_MISTAKES))
def test_the_temperature_check_rejects(mistake):
    assert not check("5.9", TEMPERATURE_MISTAKES[mistake], quiet=True)


@pytest.mark.parametrize("mistake", sorted(RETRIEVAL_MISTAKES))
def test_the_retrieval_check_rejects(mistake):
    assert not check("5.11", RETRIEVAL_MISTAKES[mistake], quiet=True)


def test_nearest_neighbours_and_the_captioner_that_uses_it():
    keys = torch.tensor([[1.0, 0.0], [0.0, 10.0], [1.0, 1.0]])
    queries = torch.tensor([[0.9, 0.1], [0.1, 1.0], [2.0, 2.1]])
    assert nearest_neighbours(queries, keys).tolist() == [0, 1, 2]  # the cosine, not the length
    with pytest.raises(ValueError):
        nearest_neighbours(queries, torch.rand(3, 5))
    with pytest.raises(TypeError):
        nearest_neighbours(queries.long(), keys)

    grids = keys.view(3, 2, 1, 1)
    captioner = NearestNeighbourCaptioner(grids, ["a", "b", "c"])
    assert captioner(queries.view(3, 2, 1, 1)) == ["a", "b", "c"]
    calls = []

    def recorded(q, k):
        calls.append((q.shape, k.shape))
        return torch.zeros(len(q), dtype=torch.long)

    own = NearestNeighbourCaptioner(grids, ["a", "b", "c"], nearest=recorded)
    assert own(queries.view(3, 2, 1, 1)) == ["a", "a", "a"] and calls == [((3, 2), (3, 2))]
    with pytest.raises(TypeError, match="nearest"):
        NearestNeighbourCaptioner(grids, ["a", "b", "c"], nearest="cosine")
    for bad, error in (
        (lambda q, k: torch.full((len(q),), -1), ValueError),  # would wrap to the last caption
        (lambda q, k: torch.zeros(len(q)), TypeError),  # floats are not indices
        (lambda q, k: torch.zeros(len(q), 2, dtype=torch.long), ValueError),
    ):
        with pytest.raises(error, match="nearest"):
            NearestNeighbourCaptioner(grids, ["a", "b", "c"], nearest=bad)(grids)
