"""Questions back to their programs: the question parser of the neuro-symbolic reasoner.

NS-VQA (Yi et al., 2018) answers a question in three steps: perceive the scene as a graph,
parse the question into a program, run the program on the graph. Its parser is a
sequence-to-sequence network (an LSTM encoder–decoder) trained on question–program pairs, so
that it can read free-form text, including questions people wrote.

Ours needs no network. Every question of :mod:`cmlib.data.reasoning` is written from one of
the English templates of :data:`~cmlib.data.reasoning.families.TEMPLATES`, so matching the text
against each template — compiled to a regular expression whose slots match exactly the words
a slot can hold — finds the family, the template and the words, and
:func:`~cmlib.data.reasoning.families.ask` then writes the program from them, with the very
code that generated the question. On generated questions the parse is exact, so whatever the
neuro-symbolic model gets wrong, perception or execution got wrong, not the parser.

What it cannot do: read any wording outside the templates. "How many red things are there?",
"Is there a ball?" or "Are there any circles that are red?" are rejected — naming the unknown
word when one is outside :func:`~cmlib.data.reasoning.questions.question_vocab`, otherwise
listing templates that do parse — where a learned parser would make a guess, right or wrong.
Paraphrases are what a learned parser is for.

Example:
    >>> parsed = parse_question("how many red objects are left of the large square")
    >>> parsed.family, parsed.text
    ('count_relate', 'How many red objects are left of the large square?')
    >>> print(*parsed.program[:4]); print(*parsed.program[4:])
    scene() filter_size[large](0) filter_shape[square](1) unique(2)
    relate[left of](3) filter_color[red](4) count(5)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..data.reasoning.families import ATTRIBUTE_WORDS, TEMPLATES, ask
from ..data.reasoning.planting import ATTRS, Context, only
from ..data.reasoning.programs import Node
from ..data.reasoning.questions import question_vocab
from ..data.shapes.world import COLORS, RELATIONS, SHAPES, SIZES
from ..text import tokenize
from ..validate import check_type

__all__ = ["ParsedQuestion", "parse_question"]


@dataclass(frozen=True)
class ParsedQuestion:
    """What :func:`parse_question` found in a question.

    Attributes:
        family: the question family, one of :data:`~cmlib.data.reasoning.families.FAMILIES`.
        template: the index of the template in ``TEMPLATES[family]``.
        words: the keyword arguments of :func:`~cmlib.data.reasoning.families.ask` that write
            this question: ``ask(family, template, **words)``. Descriptions are
            ``(size, colour, shape)`` triples with ``None`` for what the question leaves open.
        program: the question's program, as :func:`ask` writes it.
        text: the question as the template writes it (capital, articles, final "?").
    """

    family: str
    template: int
    words: dict
    program: tuple[Node, ...]
    text: str


# ---------------------------------------------------------------- the slots
def _either(words) -> str:
    return "|".join(re.escape(w) for w in words)


def _description(slot: str, plural: bool) -> str:
    """``large red circle``, ``red objects``: an optional size and colour, then a noun.

    The noun is "object(s)" when the shape is left open (what :func:`~.planting.phrase`
    writes); a description naming nothing ("object") still matches, so that :func:`ask` can
    say what is wrong with it.
    """
    s = "s" if plural else ""
    return (
        f"(?:(?P<{slot}_size>{_either(SIZES)}) )?"
        f"(?:(?P<{slot}_color>{_either(COLORS)}) )?"
        f"(?P<{slot}_shape>{_either(SHAPES + ('object',))}){s}"
    )


#: and_or_count's words, each naming one attribute: sizes, colours and *plural* shapes
#: ("red or circles"), as that family writes them, with the description each stands for.
_SINGLES = {
    **{v: only("size", v) for v in SIZES},
    **{v: only("color", v) for v in COLORS},
    **{v + "s": only("shape", v) for v in SHAPES},
}
_SLOTS = {
    "d": _description("d", plural=False),
    "ds": _description("ds", plural=True),
    "d2": _description("d2", plural=False),
    "ds2": _description("ds2", plural=True),
    "rel": f"(?P<rel>{_either(RELATIONS)})",
    "attr": f"(?P<attr>{_either(ATTRIBUTE_WORDS.values())})",
    "p": f"(?P<p>{_either(_SINGLES)})",
    "q": f"(?P<q>{_either(_SINGLES)})",
}
#: The argument of :func:`ask` each slot fills: a singular and a plural description are the
#: same words; in the relational families (those with ``{rel}``) ``{d2}`` is the anchor.
_ARGUMENTS = {
    "d": "d",
    "ds": "d",
    "d2": "d2",
    "ds2": "d2",
    "rel": "rel",
    "attr": "attr",
    "p": "p1",
    "q": "p2",
}


def _canonical_words(text: str) -> list[str]:
    """The words as matching sees them: lower case, no punctuation, "an" read as "a".

    Why "an" → "a": the templates say "a {d}" and the generator's ``a_an`` rewrites it before
    a vowel ("an orange circle"); reading both alike keeps the templates as written.
    """
    return ["a" if w == "an" else w for w in tokenize(text)]


def _compile(template: str) -> tuple[tuple[str, ...], re.Pattern]:
    """A template's slot names and its regular expression over :func:`_canonical_words`.

    Word by word: a slot ``{d}`` becomes what it can hold, any other word itself.
    """
    tokens = template.lower().rstrip("?").split()
    slots = tuple(t[1:-1] for t in tokens if t.startswith("{"))
    pattern = " ".join(_SLOTS[t[1:-1]] if t.startswith("{") else re.escape(t) for t in tokens)
    return slots, re.compile(pattern)


#: (family, template index, slot names, compiled template), in the order of TEMPLATES.
_PATTERNS = tuple(
    (family, index, *_compile(template))
    for family, templates in TEMPLATES.items()
    for index, template in enumerate(templates)
)


# ---------------------------------------------------------------- parsing
def _read(slot: str, match: re.Match):
    """The value of one slot for :func:`ask`: a word, or a description triple."""
    if slot in ("rel", "attr"):
        return match[slot]
    if slot in ("p", "q"):
        return _SINGLES[match[slot]]
    triple = tuple(match[f"{slot}_{attr}"] for attr in ATTRS)
    return triple[:2] + (None if triple[2] == "object" else triple[2],)


def _words_of(slots: tuple[str, ...], match: re.Match) -> dict:
    """The keyword arguments of :func:`ask` that a matched template's slots hold."""
    words = {}
    for slot in slots:
        name = _ARGUMENTS[slot]
        if name == "d2" and "rel" in slots:
            name = "anchor"
        words[name] = _read(slot, match)
    return words


