"""CLEVR-style questions: generated with their scene, balanced, and their vocabulary.

:func:`generate` draws one question and the scene it is about: a family (uniformly among
``families``), the question's words (:func:`~.families.draft`), then the number of objects *and
the answer together*, uniformly among the pairs this question can have, and only then a scene
that gives them (planted, placed and checked by running the program). Picking the answer before
the scene is what balances the data: a model that reads only the question cannot beat the
family's prior (:func:`majority_rates` prints it), and one that also counts the objects in the
image gains nothing by it (:func:`object_count_rates` prints that).

What remains, by design. The families that answer with a count cannot have every answer
equally likely *and* a number of objects that says nothing about the answer: "six" needs six
objects. Drawing the answer first and the objects from ``[least(answer), high]`` (as this module
once did) balances the answers, but then a scene of six objects answers "six" 35% of the time:
guessing each family's commonest answer *given the number of objects*
(:func:`object_count_rates`) scored 0.31 and 0.29 against priors of 0.14 (``count``,
``and_or_count``) and 0.32 against 0.17 (``count_relate``). Drawing the pair uniformly instead,
every answer possible with ``n`` objects is equally likely given ``n``, so the object count adds
nothing (0.18, 0.19 and 0.22 against priors of 0.18, 0.19 and 0.23, on 10,000 items per family
guessed from another 10,000), and the price is a tilt towards small counts: with 3–6 objects,
"zero" to "three" each take 4/22 = 0.18 of ``count`` and ``and_or_count`` (uniform: 1/7) and
"six" 1/22, and ``count_relate``'s "zero" to "two" take 4/18 = 0.22 (uniform: 1/6). Scenes of
these families hold more objects on average (``n`` drawn with weight ``n + 1``). The other
families' answers do not depend on the count, so ``n`` is uniform for them.

One exception to the balance is deliberate: in a CoGenT condition the words can rule answers
out ("what shape is the red object?" is a circle or a triangle in condition A, never a square),
as the world does.

Every answer is a word of :data:`ANSWERS`; every question is made of the words of
:func:`question_vocab`, fixed by the templates, so train and test share it and a reader's own
question can be encoded (:func:`encode_question`) or rejected with the word that is unknown.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import torch

from ...text import Vocab, tokenize
from ...validate import check_choice, check_int, check_type
from ..shapes.world import COLORS, RELATIONS, SHAPES, SIZES, STYLES, Scene, choose
from .families import ATTRIBUTE_WORDS, FAMILIES, TEMPLATES, draft, family_answers
from .planting import Context, candidates, pick
from .programs import NUMBER_WORDS, Node, UniquenessError, answer_word, execute
from .scenes import (
    DEFAULT_NUM_OBJECTS,
    allowed_pairs,
    check_num_objects,
    check_rng,
    make_scene,
    place,
    relations_of,
    scene_graph,
)

#: Every answer, in the order answer ids use.
ANSWERS = ("yes", "no") + NUMBER_WORDS + COLORS + SHAPES + SIZES
#: Question token ids are padded to this length (the longest template fills 14).
MAX_QUESTION_TOKENS = 20
_DRAFTS, _ATTEMPTS = 20, 30  # questions drawn per item, and scenes tried per question


@dataclass(frozen=True)
class Question:
    """A question: its family, its English text, its program and its answer word."""

    family: str
    text: str
    program: tuple[Node, ...]
    answer: str


def check_families(families) -> tuple[str, ...]:
    """``families`` (``None`` for all of :data:`~.families.FAMILIES`) as a checked tuple.

    Raises:
        TypeError: for a single string or a non-sequence.
        ValueError: for an empty selection or an unknown family.
    """
    if families is None:
        return FAMILIES
    check_type("families", families, (list, tuple, set, frozenset), "a list of family names")
    chosen = tuple(f for f in FAMILIES if f in families)  # canonical order: ids do not move
    for family in families:
        check_choice("family", family, FAMILIES)
    if not chosen:
        raise ValueError(f"families must name at least one of {FAMILIES}, got {families!r}")
    return chosen


def make_context(num_objects=DEFAULT_NUM_OBJECTS, condition: str | None = None) -> Context:
    """The checked object-count range and the allowed pairs of a CoGenT condition."""
    low, high = check_num_objects(num_objects)
    return Context(allowed_pairs(condition), low, high)


def generate(
    rng,
    families=None,
    num_objects=DEFAULT_NUM_OBJECTS,
    condition: str | None = None,
    style: str = "photo",
) -> tuple[Scene, dict, Question]:
    """One question and the scene it is about: ``(scene, scene_graph, question)``.

    Args:
        rng: anything with ``random()`` (``random.Random`` or a numpy ``Generator``); the
            result is a pure function of its draws.
        families: the families to choose from, uniformly (default: all).
        num_objects: an int or the ``(low, high)`` range of objects per scene (2..8).
        condition: ``None``, ``"A"`` or ``"B"``: the CoGenT colour–shape constraint.
        style: ``"photo"`` or ``"sketch"``.

    Raises:
        TypeError: if ``rng`` has no ``random()``, or ``families`` is not a list of names.
        ValueError: for an invalid argument, or a family that cannot be asked within
            ``num_objects`` (say, relations with too many objects to place).
    """
    check_rng(rng)
    check_choice("style", style, STYLES)
    return generate_from(rng, make_context(num_objects, condition), check_families(families), style)


def generate_from(rng, ctx: Context, families: tuple[str, ...], style: str):
    """:func:`generate` with arguments already checked (by :func:`make_context` and
    :func:`check_families`): what a dataset calls once per item."""
    family = choose(families, rng.random())
    for _ in range(_DRAFTS):
        question = draft(family, rng, ctx)
        # every (objects, answer) pair this question can have, equally likely: given the number
        # of objects, every answer it allows is equally likely (see the module docstring)
        pairs = [
            (n, answer)
            for n in range(ctx.low, ctx.high + 1)
            for answer in question.answers
            if question.least(answer) <= n
        ]
        if not pairs:
            continue
        n, answer = pick(rng, pairs)
        for _ in range(_ATTEMPTS):
            found = _attempt(rng, ctx, question, answer, n, style)
            if found is not None:
                return found
    raise ValueError(
        f"could not generate a {family!r} question with {ctx.low}..{ctx.high} objects "
        f"after {_DRAFTS} questions of {_ATTEMPTS} scenes each"
    )


def _attempt(rng, ctx: Context, question, answer: str, n: int, style: str):
    """One try at a scene of ``n`` objects where ``question``'s program answers ``answer``."""
    places = None
    if question.relational:  # relations need positions, so they come first; sizes with them
        large = rng.random()  # a share of large objects per try, so "all small" happens too
        sizes = [SIZES[rng.random() < large] for _ in range(n)]
        places = place(rng, sizes)
        if places is None:
            return None
        xs, ys = [p[0] for p in places], [p[1] for p in places]
        wants = question.plant(rng, answer, n, {"sizes": sizes, "relations": relations_of(xs, ys)})
    else:
        sizes = [None] * n
        wants = question.plant(rng, answer, n, None)
    if wants is None:
        return None
    triples = []
    for size, want in zip(sizes, wants):
        options = candidates(ctx.pairs, size, want)
        if not options:
            return None
        triples.append(choose(options, rng.random()))
    if places is None:
        places = place(rng, [t[0] for t in triples])
        if places is None:
            return None
    scene = make_scene(triples, places, style)
    graph = scene_graph(scene)
    try:
        value = execute(question.program, graph)
    except UniquenessError:
        return None
    if answer_word(value) != answer:  # the plant is exact; running the program proves it
        return None
    return scene, graph, Question(question.family, question.text, question.program, answer)


