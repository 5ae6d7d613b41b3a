"""Every registered exercise: the reference passes; the stub and each plausible mistake fail."""

import pytest

from cmlib.exercises import Exercise, all_exercises, check, get, register

EXERCISES = all_exercises()


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise")


def test_there_are_exercises():
    assert len(EXERCISES) >= 1 and EXERCISES[0].id == "0.1"


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.id)
def test_reference_passes(exercise, monkeypatch):
    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)
    assert check(exercise.id, exercise.reference, quiet=True)


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.id)
def test_stub_and_wrong_answers_fail(exercise, monkeypatch):
    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)
    assert exercise.wrong_answers, f"exercise {exercise.id} lists no plausible wrong answer"
    assert not check(exercise.id, stub if exercise.make_inputs else None, quiet=True)
    for wrong in exercise.wrong_answers:
        assert not check(exercise.id, wrong, quiet=True)


def test_messages_and_raise_mode(capsys, monkeypatch):
    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)
    ex = get("0.1")
    assert check("0.1", ex.reference)
    assert "passed" in capsys.readouterr().out
    assert not check("0.1", stub)
    out = capsys.readouterr().out
    assert "not attempted" in out and "Hint" in out
    monkeypatch.setenv("CMLIB_CHECKS_RAISE", "1")
    with pytest.raises(AssertionError, match="0.1"):
        check("0.1", stub, quiet=True)


def test_unknown_ids_and_duplicates():
    with pytest.raises(ValueError, match="unknown exercise"):
        get("99.9")
    with pytest.raises(ValueError, match="look like"):
        get("nope")
    with pytest.raises(ValueError, match="twice"):
        register(Exercise("0.1", "dup", "", reference=1))
