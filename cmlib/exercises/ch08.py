"""Chapter 08 exercises. Part 1: a program executor for one question family (8.1) and a
prediction about the question-only baseline (8.2). Part 2: attention with a padding mask (8.3),
cutting features into heads (8.4) and gluing them back (8.5). Part 3: a prediction about the
Relation Network on the family that compares two objects (8.6). Part 4: a prediction about
which reasoner loses more on colour-shape pairs never seen together (8.7)."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from ..data.reasoning import ReasoningDataset, ask, execute
from ..reasoning.parser import parse_question
from ..transformer.attention import merge_heads, scaled_dot_product_attention, split_heads
from . import Exercise, register, register_prediction


# ---------------------------------------------------------------- 8.3 attention with a mask
def masked_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_padding_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q kᵀ / √D) v`` with padding keys (True in ``key_padding_mask``) ignored:
    ``(output, weights)``."""
    return scaled_dot_product_attention(q, k, v, key_padding_mask=key_padding_mask)


def _qkv(rng: np.random.Generator, padded: bool = True):
    b, h = int(rng.integers(2, 5)), int(rng.integers(1, 4))
    lq, lk, d = int(rng.integers(2, 6)), int(rng.integers(3, 8)), int(rng.integers(4, 9))

    def t(*shape):
        return torch.from_numpy(rng.normal(size=shape)).float()

    lengths = rng.integers(1, lk + 1, size=b) if padded else np.full(b, lk)
    mask = torch.arange(lk)[None, :] >= torch.from_numpy(lengths)[:, None]  # True: padding
    return t(b, h, lq, d), t(b, h, lk, d), t(b, h, lk, d), mask


def _attend(q, k, v, mask, scale=True, fill=True, dim=-1):
    scores = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale else 1.0)
    if fill:
        scores = scores.masked_fill(mask[:, None, None, :], float("-inf"))
    weights = scores.softmax(dim=dim)
    return weights @ v, weights


def _unscaled(q, k, v, mask):
    return _attend(q, k, v, mask, scale=False)


def _unmasked(q, k, v, mask):
    return _attend(q, k, v, mask, fill=False)


def _zeroed_after_softmax(q, k, v, mask):  # the padding's share is dropped, not given back
    _, weights = _attend(q, k, v, mask, fill=False)
    weights = weights.masked_fill(mask[:, None, None, :], 0.0)
    return weights @ v, weights


def _mask_inverted(
    q, k, v, mask
):  # True read as "takes part", as in F.scaled_dot_product_attention
    return _attend(q, k, v, ~mask | mask.all(dim=1, keepdim=True))


def _weights_detached(q, k, v, mask):  # right values; q and k would never learn
    _, weights = _attend(q, k, v, mask)
    return weights.detach() @ v, weights.detach()


register(
    Exercise(
        id="8.3",
        title="scaled dot-product attention with a padding mask",
        hint="scores = q @ k.transpose(-2, -1) / sqrt(D); set the scores of padding keys to "
        "-inf with masked_fill (the mask is (B, Lk): index it as mask[:, None, None, :] to reach "
        "(B, H, Lq, Lk)); softmax over the last dimension (the keys); return (weights @ v, "
        "weights). True in the mask means padding",
        reference=masked_attention,
        make_inputs=_qkv,
        wrong_answers=(
            _unscaled,
            _unmasked,
            _zeroed_after_softmax,
            _mask_inverted,
            _weights_detached,
        ),
        cases=(_qkv(np.random.default_rng(7), padded=False),),
        trials=5,
        gradients=True,
    )
)


# ---------------------------------------------------------------- 8.4, 8.5 heads
def _features(rng: np.random.Generator):
    heads = int(rng.integers(2, 5))
    b, length, d = int(rng.integers(1, 4)), int(rng.integers(2, 6)), int(rng.integers(2, 5))
    return torch.from_numpy(rng.normal(size=(b, length, heads * d))).float(), heads


