"""Chapter 07's retrieval task as a library (cmlib.shapes_retrieval): splits, embeddings and
metrics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cmlib import shapes_retrieval
from cmlib.data.shapes import COLORS, SHAPES


class AttributeOracle(nn.Module):
    """Embeds an image and a caption as the one-hot of their (shape, colour, size, position):
    every relevant pair scores 1 and every other 0, so retrieval must be perfect."""

    def __init__(self, split: shapes_retrieval.CaptionedSplit):
        super().__init__()
        self.split = split
        self.code = {}
        a = split.attrs
        for i in range(len(split)):
            key = tuple(int(a[k][i]) for k in shapes_retrieval.KEYS)
            self.code.setdefault(key, len(self.code))
        self.keys = [tuple(int(a[k][i]) for k in shapes_retrieval.KEYS) for i in range(len(split))]

    def _rows(self, rows: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(rows), len(self.code))
        out[torch.arange(len(rows)), torch.tensor([self.code[self.keys[r]] for r in rows])] = 1
        return out

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        # the images carry their own row number in pixel (0, 0, 0), written by the test
        return self._rows(images[:, 0, 0, 0].long())

    def encode_text(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self._rows(ids[:, -1].long())


@pytest.fixture(scope="module")
def split():
    return shapes_retrieval.load_split("test", 40, image_size=16)


def test_load_split_keeps_the_captions_as_text(split):
    assert split.images.shape == (40, 3, 16, 16) and len(split) == 40
    assert split.ids.shape[:2] == split.lengths.shape == (40, len(split.captions[0]))
    first = split.captions[0][0]  # the canonical caption names the scene's colour and shape
    assert COLORS[int(split.attrs["color"][0])] in first
    assert SHAPES[int(split.attrs["shape"][0])] in first


def test_split_metrics_are_perfect_for_an_oracle_in_both_directions(split):
    # tag each image and caption with its row, so the oracle can look its attributes up
    rows = torch.arange(len(split)).view(-1, 1, 1).expand(-1, split.ids.shape[1], 1)
    tagged = shapes_retrieval.CaptionedSplit(
        split.images.clone(), torch.cat([split.ids, rows], 2), split.lengths, split.attrs
    )
    tagged.images[:, 0, 0, 0] = torch.arange(len(split)).float()
    oracle = AttributeOracle(tagged)
    images, texts = shapes_retrieval.embed_split(oracle, tagged, torch.device("cpu"), batch_size=7)
    assert images.shape == texts.shape == (40, len(oracle.code))
    metrics = shapes_retrieval.split_metrics(oracle, tagged, torch.device("cpu"), batch_size=7)
    assert metrics["t2i"]["R@1"] == 1.0 and metrics["i2t"]["R@1"] == 1.0
    assert (
        shapes_retrieval.text_to_image_metrics(oracle, tagged, torch.device("cpu"))
        == (metrics["t2i"])
    )
    # shuffle the captions' rows: text -> image then finds the wrong scenes
    shuffled = shapes_retrieval.CaptionedSplit(
        tagged.images, tagged.ids.roll(1, 0), tagged.lengths, tagged.attrs, tagged.captions
    )
    assert shapes_retrieval.split_metrics(oracle, shuffled, torch.device("cpu"))["t2i"]["R@1"] < 1


def test_embed_split_refuses_a_missing_paraphrase(split):
    model = shapes_retrieval.make_dual_encoder(image_size=16, cnn_width=4, embed_dim=8)
    with pytest.raises(ValueError, match="variant"):
        shapes_retrieval.embed_split(model, split, torch.device("cpu"), variant=split.ids.shape[1])
    with pytest.raises(TypeError, match="batch_size"):
        shapes_retrieval.embed_split(model, split, torch.device("cpu"), batch_size=1.5)
    images, texts = shapes_retrieval.embed_split(model, split, torch.device("cpu"), variant=1)
    assert images.shape == texts.shape == (40, 8) and model.training
