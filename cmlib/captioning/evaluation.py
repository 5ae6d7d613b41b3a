"""Judging captions by what they mean, against the scenes ShapesWorld really drew.

* :func:`caption_scores` parses every caption (:func:`cmlib.data.shapes.parse.parse_caption`)
  and compares it with the true scene: exact-scene accuracy and per-attribute accuracy. A
  caption outside the grammar counts as wrong.
* :func:`hallucination_rate` is CHAIR-style (Rohrbach et al., 2018): the share of objects
  named that are not in the image, on every attribute the caption gives them.
* :func:`corpus_bleu` is sacrebleu's corpus BLEU-4 against all five references — n-gram
  overlap, which can be high while the meaning is wrong (the notebook shows one).
* :func:`attention_in_object`: how much of the attention, at the words naming an object, lies
  on that object's pixels, against the share of the image the object covers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from ..data.shapes.captioning import CaptionData
from ..data.shapes.parse import Parsed, agreement, parse_caption
from ..data.shapes.render import signed_distance
from ..data.shapes.text import INVERSE_RELATION, SHAPE_WORDS, canonical_caption
from ..data.shapes.world import COLORS, Scene
from ..text import Vocab
from ..validate import check_int, check_same_length, check_tensor, require
from .models import Captioner

#: The attributes :func:`caption_scores` reports one by one.
ATTRIBUTES = ("color", "shape", "size", "where")


def _attribute_hits(parsed: Parsed | None, scene: Scene) -> dict[str, bool]:
    """Colour, shape, size and where, each judged on its own."""
    truth = sorted((o.color, o.shape, o.size) for o in scene.objects)
    if parsed is None or len(parsed.objects) != len(truth):
        return dict.fromkeys(ATTRIBUTES, False)
    said = parsed.objects
    agree = agreement(parsed, scene)
    return {
        "color": sorted(c for _, c, _ in said) == sorted(c for c, _, _ in truth),
        "shape": sorted(s for _, _, s in said) == sorted(s for _, s, _ in truth),
        "size": agree["size"],
        "where": agree["where"],
    }


def caption_scores(captions: Sequence[str], scenes: Sequence[Scene]) -> dict[str, float]:
    """Exact-scene and per-attribute accuracy of ``captions`` as descriptions of ``scenes``.

    Returns:
        ``parsed`` (share inside the grammar), ``exact`` (everything said right, nothing
        missing but sizes — see :func:`~cmlib.data.shapes.parse.agreement`), ``color_shape``
        (every object's colour and shape), ``count``, and ``color``, ``shape``, ``size``,
        ``where`` one by one.
    """
    check_same_length(captions=captions, scenes=scenes)
    if not captions:
        raise ValueError("caption_scores needs at least one caption")
    rows = []
    for caption, scene in zip(captions, scenes):
        parsed = parse_caption(caption)
        row = agreement(parsed, scene)
        row.update(_attribute_hits(parsed, scene))
        rows.append(row)
    keys = ("parsed", "exact", "color_shape", "count", *ATTRIBUTES)
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def _mention_is_real(mention: tuple[str | None, str, str], scene: Scene) -> bool:
    size, color, shape = mention
    return any(
        o.color == color and o.shape == shape and (size is None or o.size == size)
        for o in scene.objects
    )


def hallucination_rate(captions: Sequence[str], scenes: Sequence[Scene]) -> float:
    """Share of the objects named that the image does not hold, CHAIR-style.

    Each object a caption names (its size if said, its colour, its shape) is a mention; a
    mention is hallucinated unless some object in the scene has all those attributes. A
    caption the grammar cannot read counts as one hallucinated mention.
    """
    check_same_length(captions=captions, scenes=scenes)
    if not captions:
        raise ValueError("hallucination_rate needs at least one caption")
    mentions = false = 0
    for caption, scene in zip(captions, scenes):
        parsed = parse_caption(caption)
        if parsed is None:
            mentions, false = mentions + 1, false + 1
            continue
        mentions += len(parsed.objects)
        false += sum(not _mention_is_real(m, scene) for m in parsed.objects)
    return false / mentions


def corpus_bleu(captions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 (sacrebleu, 0–100) of ``captions`` against each one's references."""
    sacrebleu = require("sacrebleu", "sacrebleu", "BLEU")
    check_same_length(captions=captions, references=references)
    if not captions:
        raise ValueError("corpus_bleu needs at least one caption")
    counts = {len(r) for r in references}
    if len(counts) != 1:
        raise ValueError(f"every caption needs the same number of references, got {counts}")
    streams = [list(column) for column in zip(*references)]
    return float(sacrebleu.corpus_bleu(list(captions), streams).score)


def object_coverage(obj, image_size: int, grid_size: int) -> torch.Tensor:
    """``(grid_size², )``: the share of each grid cell's pixels the object covers."""
    inside = torch.from_numpy(signed_distance(obj, image_size) < 0).float()
    cell = image_size // grid_size
    return inside.view(grid_size, cell, grid_size, cell).mean(dim=(1, 3)).flatten()


def _shape_words() -> dict[str, str]:
    return {word: shape for shape, words in SHAPE_WORDS.items() for word in words}


def attention_in_object(
    attention: torch.Tensor,
    tokens: torch.Tensor,
    scenes: Sequence[Scene],
    vocab: Vocab,
    image_size: int,
) -> dict[str, float]:
    """Attention mass on the named object at its colour and shape words, and its area share.

    For each object a greedy caption names correctly (colour word then shape word, matching an
    object of the scene), the attention at those two words is summed over the grid cells,
    each weighted by how much of the cell the object covers.

    Args:
        attention: ``(B, T, N)`` the attention at each step (:func:`~.decoding.greedy_decode`).
        tokens: ``(B, T)`` the tokens written.
        scenes: the B scenes.
        vocab: the captions' vocabulary.
        image_size: the images' size in pixels.

    Returns:
        ``mass`` (mean attention inside the object), ``area`` (mean share of the image it
        covers), ``ratio`` (``mass / area``) and ``words`` (how many words were measured).
    """
    check_tensor("attention", attention, ("B", "T", "N"), floating=True)
    check_tensor("tokens", tokens, tuple(attention.shape[:2]), floating=False)
    check_same_length(attention=attention, scenes=scenes)
    check_int("image_size", image_size)
    grid_size = int(round(attention.shape[2] ** 0.5))
    if grid_size * grid_size != attention.shape[2]:
        raise ValueError(f"attention must be over a square grid, got {attention.shape[2]} cells")
    shapes, colors = _shape_words(), set(COLORS)
    masses, areas = [], []
    for b, scene in enumerate(scenes):
        words = [vocab.itos[i] for i in tokens[b].tolist()]
        for t in range(1, len(words)):
            if words[t] not in shapes or words[t - 1] not in colors:
                continue
            named = [
                o for o in scene.objects if o.color == words[t - 1] and o.shape == shapes[words[t]]
            ]
            if len(named) != 1:
                continue
            coverage = object_coverage(named[0], image_size, grid_size)
            for step in (t - 1, t):
                masses.append(float(attention[b, step] @ coverage))
                areas.append(float(coverage.mean()))
    if not masses:
        raise ValueError("no caption named an object of its scene: nothing to measure")
    mass, area = float(np.mean(masses)), float(np.mean(areas))
    return {"mass": mass, "area": area, "ratio": mass / area, "words": len(masses)}


def nearest_neighbours(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """For each query, the index of the key with the highest cosine similarity.

    Shapes:
        ``queries (B, D)``, ``keys (N, D)`` → ``(B,)`` long indices into ``keys``.
    """
    check_tensor("queries", queries, ("B", "D"), floating=True, nonempty=True)
    check_tensor("keys", keys, ("N", queries.shape[1]), floating=True, nonempty=True)
    similarity = F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).T
    return similarity.argmax(1)


class NearestNeighbourCaptioner:
    """Caption an image with the caption of its nearest training image (cosine, flattened grid).

    The contrast for compositional generalisation: it can only repeat training captions, so
    it can never name a held-out (colour, shape) pair.

    Args:
        grids: ``(N, C, h, w)`` the training images' region grids.
        captions: their N captions.
        nearest: ``(queries (B, D), keys (N, D)) -> (B,)`` indices; :func:`nearest_neighbours`
            by default (chapter 05 part 3 passes the reader's, exercise 5.11).
    """

    def __init__(
        self,
        grids: torch.Tensor,
        captions: Sequence[str],
        nearest: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nearest_neighbours,
    ):
        check_tensor("grids", grids, ("N", "C", "h", "w"), floating=True, nonempty=True)
        check_same_length(grids=grids, captions=captions)
        if not callable(nearest):
            raise TypeError(f"nearest must be a function, got {type(nearest).__name__}")
        self.grid_shape = tuple(grids.shape[1:])
        self.keys = grids.flatten(1)
        self.captions = list(captions)
        self.nearest = nearest

    def __call__(self, grids: torch.Tensor) -> list[str]:
        check_tensor("grids", grids, ("B", *self.grid_shape), floating=True, nonempty=True)
        indices = self.nearest(grids.flatten(1), self.keys)
        check_tensor("nearest's result", indices, (len(grids),), floating=False)
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self.captions)):
            raise ValueError(
                f"nearest must return indices in [0, {len(self.captions)}), got "
                f"[{int(indices.min())}, {int(indices.max())}]"
            )
        return [self.captions[i] for i in indices.tolist()]