# ---------------------------------------------------------------- words
@lru_cache(maxsize=1)
def question_vocab() -> Vocab:
    """Every word a question can use, in a fixed order (the same for every split and seed)."""
    phrases = [re.sub(r"\{\w+\}", " ", t) for templates in TEMPLATES.values() for t in templates]
    phrases += [*SIZES, *COLORS, *SHAPES, *(s + "s" for s in SHAPES), "object", "objects"]
    phrases += list(RELATIONS)
    phrases += [*ATTRIBUTE_WORDS.values(), "a", "an"]
    words: list[str] = []
    for phrase in phrases:
        words += [w for w in tokenize(phrase) if w not in words]
    return Vocab(words)


def encode_question(text: str, max_len: int = MAX_QUESTION_TOKENS) -> torch.Tensor:
    """A question's token ids, padded with 0 to ``max_len``.

    Shapes:
        returns ``(max_len,)`` int64.

    Raises:
        TypeError: if ``text`` is not a string.
        ValueError: for an empty question, a word outside :func:`question_vocab` (named, so a
            reader can rephrase), or more than ``max_len`` words.
    """
    check_type("question", text, str)
    check_int("max_len", max_len)
    vocab = question_vocab()
    words = tokenize(text)
    if not words:
        raise ValueError(f"expected a question with at least one word, got {text!r}")
    unknown = [w for w in words if w not in vocab]
    if unknown:
        raise ValueError(
            f"unknown word {unknown[0]!r} in {text!r}: the questions use only these "
            f"{len(vocab) - 4} words: {' '.join(vocab.itos[4:])}"
        )
    if len(words) > max_len:
        raise ValueError(f"expected at most {max_len} words, got {len(words)} in {text!r}")
    ids = [vocab[w] for w in words]
    return torch.tensor(ids + [vocab.pad_id] * (max_len - len(ids)), dtype=torch.long)


