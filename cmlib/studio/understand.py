"""What the studio understands: a prompt becomes a scene to draw and find, or a message.

The studio speaks ShapesWorld's language, the same grammar its captions are written in
(:mod:`cmlib.data.shapes.parse`), plus a leading verb ("draw", "find", "show me"). Anything else
gets a :class:`PromptNotUnderstood` whose message names what the studio does understand and,
where it can, which word it did not know — never a traceback in the app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..data.shapes.parse import Parsed, parse_caption
from ..data.shapes.text import POSITION_WORDS, SHAPE_WORDS, SIZE_WORDS
from ..data.shapes.world import COLORS

#: Leading words that say what to do, not what to show; they are dropped before parsing.
VERBS = ("draw me", "draw", "find me", "find", "show me", "show", "make", "paint", "please")
EXAMPLE = "a small red circle on the left"


class PromptNotUnderstood(ValueError):
    """The prompt is empty or outside the studio's language; the message says what it knows."""


@dataclass(frozen=True)
class Request:
    """A prompt the studio understood.

    Attributes:
        prompt: what was typed.
        scene: what it asks for, in the caption grammar's terms (objects, position, relation).
    """

    prompt: str
    scene: Parsed

    @property
    def colors_and_shapes(self) -> tuple[tuple[str, str], ...]:
        """The ``(colour, shape)`` of each object asked for."""
        return tuple((color, shape) for _, color, shape in self.scene.objects)


def known_words() -> dict[str, tuple[str, ...]]:
    """The content words the studio knows, by kind (synonyms included)."""
    return {
        "colours": tuple(COLORS),
        "shapes": tuple(w for words in SHAPE_WORDS.values() for w in words),
        "sizes": tuple(w for words in SIZE_WORDS.values() for w in words),
        "positions": tuple(w for words in POSITION_WORDS.values() for w in words),
    }


def what_it_understands() -> str:
    """One sentence for messages: the kinds of words the studio knows, and an example."""
    words = known_words()
    return (
        f"The studio draws and finds one shape, e.g. '{EXAMPLE}'. It knows the colours "
        f"{', '.join(words['colours'])}; the shapes {', '.join(words['shapes'])}; the sizes "
        f"{', '.join(words['sizes'])}; and positions such as 'on the left' or 'at the top'."
    )


def _strip_verbs(text: str) -> str:
    text = " ".join(text.lower().replace(",", " ").replace("!", " ").split())
    changed = True
    while changed:
        changed = False
        for verb in VERBS:
            if text == verb or text.startswith(verb + " "):
                text, changed = text[len(verb) :].strip(), True
    return text


def understand(prompt: str) -> Request:
    """Parse ``prompt`` into a :class:`Request`.

    Raises:
        TypeError: if ``prompt`` is not a string.
        PromptNotUnderstood: if it is empty, or no scene could be read from it; the message
            names the unknown words (if any) and what the studio understands.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
    text = _strip_verbs(prompt)
    if not text:
        raise PromptNotUnderstood(f"The prompt is empty. {what_it_understands()}")
    for candidate in (text, f"a {text}"):  # "red circle" reads as "a red circle"
        parsed = _parse_one(candidate)
        if parsed is not None:
            return Request(prompt, parsed)
    raise PromptNotUnderstood(f"{_diagnose(text)} {what_it_understands()}")


def _parse_one(text: str) -> Parsed | None:
    """The caption grammar's reading of ``text``; a size without a position ("a large red
    circle"), which captions never say, is read with a stand-in position that is then dropped."""
    parsed = parse_caption(text)
    if parsed is None:
        placed = parse_caption(f"{text} on the left")
        if placed is not None and len(placed.objects) == 1:
            parsed = replace(placed, position=None)
    return parsed


def _diagnose(text: str) -> str:
    """Which content words of ``text`` the studio knows, to say what is missing."""
    words = set(re.findall(r"[a-z]+", text))
    known = known_words()
    colours = sorted(words & set(known["colours"]))
    shapes = sorted(words & set(known["shapes"]))
    if not colours and not shapes:
        return f"'{text}' names no colour or shape the studio knows."
    if not shapes:
        return f"'{text}' names a colour ({', '.join(colours)}) but no shape the studio knows."
    if not colours:
        return f"'{text}' names a shape ({', '.join(shapes)}) but no colour; say which colour."
    return f"'{text}' has known words but not in a form the studio reads; try '{EXAMPLE}'."