# ---------------------------------------------------------------- exposure bias
def mirrored_caption(scene: Scene) -> str:
    """The canonical caption with the two objects named the other way round (same meaning)."""
    if len(scene.objects) == 1:
        return canonical_caption(scene)
    flipped = Scene(scene.objects[::-1], scene.style, relation=INVERSE_RELATION[scene.relation])
    return canonical_caption(flipped)


def _detailed_targets(data: CaptionData, vocab: Vocab) -> tuple[torch.Tensor, torch.Tensor]:
    """The detailed form ``(N, T)`` (``<bos>`` … ``<eos>``) in both object orders."""
    first = data.detailed_ids
    mirrored, _ = vocab.encode_batch(
        [mirrored_caption(s) for s in data.scenes], add_bos_eos=True, max_len=first.shape[1]
    )
    mirrored = torch.nn.functional.pad(
        mirrored, (0, first.shape[1] - mirrored.shape[1]), value=vocab.pad_id
    )
    return first, mirrored


def _better_fit(
    candidates: list[tuple[torch.Tensor, torch.Tensor]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the (predicted, target) pair with more matching real tokens."""
    hits = [((p == t) & (t != pad_id)).sum(1) for p, t in candidates]
    second_wins = (hits[1] > hits[0])[:, None]
    return tuple(torch.where(second_wins, b, a) for a, b in zip(*candidates))


@torch.no_grad()
def teacher_forced_tokens(
    model: Captioner,
    data: CaptionData,
    grids: torch.Tensor,
    device: torch.device,
    batch_size: int = 500,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token predictions when fed the *true* "in detail" caption, word after word.

    A two-object scene's detailed caption can name either object first: the model is fed both
    orders and each row keeps the one it predicts better.

    Returns:
        ``(predicted (N, T), target (N, T))``.
    """
    model.eval()
    candidates = []
    for target in _detailed_targets(data, data.vocab):
        preds = []
        for start in range(0, len(data), batch_size):
            part = target[start : start + batch_size]
            logits = model(
                grids[start : start + batch_size].to(device),
                part[:, :-1].to(device),
                torch.full((len(part),), 2, device=device),
            )
            preds.append(logits.argmax(2).cpu())
        candidates.append((torch.cat(preds), target[:, 1:]))
    return _better_fit(candidates, data.vocab.pad_id)


def free_running_tokens(
    decoded: torch.Tensor, data: CaptionData, vocab: Vocab
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy "in detail" captions against the detailed form, in whichever object order fits.

    Returns:
        ``(predicted (N, T), target (N, T))``, padded alike.
    """
    check_tensor("decoded", decoded, (len(data), "T"), floating=False)
    targets = [t[:, 1:] for t in _detailed_targets(data, vocab)]
    width = max(decoded.shape[1], targets[0].shape[1])

    def pad(t):
        return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=vocab.pad_id)

    pred = pad(decoded)
    return _better_fit([(pred, pad(t)) for t in targets], vocab.pad_id)


def accuracy_by_position(
    predicted: torch.Tensor, target: torch.Tensor, pad_id: int
) -> tuple[np.ndarray, float]:
    """Token accuracy at each position of the target, and over all its real tokens."""
    check_tensor("predicted", predicted, tuple(target.shape), floating=False)
    real = target != pad_id
    hits = (predicted == target) & real
    per_position = (hits.sum(0).float() / real.sum(0).clamp(min=1)).numpy()
    return per_position[: int(real.any(0).sum())], float(hits.sum() / real.sum())