# ---------------------------------------------------------------- what the answers give away
def answer_prior(items: Iterable) -> dict[str, dict[str, float]]:
    """Each family's answer distribution, most common answer first.

    Args:
        items: anything with ``.family`` and ``.answer`` (:class:`Question`, a dataset item).
    """
    counts: dict[str, Counter] = {}
    for item in items:
        counts.setdefault(item.family, Counter())[item.answer] += 1
    return {
        family: {a: c / sum(count.values()) for a, c in count.most_common()}
        for family, count in sorted(counts.items(), key=lambda kv: FAMILIES.index(kv[0]))
    }


def _nonempty(name: str, items: Iterable | None, default: list | None = None) -> list:
    items = default if items is None else list(items)
    if not items:
        raise ValueError(f"expected at least one item in {name}, got none")
    return items


def majority_rates(items: Iterable, reference: Iterable | None = None) -> dict:
    """How often the most common answer is right: what the dataset gives away for free.

    The guesses are the majorities of ``reference`` (the training items) when given, else of
    ``items`` themselves. The counting families sit above a uniform share by design (with 3–6
    objects "zero" takes 0.18 of ``count`` and ``and_or_count`` rather than 1/7, and 0.22 of
    ``count_relate`` rather than 1/6): the price of a number of objects that says nothing
    about the answer (see the module docstring and :func:`object_count_rates`).

    Returns:
        ``{"overall": ..., "per_family": ..., "families": {family: ...}}``: ``overall`` always
        gives the single most common answer; ``per_family`` gives each family's own (a model
        that reads the question can at least tell its family); ``families`` is that rate
        family by family.

    Raises:
        ValueError: if ``items`` or ``reference`` is empty.
    """
    items = _nonempty("items", items)
    reference = _nonempty("reference", reference, items)
    overall = Counter(r.answer for r in reference).most_common(1)[0][0]
    guess = {f: next(iter(prior)) for f, prior in answer_prior(reference).items()}
    right = Counter(i.family for i in items if guess.get(i.family) == i.answer)
    total = Counter(i.family for i in items)
    return {
        "overall": sum(i.answer == overall for i in items) / len(items),
        "per_family": sum(right.values()) / len(items),
        "families": {f: right[f] / total[f] for f in FAMILIES if f in total},
    }


def _num_objects(item) -> int:
    scene = getattr(item, "scene", None)
    if not isinstance(scene, Scene):
        raise TypeError(
            f"expected items with a .scene (ReasoningItem), got a {type(item).__name__}"
        )
    return len(scene.objects)


def object_count_rates(items: Iterable, reference: Iterable | None = None) -> dict:
    """How often each family's most common answer *for the number of objects in the scene* is
    right: what counting the objects gives away, to print beside :func:`majority_rates`.

    A model that can count the objects in an image (easy) but cannot read the question beyond
    its family would score this. Equal to the family's prior (give or take sampling noise) means
    the number of objects gives nothing away; above it, the scenes leak the answers.

    Args:
        items: items with ``.family``, ``.answer`` and ``.scene`` (:class:`ReasoningItem`).
        reference: the items whose majorities are the guesses (the training items); ``items``
            themselves when ``None``, which flatters the rate a little (each guess has seen
            its own answer). A number of objects the reference never had falls back to the
            family's majority.

    Returns:
        ``{"per_family": ..., "families": {family: ...}}``, as in :func:`majority_rates`.

    Raises:
        TypeError: for items without a scene.
        ValueError: if ``items`` or ``reference`` is empty.
    """
    items = _nonempty("items", items)
    reference = _nonempty("reference", reference, items)
    counts: dict[tuple[str, int], Counter] = {}
    for r in reference:
        counts.setdefault((r.family, _num_objects(r)), Counter())[r.answer] += 1
    fallback = {f: next(iter(prior)) for f, prior in answer_prior(reference).items()}
    guess = {key: count.most_common(1)[0][0] for key, count in counts.items()}
    right, total = Counter(), Counter()
    for i in items:
        total[i.family] += 1
        right[i.family] += (
            guess.get((i.family, _num_objects(i)), fallback.get(i.family)) == i.answer
        )
    return {
        "per_family": sum(right.values()) / len(items),
        "families": {f: right[f] / total[f] for f in FAMILIES if f in total},
    }


def answer_balance(items: Iterable, max_objects: int = DEFAULT_NUM_OBJECTS[1]) -> dict:
    """Per family, the most common answer's share against a uniform share.

    Returns:
        ``{family: {"answer", "share", "uniform", "ratio"}}``: ``uniform`` is one over the
        number of answers the family can give with ``max_objects`` objects
        (:func:`~.families.family_answers`); ``ratio`` is ``share / uniform`` (1 is perfect;
        the counting families sit near 1.3 by design, see the module docstring).
    """
    out = {}
    for family, prior in answer_prior(items).items():
        answer, share = next(iter(prior.items()))
        uniform = 1 / len(family_answers(family, max_objects))
        out[family] = {
            "answer": answer,
            "share": share,
            "uniform": uniform,
            "ratio": share / uniform,
        }
    return out
