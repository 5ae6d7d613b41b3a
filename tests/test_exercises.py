"""Every registered exercise: the reference passes; the stub and each plausible mistake fail."""

import pytest
import torch

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


GRADIENT_CHECKED = [e for e in EXERCISES if e.gradients]


def test_the_build_exercises_check_gradients():
    assert {e.id for e in GRADIENT_CHECKED} >= {
        "1.2",
        "2.6",
        "3.4",
        "3.5",
        "3.8",
        "4.4",
        "6.10",
        "7.1",
        "7.7",
        "9.1",
        "10.1",
    }


@pytest.mark.parametrize("exercise", GRADIENT_CHECKED, ids=lambda e: e.id)
def test_a_gradient_checked_exercise_rejects_a_mistake_only_its_gradient_shows(
    exercise, monkeypatch
):
    """At least one listed mistake has the reference's value on every input and fails the
    check anyway: the gradient comparison is what catches it."""
    import numpy as np

    from cmlib.exercises import same

    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)
    rng = np.random.default_rng(0)
    inputs = [exercise.make_inputs(rng) for _ in range(4)]
    hidden = [
        wrong
        for wrong in exercise.wrong_answers
        if all(
            same(wrong(*a), exercise.reference(*a), exercise.atol, exercise.rtol) for a in inputs
        )
    ]
    assert hidden, f"exercise {exercise.id}: every mistake already shows in the values"
    for wrong in hidden:
        assert not check(exercise.id, wrong, quiet=True)


def test_use_if_passed_picks_the_readers_answer_only_when_it_passes(capsys, monkeypatch):
    from cmlib.exercises import use_if_passed

    monkeypatch.setenv("CMLIB_CHECKS_RAISE", "1")  # the choice never raises
    reference = get("0.1").reference
    assert use_if_passed("0.1", reference, stub, "the tour counts with") is reference
    assert (
        capsys.readouterr().out
        == f"the tour counts with your {reference.__name__} (exercise 0.1 passed)\n"
    )
    assert use_if_passed("0.1", stub, reference, "the tour counts with") is reference
    assert capsys.readouterr().out == (
        f"exercise 0.1 has not passed: the tour counts with cmlib's {reference.__name__}\n"
    )
    with pytest.raises(TypeError, match="role"):
        use_if_passed("0.1", reference, reference, "")
    with pytest.raises(TypeError, match="fallback"):
        use_if_passed("0.1", reference, "count", "the tour counts with")


def test_use_if_passed_checks_the_answer_on_the_chapters_device(capsys, monkeypatch):
    """An InfoNCE that builds its targets on the CPU (torch.arange(n), no device=) is right on
    the CPU and breaks training on a GPU: checked on the chapter's device, it is not used. The
    meta device (shapes, no values) stands in for the GPU here."""
    import torch.nn.functional as F

    from cmlib.exercises import use_if_passed

    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)

    def cpu_targets(image, text, logit_scale):
        logits = logit_scale * image @ text.T
        targets = torch.arange(len(image))  # on the CPU, whatever the features' device
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2

    reference = get("7.1").reference
    meta = torch.device("meta")
    assert check("7.1", cpu_targets, quiet=True)  # right on the CPU
    assert not check("7.1", cpu_targets, quiet=True, device=meta)
    assert check("7.1", reference, quiet=True, device=meta)
    capsys.readouterr()
    assert use_if_passed("7.1", cpu_targets, reference, "it trains with", device=meta) is reference
    assert capsys.readouterr().out == (
        f"exercise 7.1 has not passed on meta: it trains with cmlib's {reference.__name__}\n"
    )
    # on the CPU the device check is the plain one
    cpu = torch.device("cpu")
    assert use_if_passed("7.1", cpu_targets, reference, "it trains with", device=cpu) is cpu_targets
    with pytest.raises(TypeError, match="device"):
        use_if_passed("7.1", reference, reference, "it trains with", device="cuda")
    with pytest.raises(TypeError, match="device"):
        check("7.1", reference, device="cuda")


def test_a_prediction_accepts_the_ways_a_reader_writes_an_option(monkeypatch):
    from cmlib.exercises import register_prediction

    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)
    answer = get("7.6").reference
    for written in (answer, answer.upper(), f"({answer})", f" {answer.upper()} "):
        assert check("7.6", written, quiet=True), written
    assert not check("7.6", "d", quiet=True) and not check("7.6", 1, quiet=True)
    with pytest.raises(TypeError, match="options"):
        register_prediction("99.1", "q", ["a", "b"], "a")
    with pytest.raises(ValueError, match="two options"):
        register_prediction("99.1", "q", {"a": "yes"}, "a")
    with pytest.raises(ValueError, match="one of"):
        register_prediction("99.1", "q", {"a": "yes", "b": "no"}, "c")
    with pytest.raises(ValueError, match="function exercise"):
        register(Exercise("99.2", "t", "h", reference=1, gradients=True))