def _check_words(text: str) -> list[str]:
    """The canonical words of ``text``, once every one is a question word."""
    words = _canonical_words(text)
    if not words:
        raise ValueError(f"expected a question with at least one word, got {text!r}")
    vocab = question_vocab()
    unknown = list(dict.fromkeys(w for w in words if w not in vocab))
    if unknown:
        raise ValueError(
            f"unknown word{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))} in "
            f"{text!r}: the questions use only these {len(vocab) - 4} words: "
            f"{' '.join(vocab.itos[4:])}"
        )
    return words


def _no_match(text: str) -> ValueError:
    examples = "; ".join(f"{family}: {t[0]!r}" for family, t in TEMPLATES.items())
    return ValueError(
        f"{text!r} matches no question template (every word is known, but not in this order). "
        f"One template per family, where {{d}} is a description such as 'large red circle' "
        f"and {{ds}} its plural: {examples}"
    )


def parse_question(text: str, context: Context | None = None) -> ParsedQuestion:
    """A question's family, template, words and program, found by matching its templates.

    Matching ignores case, punctuation and extra whitespace (so a missing "?" is fine), and
    reads "a" and "an" alike; :attr:`ParsedQuestion.text` is the question as written by its
    template.

    Args:
        text: a question written from one of
            :data:`~cmlib.data.reasoning.families.TEMPLATES`.
        context: passed on to :func:`~cmlib.data.reasoning.families.ask` (``None``: every
            colour–shape pair, 3–6 objects).

    Example:
        >>> parse_question("Is there an orange triangle?").words
        {'d': (None, 'orange', 'triangle')}

    Raises:
        TypeError: if ``text`` is not a string, or ``context`` not a ``Context``.
        ValueError: for an empty question; a word outside
            :func:`~cmlib.data.reasoning.questions.question_vocab` (named); known words that
            fit no template; or words :func:`ask` rejects (its message, e.g. a description
            that names nothing, "Is there an object?").
    """
    check_type("question", text, str)
    canonical = " ".join(_check_words(text))
    for family, template, slots, pattern in _PATTERNS:
        match = pattern.fullmatch(canonical)
        if match is None:
            continue
        words = _words_of(slots, match)
        try:
            draft = ask(family, template, context=context, **words)
        except ValueError as err:
            raise ValueError(
                f"{text!r} fits the template {TEMPLATES[family][template]!r} ({family}), but: {err}"
            ) from err
        return ParsedQuestion(family, template, words, draft.program, draft.text)
    raise _no_match(text)
