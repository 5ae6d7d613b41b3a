"""Chapter 11 exercises: a prediction about when two reasoners' agreement can be trusted (11.1);
score a round trip (11.2), rank found and drawn images (11.3), route a prompt (11.4)."""

from __future__ import annotations

import numpy as np
import torch

from ..data.shapes import COLORS, POSITIONS, SHAPES, SIZES
from ..data.shapes.parse import Parsed
from . import Exercise, register, register_prediction


# ---------------------------------------------------------------- 11.2 scene agreement
def scene_agreement(asked: Parsed, said: Parsed | None) -> float:
    """The share of what ``asked`` states (colour, shape; size and position only when stated)
    that the one-object scene ``said`` agrees with; 0.0 when ``said`` is None."""
    ((size, color, shape),) = asked.objects
    if said is None:
        return 0.0
    ((said_size, said_color, said_shape),) = said.objects
    checks = [color == said_color, shape == said_shape]
    if size is not None:
        checks.append(size == said_size)
    if asked.position is not None:
        checks.append(asked.position == said.position)
    return sum(checks) / len(checks)


def _pick(rng: np.random.Generator, options, unsaid: float = 0.0):
    return None if rng.random() < unsaid else options[int(rng.integers(len(options)))]


def _scenes(rng: np.random.Generator):
    asked = Parsed(
        ((_pick(rng, SIZES, 0.5), _pick(rng, COLORS), _pick(rng, SHAPES)),),
        position=_pick(rng, POSITIONS, 0.5),
    )
    if rng.random() < 0.15:
        return asked, None
    ((size, color, shape),) = asked.objects
    keep = rng.random(4) < 0.6  # a caption that gets each attribute right 60% of the time
    said = Parsed(
        (
            (
                size if keep[0] and size else _pick(rng, SIZES),
                color if keep[1] else _pick(rng, COLORS),
                shape if keep[2] else _pick(rng, SHAPES),
            ),
        ),
        position=asked.position if keep[3] and asked.position else _pick(rng, POSITIONS),
    )
    return asked, said


def _counts_unsaid(asked, said):  # an unsaid size or position counts as a miss
    ((size, color, shape),) = asked.objects
    if said is None:
        return 0.0
    ((s_size, s_color, s_shape),) = said.objects
    checks = [color == s_color, shape == s_shape, size == s_size, asked.position == said.position]
    return sum(checks) / 4


def _all_or_nothing(asked, said):  # the verdict, not a score
    return float(scene_agreement(asked, said) == 1.0)


def _colour_shape_only(asked, said):
    if said is None:
        return 0.0
    return (
        (asked.objects[0][1] == said.objects[0][1]) + (asked.objects[0][2] == said.objects[0][2])
    ) / 2


register(
    Exercise(
        id="11.2",
        title="how much of a prompt a caption's scene agrees with",
        hint="compare colour and shape always, size and position only where the prompt says "
        "them (not None); divide the agreements by the number of checks; None → 0.0",
        reference=scene_agreement,
        make_inputs=_scenes,
        wrong_answers=(_counts_unsaid, _all_or_nothing, _colour_shape_only),
        cases=(
            (Parsed(((None, "red", "circle"),)), Parsed((("small", "red", "circle"),), "left")),
            (Parsed((("large", "red", "circle"),), "top"), None),
        ),
        trials=20,
    )
)


# ---------------------------------------------------------------- 11.3 one ranking
def combined_ranking(
    found_scores: torch.Tensor,
    drawn_scores: torch.Tensor,
    found_agrees: torch.Tensor,
    drawn_agrees: torch.Tensor,
) -> list[int]:
    """Order found and drawn images together (indices into found, then drawn): images whose
    verdict agrees first; within each group by their score standardised within its source,
    ``(s − mean) / std`` (population std), highest first; ties keep the input order."""

    def standardised(s: torch.Tensor) -> torch.Tensor:
        s = s.double()
        std = s.std(unbiased=False)
        return (s - s.mean()) / (std if std > 0 else 1.0)

    z = torch.cat([standardised(found_scores), standardised(drawn_scores)]).tolist()
    agrees = torch.cat([found_agrees, drawn_agrees]).tolist()
    return sorted(range(len(z)), key=lambda i: (not agrees[i], -z[i]))


