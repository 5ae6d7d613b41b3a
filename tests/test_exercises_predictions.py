"""The "predict, then run" questions added for issue #30 (4.6, 10.2): the chapter's question
offers the registered options, its solution is the registered answer, and the answer is
explained after the checkpoint that backs it."""

import re
from pathlib import Path

import pytest
from conftest import chapter_solution

from cmlib.exercises import check, get

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"

QUESTIONS = {  # id: (notebook, the asserted checkpoint the answer rests on)
    "4.6": ("04_prompt_generation_gan", 'checkpoint("cgan-seen"'),
    "9.2": ("09_optimisation", 'checkpoint("tau-one-below-best"'),
    "9.3": ("09_optimisation_negatives", 'checkpoint("larger-batch-at-equal-steps"'),
    "9.7": ("09_optimisation_gradients", 'checkpoint("accumulation-changes-clip-loss"'),
    "10.2": ("10_scaling_out", 'checkpoint("gather-loss-diff"'),
}


@pytest.fixture(autouse=True)
def _no_raising(monkeypatch):
    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)


@pytest.mark.parametrize("exercise_id", sorted(QUESTIONS))
def test_the_chapters_prediction_is_the_registered_answer(exercise_id):
    notebook, _ = QUESTIONS[exercise_id]
    prediction = chapter_solution(notebook, "### BEGIN SOLUTION", exercise_id, "prediction")
    assert prediction == get(exercise_id).reference
    assert check(exercise_id, prediction, quiet=True)
    for wrong in get(exercise_id).wrong_answers:
        assert not check(exercise_id, wrong, quiet=True)


@pytest.mark.parametrize("exercise_id", sorted(QUESTIONS))
def test_the_question_comes_before_and_its_answer_after_an_asserted_checkpoint(exercise_id):
    notebook, anchor = QUESTIONS[exercise_id]
    source = (CHAPTERS / f"{notebook}.py").read_text()
    asked = source.index(f"**Question {exercise_id} — predict, then run.**")
    checked = source.index(f'check("{exercise_id}", prediction)')
    backed = source.index(anchor)
    answered = source.index(f"The answer to question {exercise_id} is (")
    assert asked < checked < backed < answered
    call = source[backed : source.index(")\n", backed)]
    assert "asserted_in" not in call  # asserted in every profile, the cpu one included
    question = source[asked:checked]
    options = sorted([get(exercise_id).reference, *get(exercise_id).wrong_answers])
    assert re.findall(r"\(([a-z])\)", question) == options
    answer = source[answered : answered + 40]
    assert f"is ({get(exercise_id).reference})" in answer
