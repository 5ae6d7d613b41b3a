"""The neuro-symbolic reasoner (as in NS-VQA): see the scene as a graph, parse the question into
a program, run the program on the graph.

Only perception is learned (:mod:`~cmlib.reasoning.perception`). The parser is exact on the
course's templated questions (:mod:`~cmlib.reasoning.parser`), and the executor is the one that
wrote the answers (:func:`~cmlib.data.reasoning.execute`). So every error this model makes is a
perception error, and it can be shown: the parsed scene graph, and the step of the program where
it went wrong.

* :class:`NeuroSymbolicReasoner` — ``answer(images, programs)`` for a test set,
  ``explain(image, question)`` for one question a reader typed;
* :data:`NO_ANSWER` — what it answers when the program cannot run on what it saw (a "the
  square" that it did not find, or found twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..backbone import GridTagger
from ..data.reasoning.programs import ProgramError, Step, answer_word, check_program, execute
from ..validate import check_number, check_tensor, check_type
from .parser import ParsedQuestion, parse_question
from .perception import parse_scenes
from .training import accuracy_by_family

#: The answer when the program fails on the parsed scene (never a right answer).
NO_ANSWER = "(no answer)"


@dataclass(frozen=True)
class Explanation:
    """One question answered in full: what was asked, seen, run and answered.

    Attributes:
        question: the parsed question (family, template, words, program).
        graph: the scene graph perception read from the image.
        steps: each program step's output (empty if the program failed at its first step).
        answer: the answer word, or :data:`NO_ANSWER`.
        error: why the program failed, or ``None``.
    """

    question: ParsedQuestion
    graph: dict
    steps: tuple[Step, ...]
    answer: str
    error: str | None


def run_program(program, graph: dict) -> tuple[str, tuple[Step, ...], str | None]:
    """Run ``program`` on ``graph``: ``(answer word, steps, error)``, never raising for what
    perception got wrong (no object where the question needs one, several where it needs one,
    a count above eight). An invalid program still raises, before anything runs."""
    program = check_program(program)
    try:
        value, steps = execute(program, graph, trace=True)
        return answer_word(value), tuple(steps), None
    except ProgramError as error:  # e.g. a UniquenessError: perception found 0 or 2 squares
        return NO_ANSWER, (), str(error)
    except ValueError as error:  # answer_word: a count beyond the answer words
        return NO_ANSWER, (), str(error)


class NeuroSymbolicReasoner:
    """Perception by a trained scene tagger, reasoning by the program executor.

    Args:
        tagger: a trained tagger from :func:`~cmlib.reasoning.perception.build_scene_tagger`.
        device: where the tagger runs.
        threshold: a cell holds an object when its mean background probability is below this.
    """

    def __init__(self, tagger: GridTagger, device: torch.device, threshold: float = 0.5):
        check_type("tagger", tagger, GridTagger)
        check_number("threshold", threshold, 0.0, 1.0, low_open=True, high_open=True)
        self.tagger, self.device, self.threshold = tagger, device, threshold

    def see(self, images: torch.Tensor) -> list[dict]:
        """The scene graph of each image ``(N, 3, S, S)``."""
        return parse_scenes(self.tagger, images, self.device, self.threshold)

    def answer(self, images: torch.Tensor, programs: Sequence) -> list[str]:
        """Each image's answer to its program: answer words, :data:`NO_ANSWER` where the program
        cannot run on what was seen."""
        check_tensor("images", images, ("N", 3, "S", "S"), floating=True, nonempty=True)
        if len(programs) != len(images):
            raise ValueError(
                f"need one program per image, got {len(programs)} programs and {len(images)} images"
            )
        return [run_program(p, g)[0] for p, g in zip(programs, self.see(images))]

    def score(self, images: torch.Tensor, items: Sequence) -> dict[str, float]:
        """Accuracy overall and per family (:func:`~cmlib.reasoning.training.accuracy_by_family`)
        of the answers to ``items``' programs (anything with ``.program``, ``.answer`` and
        ``.family``) on their ``images (N, 3, S, S)``."""
        items = list(items)
        answers = self.answer(images, [i.program for i in items])
        return accuracy_by_family(answers, [i.answer for i in items], [i.family for i in items])

    def explain(self, image: torch.Tensor, question: str) -> Explanation:
        """Answer one typed question about one image ``(3, S, S)``, showing every stage.

        Raises:
            TypeError, ValueError: for a question the parser cannot read (it names the unknown
                word, or lists templates that parse).
        """
        check_tensor("image", image, (3, "S", "S"), floating=True)
        parsed = parse_question(question)
        graph = self.see(image.unsqueeze(0))[0]
        answer, steps, error = run_program(parsed.program, graph)
        return Explanation(parsed, graph, steps, answer, error)
