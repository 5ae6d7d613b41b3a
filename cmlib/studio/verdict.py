"""The studio checks itself: does the caption of a picture say what the prompt asked?

A round trip: prompt → picture → caption → parsed scene, compared with the parsed prompt. Only
what the prompt *says* is checked: a prompt without a size accepts any size. The verdict is a
metric too: over many pictures, the fraction of agreeing round trips estimates fidelity
without a judge, as long as the captioner is right (chapter 11 measures how often it is).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..data.shapes.parse import Parsed, parse_caption, scene_facts

#: The parts of a scene a verdict compares, in the order messages name them.
PARTS = ("color_shape", "size", "where")


@dataclass(frozen=True)
class Verdict:
    """One round trip's outcome.

    Attributes:
        caption: what the captioner said.
        parsed: the caption read back (``None`` when outside the grammar).
        matches: per part of the prompt (``color_shape``, ``size``, ``where``): agreed or not;
            a part the prompt leaves unsaid is absent.
        agrees: every part the prompt says agrees.
    """

    caption: str
    parsed: Parsed | None
    matches: dict[str, bool]
    agrees: bool

    def message(self) -> str:
        """A one-line verdict for the app."""
        if self.parsed is None:
            return f"✗ the caption '{self.caption}' could not be read back"
        if self.agrees:
            return f"✓ '{self.caption}' says what you asked"
        if not self.matches.get("color_shape", True):
            # size and where are read per (colour, shape) pair, so with other objects they
            # cannot hold: name only the cause
            return f"✗ '{self.caption}' names other objects (colour and shape) than you asked"
        wrong = " and ".join(part for part, ok in self.matches.items() if not ok)
        return f"✗ '{self.caption}' does not match in {wrong}"


def compare_scenes(asked: Parsed, said: Parsed | None) -> dict[str, bool]:
    """Which parts of ``asked`` the scene ``said`` agrees with (unsaid parts are skipped).

    Args:
        asked: the prompt's scene.
        said: a caption's scene, or ``None`` when the caption did not parse.

    Returns:
        ``color_shape`` always (the same colours and shapes, as a set); ``size`` when the prompt
        names a size; ``where`` when it names a position or a relation.
    """
    if not isinstance(asked, Parsed):
        raise TypeError(f"asked must be a Parsed scene, got {type(asked).__name__}")
    asked = scene_facts(asked)
    has_size = any(size is not None for size, _, _ in asked.objects)
    has_where = asked.position is not None or asked.relation is not None
    if said is None:
        out = {"color_shape": False}
        out.update({"size": False} if has_size else {})
        out.update({"where": False} if has_where else {})
        return out
    said = scene_facts(said)
    out = {"color_shape": sorted(_pairs(asked)) == sorted(_pairs(said))}
    if has_size:
        sizes = {(c, s): size for size, c, s in said.objects}
        out["size"] = out["color_shape"] and all(
            size is None or sizes.get((c, s)) == size for size, c, s in asked.objects
        )
    if has_where:
        # In normal form, two objects agree on "where" when they come in the same order with
        # the same relation; one object when it has the same position.
        out["where"] = (_pairs(said), said.position, said.relation) == (
            _pairs(asked),
            asked.position,
            asked.relation,
        )
    return out


def _pairs(scene: Parsed) -> list[tuple[str, str]]:
    return [(color, shape) for _, color, shape in scene.objects]


def round_trip_verdict(asked: Parsed, caption: str) -> Verdict:
    """Read ``caption`` back and compare it with the prompt's scene ``asked``."""
    if not isinstance(caption, str):
        raise TypeError(f"caption must be a string, got {type(caption).__name__}")
    parsed = parse_caption(caption)
    matches = compare_scenes(asked, parsed)
    return Verdict(caption, parsed, matches, parsed is not None and all(matches.values()))
