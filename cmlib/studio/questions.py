"""The studio's question-answering role (视觉问答): ask about a scene of several objects, such as
"How many red shapes are left of the circle?", and get two answers that check each other.

The studio's other roles work in chapter 04's world of one shape on 16×16 pixels. A question
about how many things stand where needs chapter 08's world: scenes of 3–6 objects, 48×48
pixels. This role uses chapter 08's shipped long run ``ch08-reasoning`` (seed 0), loaded from
``models/`` in every profile and never trained here:

* its **scene tagger**, which turns the image into a grid of features;
* its **cross-attention transformer**, whose question tokens attend to those features;
* and, beside them, the **neuro-symbolic reasoner**, which parses the scene with the same tagger
  and runs the question's program on the scene graph (chapter 08 part 3).

Two reasoners of different kinds answer every question. Their agreement is this role's round
trip (the prompt role's is the caption read back): the studio states the answer when they
agree and shows both when they do not. Chapter 11 measures how far agreement can be trusted
(:func:`agreement`).

* :func:`read_question` — a reader's words to the course's question, or
  :class:`QuestionNotUnderstood`;
* :class:`QuestionAnswerer` — :meth:`~QuestionAnswerer.load`, :meth:`~QuestionAnswerer.ask` one
  question, :meth:`~QuestionAnswerer.answer` many.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..backbone import GridTagger, grid_features
from ..data.reasoning import ANSWERS, encode_question
from ..longrun.reasoning import split
from ..longrun.recipes import load_long_run
from ..reasoning.parser import ParsedQuestion, parse_question
from ..reasoning.symbolic import NO_ANSWER, NeuroSymbolicReasoner, run_program
from ..reasoning.training import predict_answers
from ..validate import check_choice, check_int, check_tensor, check_type

#: The shipped long run this role loads: chapter 08 part 2's tagger and transformer.
LONG_RUN, LONG_RUN_SEED = "ch08-reasoning", 0
#: Chapter 08's long runs that ship their own tagger beside the reasoner (the other reasoners
#: share ``ch08-reasoning``'s).
WITH_TAGGER = (LONG_RUN, "ch08-reasoning-generalisation")
#: Words a reader may use that the course's questions say otherwise ("color" is American).
SYNONYMS = {
    "shapes": "objects",
    "things": "objects",
    "thing": "object",
    "color": "colour",
}
#: The question the studio starts with (the one its issue asked for).
EXAMPLE_QUESTION = "How many red shapes are left of the circle?"


class QuestionNotUnderstood(ValueError):
    """A question the reasoners cannot read; the message names the word or lists templates."""


def read_question(text: str) -> ParsedQuestion:
    """The reader's question as the course's parser reads it, after :data:`SYNONYMS`.

    Raises:
        TypeError: if ``text`` is not a string.
        QuestionNotUnderstood: with the parser's message (the unknown word, or the templates).
    """
    check_type("question", text, str)
    words = re.sub(
        r"[A-Za-z]+", lambda m: SYNONYMS.get(m.group(0).lower(), m.group(0)), text.strip()
    )
    try:
        return parse_question(words)
    except ValueError as err:
        raise QuestionNotUnderstood(str(err)) from err


@dataclass(frozen=True)
class Reply:
    """Both reasoners' answers to one question about one scene.

    Attributes:
        question: the question as the reasoners read it (the template's words).
        family: its question family (``"count_relate"``, ...).
        transformer: the cross-attention transformer's answer.
        neuro_symbolic: the program's answer on the parsed scene, or :data:`NO_ANSWER`.
        steps: each program step, as text (empty if the program stopped at once).
        stopped: why the program stopped, or ``None``.
        graph: the scene graph the tagger parsed.
    """

    question: str
    family: str
    transformer: str
    neuro_symbolic: str
    steps: tuple[str, ...]
    stopped: str | None
    graph: dict

    @property
    def agree(self) -> bool:
        """Whether the two reasoners gave the same answer."""
        return self.transformer == self.neuro_symbolic

    @property
    def answer(self) -> str | None:
        """The studio's answer: the shared one when they agree, else ``None`` (unsure)."""
        return self.transformer if self.agree else None


class QuestionAnswerer:
    """Chapter 08's tagger, transformer and neuro-symbolic reasoner behind one question box.

    Args:
        tagger: the scene tagger (its encoder makes the transformer's grid features).
        transformer: a reasoner ``model(grids, questions) -> (B, len(ANSWERS))`` logits.
        device: where the models run.
        config: the long run's config (its ``image_size`` sizes :meth:`scenes`).
    """

    def __init__(
        self, tagger: GridTagger, transformer: nn.Module, device: torch.device, config: dict
    ):
        check_type("transformer", transformer, nn.Module)
        check_type("config", config, dict)
        self.neuro_symbolic = NeuroSymbolicReasoner(tagger, device)  # checks the tagger
        self.tagger, self.transformer = tagger, transformer.to(device).eval()
        self.device, self.config = device, config

    @classmethod
    def load(
        cls, device: torch.device, name: str = LONG_RUN, seed: int = LONG_RUN_SEED
    ) -> tuple[QuestionAnswerer, str]:
        """A shipped long run of chapter 08 (by default :data:`LONG_RUN`), on ``device``; and a
        status line saying so. ``name`` is one of :data:`WITH_TAGGER`:
        ``ch08-reasoning-generalisation`` is chapter 08 part 4's, trained on condition A.

        Raises:
            cmlib.longrun.LongRunError: if the file is missing or corrupt (it names the command
                that rebuilds it).
        """
        check_choice("name", name, WITH_TAGGER)
        bundle, manifest = load_long_run(name, seed, device)
        status = (
            f"loaded models/{name}-seed{seed} (chapter 08's shipped long run, "
            f"{manifest['steps']:,} steps)"
        )
        return cls(bundle["tagger"], bundle["reasoner"], device, manifest["config"]), status

    @property
    def image_size(self) -> int:
        return int(self.config["image_size"])

    def scenes(self, n: int, seed: int, **options):
        """``n`` test items of chapter 08 and their images ``(n, 3, S, S)``. ``options`` go to
        :func:`cmlib.longrun.reasoning.split`: ``num_objects=(7, 8)`` for more objects than
        training had, ``condition="B"`` for CoGenT's other colour–shape pairs, ``families=[...]``
        for some question families (default: 3–6 objects, every pair and family)."""
        check_int("n", n, minimum=1)
        check_int("seed", seed, minimum=0)
        return split(self.config, "test", n, seed, **options)  # chapter 08's own test sets

    def answerable(self, items: Sequence, question: str) -> list[int]:
        """The indices of ``items`` (chapter 08 items, with ``.graph``) whose true scene fits
        ``question``: its program runs there, so "the circle" names exactly one circle.

        Raises:
            QuestionNotUnderstood: for a question the parser cannot read.
        """
        program = read_question(question).program
        return [k for k, item in enumerate(items) if run_program(program, item.graph)[2] is None]

    @staticmethod
    def true_answer(item, question: str) -> str:
        """The answer to ``question`` on ``item``'s true scene graph (what a perfect perception
        would give), or :data:`NO_ANSWER` where the scene does not fit the question."""
        return run_program(read_question(question).program, item.graph)[0]

    @torch.no_grad()
    def ask(self, image: torch.Tensor, question: str) -> Reply:
        """Both answers to ``question`` about one scene ``image (3, S, S)``.

        Raises:
            TypeError, ValueError: for an image of the wrong shape or type.
            QuestionNotUnderstood: for a question the parser cannot read.
        """
        size = self.image_size
        check_tensor("image", image, (3, size, size), floating=True)
        parsed = read_question(question)
        graph = self.neuro_symbolic.see(image.unsqueeze(0))[0]
        said, steps, stopped = run_program(parsed.program, graph)
        grids = grid_features(self.tagger.encoder, image.unsqueeze(0), self.device)
        tokens = encode_question(parsed.text)[None]
        transformer = ANSWERS[predict_answers(self.transformer, grids, tokens, self.device)[0]]
        return Reply(
            parsed.text,
            parsed.family,
            transformer,
            said,
            tuple(str(s) for s in steps),
            stopped,
            graph,
        )

    @torch.no_grad()
    def answer(self, images: torch.Tensor, questions: Sequence[str]) -> tuple[list[str], list[str]]:
        """Both reasoners' answers to one question per image ``(N, 3, S, S)``:
        ``(transformer's answers, neuro-symbolic answers)``.

        Raises:
            ValueError: if the counts differ; QuestionNotUnderstood for a question it cannot
                read.
        """
        size = self.image_size
        check_tensor("images", images, ("N", 3, size, size), floating=True, nonempty=True)
        if len(questions) != len(images):
            raise ValueError(
                f"need one question per image, got {len(questions)} questions "
                f"and {len(images)} images"
            )
        parsed = [read_question(q) for q in questions]
        grids = grid_features(self.tagger.encoder, images, self.device)
        tokens = torch.stack([encode_question(p.text) for p in parsed])
        ids = predict_answers(self.transformer, grids, tokens, self.device).tolist()
        symbolic = self.neuro_symbolic.answer(images, [p.program for p in parsed])
        return [ANSWERS[k] for k in ids], symbolic


def agreement(
    transformer: Sequence[str], neuro_symbolic: Sequence[str], truth: Sequence[str]
) -> dict[str, float]:
    """How far the two reasoners' agreement can be trusted, over one set of questions.

    Returns:
        ``transformer`` and ``neuro-symbolic``: each one's accuracy; ``agree``: the share of
        questions where they agree; ``right when they agree``: the accuracy of the shared
        answer; ``errors flagged``: the share of the transformer's wrong answers on which the
        two disagree (a wrong answer the studio would not state); ``neuro-symbolic right when
        they disagree``. A share over no question is ``nan``.

    Raises:
        ValueError: if the three lists differ in length or are empty.
    """
    n = len(truth)
    if n == 0 or len(transformer) != n or len(neuro_symbolic) != n:
        raise ValueError(
            "need three non-empty lists of equal length, got "
            f"{len(transformer)}, {len(neuro_symbolic)} and {n}"
        )
    rows = list(zip(transformer, neuro_symbolic, truth))

    def share(hits, among) -> float:
        among = list(among)
        return sum(hits(r) for r in among) / len(among) if among else float("nan")

    agreed = [r for r in rows if r[0] == r[1]]
    differ = [r for r in rows if r[0] != r[1]]
    return {
        "transformer": share(lambda r: r[0] == r[2], rows),
        "neuro-symbolic": share(lambda r: r[1] == r[2], rows),
        "agree": len(agreed) / n,
        "right when they agree": share(lambda r: r[0] == r[2], agreed),
        "errors flagged": share(lambda r: r[0] != r[1], [r for r in rows if r[0] != r[2]]),
        "neuro-symbolic right when they disagree": share(lambda r: r[1] == r[2], differ),
    }


__all__ = [
    "EXAMPLE_QUESTION",
    "LONG_RUN",
    "NO_ANSWER",
    "QuestionAnswerer",
    "QuestionNotUnderstood",
    "Reply",
    "agreement",
    "read_question",
]