def _no_transpose(x, num_heads):  # the right shape, the wrong numbers: tokens cut across heads
    b, length, e = x.shape
    return x.reshape(b, num_heads, length, e // num_heads)


def _interleaved(x, num_heads):  # head h takes features h, h + H, h + 2H, ...
    b, length, e = x.shape
    return x.view(b, length, e // num_heads, num_heads).permute(0, 3, 1, 2)


register(
    Exercise(
        id="8.4",
        title="cut each token's features into heads",
        hint="view (B, L, E) as (B, L, H, E / H), so that each token keeps its features "
        "together, then transpose(1, 2) to bring the heads before the tokens: (B, H, L, E / H)",
        reference=split_heads,
        make_inputs=_features,
        wrong_answers=(_no_transpose, _interleaved),
        trials=5,
    )
)


def _heads(rng: np.random.Generator):
    b, h = int(rng.integers(1, 4)), int(rng.integers(2, 5))
    length, d = int(rng.integers(2, 6)), int(rng.integers(2, 5))
    return (torch.from_numpy(rng.normal(size=(b, h, length, d))).float(),)


def _merge_without_transpose(x):
    b, h, length, d = x.shape
    return x.reshape(b, length, h * d)


def _merge_heads_last(x):  # each feature's heads side by side, not each head's features
    b, h, length, d = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, length, h * d)


register(
    Exercise(
        id="8.5",
        title="glue the heads back together",
        hint="transpose(1, 2) back to (B, L, H, D), then reshape (not view: the transpose made "
        "the tensor non-contiguous) to (B, L, H · D)",
        reference=merge_heads,
        make_inputs=_heads,
        wrong_answers=(_merge_without_transpose, _merge_heads_last),
        trials=5,
    )
)


# ---------------------------------------------------------------- 8.1 one family's executor
def count_relate(graph: dict, d: tuple, anchor: tuple, rel: str) -> int:
    """How many objects matching ``d`` are ``rel`` the one object matching ``anchor``?"""
    return execute(ask("count_relate", d=d, anchor=anchor, rel=rel).program, graph)


@lru_cache(maxsize=1)
def _count_relate_items() -> tuple:
    """300 count_relate questions as ``(graph, d, anchor, rel)``, the words read back from
    each question by the parser."""
    data = ReasoningDataset("val", 300, seed=8, families=("count_relate",))
    out = []
    for item in data.items(range(300)):
        words = parse_question(item.question).words
        out.append((item.graph, words["d"], words["anchor"], words["rel"]))
    return tuple(out)


def _count_relate_inputs(rng: np.random.Generator):
    graph, d, anchor, rel = _count_relate_items()[int(rng.integers(0, 300))]
    return graph, d, anchor, rel


def _matches(obj, description):
    return all(v is None or obj[a] == v for a, v in zip(("size", "color", "shape"), description))


def _with_anchor(graph, d, anchor, rel):  # the anchor itself counted when it fits d
    objects = graph["objects"]
    (a,) = [i for i, o in enumerate(objects) if _matches(o, anchor)]
    key, sign = {"left of": ("x", -1), "right of": ("x", 1), "above": ("y", -1), "below": ("y", 1)}[
        rel
    ]
    return sum(_matches(o, d) and sign * (o[key] - objects[a][key]) >= 0 for o in objects)


def _axis_flipped(graph, d, anchor, rel):  # "above" read with y growing upwards
    flipped = {"above": "below", "below": "above"}.get(rel, rel)
    return count_relate(graph, d, anchor, flipped)


def _hard_cases() -> tuple:
    """Items where each mistake changes the answer: the anchor fits ``d``; ``rel`` is vertical."""
    items = _count_relate_items()
    anchor_fits = next(i for i in items if _with_anchor(*i) != count_relate(*i))
    vertical = next(i for i in items if _axis_flipped(*i) != count_relate(*i))
    return anchor_fits, vertical


register(
    Exercise(
        id="8.1",
        title="the executor for count_relate questions",
        hint="find the one object matching the anchor (a description is (size, colour, shape), "
        "None matching anything); keep the objects that are rel it — compare centres: x grows to "
        "the right, y grows *downwards*, so 'above' is a smaller y — never the anchor itself; "
        "count those matching d",
        reference=count_relate,
        make_inputs=_count_relate_inputs,
        wrong_answers=(_with_anchor, _axis_flipped),
        cases=_hard_cases(),
        trials=20,
    )
)


# ---------------------------------------------------------------- 8.2 predict, then run
register_prediction(
    "8.2",
    "how often does a model that reads only the question answer 'is there a …?' right?",
    {
        "a": "about half the time: a coin",
        "b": "about three times in four",
        "c": "nine times in ten or more",
    },
    "a",
)


register_prediction(
    "8.6",
    "how does the Relation Network, built to compare pairs, do on compare_attribute?",
    {
        "a": "better than the cross-attention transformer, by 0.05 or more",
        "b": "within 0.05 of the cross-attention transformer",
        "c": "worse than the cross-attention transformer, by 0.25 or more",
    },
    "c",
)


register_prediction(
    "8.7",
    "trained on condition A's colour-shape pairs only, which reasoner loses more on condition B's?",
    {
        "a": "the cross-attention transformer, by 0.05 or more",
        "b": "the neuro-symbolic reasoner, by 0.05 or more",
        "c": "about the same: within 0.05 of each other",
    },
    "b",
)