def _candidates(rng: np.random.Generator):
    k, n = int(rng.integers(3, 7)), int(rng.integers(3, 7))
    found = torch.from_numpy(0.9 + 0.05 * rng.normal(size=k))  # cosine similarities
    drawn = torch.from_numpy(-20 + 5 * rng.normal(size=n))  # caption log-probabilities
    return (
        found,
        drawn,
        torch.from_numpy(rng.random(k) < 0.7),
        torch.from_numpy(rng.random(n) < 0.7),
    )


def _raw_scores(found, drawn, fa, da):  # scores on different scales compared as they are
    s, a = torch.cat([found, drawn]).tolist(), torch.cat([fa, da]).tolist()
    return sorted(range(len(s)), key=lambda i: (not a[i], -s[i]))


def _ignores_verdict(found, drawn, fa, da):
    return combined_ranking(found, drawn, torch.ones_like(fa), torch.ones_like(da))


def _standardised_together(found, drawn, fa, da):  # one mean and std over both sources
    s = torch.cat([found, drawn]).double()
    z, a = ((s - s.mean()) / s.std(unbiased=False)).tolist(), torch.cat([fa, da]).tolist()
    return sorted(range(len(z)), key=lambda i: (not a[i], -z[i]))


register(
    Exercise(
        id="11.3",
        title="one ranking of found and drawn images",
        hint="standardise each source's scores on its own ((s - mean) / std), then sort by "
        "(verdict disagrees, -standardised score): agreeing images first, best first",
        reference=combined_ranking,
        make_inputs=_candidates,
        wrong_answers=(_raw_scores, _ignores_verdict, _standardised_together),
        trials=10,
    )
)


# ---------------------------------------------------------------- 11.4 routing
def route(prompt: str) -> str:
    """Which step a prompt asks for: ``"translate"`` if it mentions a sketch (anywhere),
    else ``"find"`` if it starts with "find" or "show", else ``"draw"``; case does not
    matter."""
    words = prompt.lower().split()
    if "sketch" in words or "sketches" in words:
        return "translate"
    if words and words[0] in ("find", "show"):
        return "find"
    return "draw"


VERBS = ("draw", "find", "show", "paint", "make", "Find", "SHOW", "Draw", "")


def _prompts(rng: np.random.Generator):
    verb = VERBS[int(rng.integers(len(VERBS)))]
    color, shape = _pick(rng, COLORS), _pick(rng, SHAPES)
    middle = "a sketch of a" if rng.random() < 0.3 else "a"
    tail = " that I can find later" if rng.random() < 0.2 else ""
    return (f"{verb} {middle} {color} {shape}{tail}".strip(),)


def _case_sensitive(prompt):
    words = prompt.split()
    if "sketch" in words:
        return "translate"
    return "find" if words and words[0] in ("find", "show") else "draw"


def _find_anywhere(prompt):
    text = prompt.lower()
    if "sketch" in text:
        return "translate"
    return "find" if "find" in text or "show" in text else "draw"


def _verb_first(prompt):  # the verb wins over the sketch
    words = prompt.lower().split()
    if words and words[0] in ("find", "show"):
        return "find"
    return "translate" if "sketch" in words else "draw"


register(
    Exercise(
        id="11.4",
        title="route a prompt to the step that serves it",
        hint="lower-case and split the prompt; a 'sketch' anywhere → 'translate'; else a first "
        "word 'find' or 'show' → 'find'; else 'draw'",
        reference=route,
        make_inputs=_prompts,
        wrong_answers=(_case_sensitive, _find_anywhere, _verb_first),
        cases=(
            ("Find a red circle",),
            ("find a sketch of a blue square",),
            ("draw a green circle that I can find later",),
        ),
        trials=30,
    )
)


# ---------------------------------------------------------------- 11.1 a shared blind spot
register_prediction(
    "11.1",
    "on CoGenT's condition B, with one tagger trained on condition A under both reasoners, how "
    "often is an answer the two agree on right?",
    {
        "a": "as often as on the i.i.d. test: 0.99 or more",
        "b": "clearly less often: 0.85 or less",
        "c": "in between: above 0.85, below 0.99",
    },
    "b",
)
