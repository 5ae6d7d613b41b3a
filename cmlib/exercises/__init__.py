"""Exercises: a registry of reference solutions and the :func:`check` that grades answers.

In a chapter's ``.py`` the solution sits between nbgrader's markers::

    def relu(x):
        ### BEGIN SOLUTION
        return x.clamp(min=0)
        ### END SOLUTION

    check("0.1", relu)

``make student`` replaces each marked block with
``raise NotImplementedError("Exercise 0.1")``. :func:`check` calls the answer
on fresh random inputs, compares it with the reference, prints a clear pass
or fail with a hint and returns ``True``/``False``. With
``CMLIB_CHECKS_RAISE=1`` (set by ``make test``) a failed check raises, so an
instructor notebook whose solution is wrong fails CI.

Each chapter registers its exercises in ``cmlib/exercises/chNN.py``; the
part of the id before the dot is the chapter number.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class Exercise:
    """One exercise.

    Attributes:
        id: ``"N.M"`` — chapter N, exercise M.
        title: what the reader writes.
        hint: shown when an answer fails.
        reference: the reference solution (a function, or a plain value).
        make_inputs: ``rng -> tuple of arguments`` for a function exercise; ``None`` for a value.
        wrong_answers: plausible mistakes the checker must reject (tests use them).
        cases: hand-picked argument tuples tried before the random ones, so that the
            edge cases that catch common mistakes are always covered.
        trials: how many fresh random inputs a function answer is tried on.
        atol: absolute tolerance for numeric comparisons.
        rtol: relative tolerance for numeric comparisons (a value passes within
            ``atol + rtol * |reference|``, element by element).
        gradients: also compare gradients: the answer's and the reference's outputs are
            weighted by the same random numbers and summed, and autograd's gradients of that sum
            with respect to every floating-point tensor argument must match too. This catches
            a forgotten (or a stray) ``detach``, which leaves the value unchanged.
        gradient_outputs: with ``gradients``, the positions of the returned tuple that take
            part (``(0,)``: the loss only, so that values returned for logging may be
            detached); ``None`` for every floating-point output.
        gradient_inputs: with ``gradients``, the positions of the arguments whose gradients
            are compared (``None``: every floating-point tensor argument). An argument the
            answer may detach or not, as it likes, is left out: real images under R1's penalty.
        normalize: for a value exercise, applied to the answer before it is compared (a
            prediction accepts ``"C"`` or ``"(c)"`` for ``"c"``).
    """

    id: str
    title: str
    hint: str
    reference: Any
    make_inputs: Callable[[np.random.Generator], tuple] | None = None
    wrong_answers: Sequence[Any] = field(default_factory=tuple)
    cases: Sequence[tuple] = field(default_factory=tuple)
    trials: int = 5
    atol: float = 1e-5
    rtol: float = 1e-4
    gradients: bool = False
    gradient_outputs: tuple[int, ...] | None = None
    gradient_inputs: tuple[int, ...] | None = None
    normalize: Callable[[Any], Any] | None = None


REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (ids must be unique).

    Raises:
        ValueError: for an id registered twice, or gradients asked of a value exercise.
    """
    if exercise.gradients and exercise.make_inputs is None:
        raise ValueError(f"exercise {exercise.id}: gradients need a function exercise")
    if exercise.id in REGISTRY:
        raise ValueError(f"exercise {exercise.id} is registered twice")
    REGISTRY[exercise.id] = exercise
    return exercise


def get(exercise_id: str) -> Exercise:
    """The registered exercise ``"N.M"``, importing its chapter module on demand."""
    if not isinstance(exercise_id, str) or "." not in exercise_id:
        raise ValueError(f"exercise ids look like '1.2', got {exercise_id!r}")
    chapter = exercise_id.split(".")[0]
    if exercise_id not in REGISTRY:
        try:
            importlib.import_module(f"{__name__}.ch{int(chapter):02d}")
        except (ModuleNotFoundError, ValueError):
            pass
    if exercise_id not in REGISTRY:
        raise ValueError(f"unknown exercise {exercise_id!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[exercise_id]


def all_exercises() -> list[Exercise]:
    """Every exercise of every chapter module, in id order."""
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("ch"):
            importlib.import_module(f"{__name__}.{info.name}")
    return [REGISTRY[k] for k in sorted(REGISTRY, key=lambda s: tuple(map(int, s.split("."))))]


def same(a: Any, b: Any, atol: float, rtol: float = 1e-4) -> bool:
    """Loose equality for answers: tensors, arrays, numbers, sequences, dicts."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        if a.device != b.device:  # e.g. an answer that returns a CPU tensor for GPU inputs
            return False
        if a.is_meta:  # shapes without values (the tests' stand-in for a GPU)
            return a.shape == b.shape
        a, b = a.detach().cpu().double(), b.detach().cpu().double()  # to the CPU first (MPS)
        return a.shape == b.shape and torch.allclose(a, b, atol=atol, rtol=rtol)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and np.allclose(a, b, atol=atol, rtol=rtol)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], atol, rtol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, atol, rtol) for x, y in zip(a, b))
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        return bool(abs(float(a) - float(b)) <= atol + rtol * abs(float(b)))
    return a == b


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors in an output: the output itself, or those in a tuple, list or dict."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _with_grad(args: tuple) -> tuple[tuple, list[int]]:
    """Fresh leaf copies of the floating-point tensor arguments that require grad, and their
    positions; other arguments are passed as they are."""
    copied, positions = [], []
    for i, arg in enumerate(args):
        if isinstance(arg, torch.Tensor) and arg.is_floating_point():
            arg = arg.detach().clone().requires_grad_(True)
            positions.append(i)
        copied.append(arg)
    return tuple(copied), positions


def _gradient_problem(ex: Exercise, answer: Callable, args: tuple, seed: int) -> str | None:
    """``None`` if the answer's gradients match the reference's on ``args``, else what differs."""
    grads = []
    for fn in (ex.reference, answer):
        inputs, positions = _with_grad(args)
        returned = fn(*inputs)
        if ex.gradient_outputs is not None and isinstance(returned, (tuple, list)):
            returned = [returned[i] for i in ex.gradient_outputs]
        outputs = [t for t in _tensors(returned) if t.is_floating_point()]
        weights = torch.Generator().manual_seed(seed)
        # drawn in float64 and cast: the same weights whatever the output's dtype or device
        total = sum(
            (out * torch.randn(out.shape, generator=weights, dtype=torch.float64).to(out)).sum()
            for out in outputs
        )
        if not isinstance(total, torch.Tensor) or not total.requires_grad:
            return "no gradient flows back from its output to its inputs (a stray detach?)"
        if ex.gradient_inputs is not None:
            positions = [i for i in positions if i in ex.gradient_inputs]
        leaves = [inputs[i] for i in positions]
        grads.append(torch.autograd.grad(total, leaves, allow_unused=True))
    try:
        params = list(inspect.signature(ex.reference).parameters)
    except (TypeError, ValueError):  # a builtin or a wrapped callable: no names to give
        params = []
    compared = [
        i for i in _with_grad(args)[1] if ex.gradient_inputs is None or i in ex.gradient_inputs
    ]
    names = [params[i] if i < len(params) else f"argument {i + 1}" for i in compared]
    for name, want, got in zip(names, *grads):
        if want is None and got is None:
            continue
        if want is None or got is None or not same(got, want, ex.atol, ex.rtol):
            return (
                f"its value is right but its gradient with respect to {name} is not "
                "(a forgotten or a stray detach?)"
            )
    return None


def _on(value: Any, device: torch.device) -> Any:
    """``value`` with every tensor in it (also inside tuples, lists and dicts) on ``device``; a
    module (a layer handed to the answer) is copied there."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, torch.nn.Module):
        return copy.deepcopy(value).to(device)
    if isinstance(value, dict):
        return {k: _on(v, device) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
        return type(value)(*(_on(v, device) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_on(v, device) for v in value)
    return value


def _verdict(ex: Exercise, answer: Any, device: torch.device | None = None) -> str | None:
    """``None`` if ``answer`` is right (with its tensor arguments on ``device``, if given), else
    what went wrong."""
    if ex.make_inputs is None:
        if callable(answer):
            return "expected a value, got a function"
        value = ex.normalize(answer) if ex.normalize is not None else answer
        return None if same(value, ex.reference, ex.atol, ex.rtol) else f"{answer!r} is not right"
    if not callable(answer):
        return f"expected a function, got {type(answer).__name__}"
    rng = np.random.default_rng()  # fresh inputs every time: no answer can be memorised
    trials = list(ex.cases) + [ex.make_inputs(rng) for _ in range(ex.trials)]
    if device is not None:
        # a chapter that trains on a GPU hands the answer GPU tensors: a tensor it makes on the
        # CPU itself (torch.arange(n) without device=) must fail here, not in the training loop
        trials = [_on(args, device) for args in trials]
    for args in trials:
        expected = ex.reference(*args)
        try:
            got = answer(*args)
        except NotImplementedError:
            return "not attempted yet (the function still raises NotImplementedError)"
        except Exception as err:  # the reader's code: report, don't crash the notebook
            return f"it raised {type(err).__name__}: {err}"
        if len(_tensors(got)) < len(_tensors(expected)):
            return (
                "it returned a number or an array where cmlib returns a tensor: return the "
                "tensor (no .item() or .numpy()), so that training can backpropagate through it"
            )
        if not same(got, expected, ex.atol, ex.rtol):
            shape = getattr(got, "shape", None)
            detail = (
                f" (shape {tuple(shape)} vs {tuple(expected.shape)})"
                if shape is not None and hasattr(expected, "shape")
                else ""
            )
            return f"its output differs from the reference on a random input{detail}"
        if ex.gradients:
            try:
                problem = _gradient_problem(ex, answer, args, int(rng.integers(2**31)))
            except NotImplementedError:
                return "its backward pass is not written yet (it raises NotImplementedError)"
            except Exception as err:  # the reader's code again
                return f"it raised {type(err).__name__} while its gradients were computed: {err}"
            if problem is not None:
                return problem
    return None


def check(
    exercise_id: str,
    answer: Any,
    quiet: bool = False,
    raise_on_failure: bool | None = None,
    device: torch.device | None = None,
) -> bool:
    """Grade ``answer`` for exercise ``exercise_id``; print the result and return it.

    Args:
        exercise_id: ``"N.M"``.
        answer: the reader's function (or value).
        quiet: print nothing.
        raise_on_failure: raise on a wrong answer; ``None`` follows ``CMLIB_CHECKS_RAISE=1``.
        device: try the answer with its tensor arguments on this device (the one the chapter
            trains on); ``None``: where the exercise makes them, the CPU. Its outputs must be
            on the same device as the reference's. On the ``meta`` device (shapes without
            values, which the tests use to stand in for a GPU) only shapes and devices are
            compared.

    Raises:
        AssertionError: on a wrong answer when asked to (see ``raise_on_failure``).
        TypeError: if ``device`` is not a ``torch.device``.
    """
    if device is not None and not isinstance(device, torch.device):
        raise TypeError(f"device must be a torch.device or None, got {type(device).__name__}")
    ex = get(exercise_id)
    problem = _verdict(ex, answer, device)
    if not quiet:
        if problem is None:
            print(f"✅ Exercise {ex.id} ({ex.title}): passed.")
        else:
            print(f"❌ Exercise {ex.id} ({ex.title}): {problem}.\n   Hint: {ex.hint}")
    if raise_on_failure is None:
        raise_on_failure = os.environ.get("CMLIB_CHECKS_RAISE") == "1"
    if problem is not None and raise_on_failure:
        raise AssertionError(f"Exercise {ex.id} failed: {problem}")
    return problem is None


def use_if_passed(
    exercise_id: str, answer: Any, fallback: Any, role: str, device: torch.device | None = None
) -> Any:
    """The reader's ``answer`` where exercise ``exercise_id`` passes, else cmlib's ``fallback``.

    A build exercise's next cell trains with whichever this returns, so the chapter runs to the
    end either way; it prints which one, e.g. ``the digit CVAE trains with your negative_elbo
    (exercise 4.4 passed)``. The check here never raises, even under ``CMLIB_CHECKS_RAISE=1``
    (the exercise's own cell does that).

    Args:
        exercise_id: ``"N.M"``.
        answer: the reader's function.
        fallback: cmlib's function for the same job.
        role: what it is for, as the start of a sentence: ``"the digit CVAE trains with"``.
        device: where the chapter will run it. The check is made there too (on a GPU, an
            answer that builds a CPU tensor passes on the CPU and would break training).

    Raises:
        TypeError: if ``role`` is not a string, ``fallback`` is not callable or ``device`` is
            not a ``torch.device``.
    """
    if not isinstance(role, str) or not role:
        raise TypeError(f"role must be a non-empty string, got {role!r}")
    if not callable(fallback):
        raise TypeError(f"fallback must be a function, got {type(fallback).__name__}")
    if device is not None and not isinstance(device, torch.device):
        raise TypeError(f"device must be a torch.device or None, got {type(device).__name__}")
    on_cpu = check(exercise_id, answer, quiet=True, raise_on_failure=False)
    here = device is None or device.type == "cpu"
    if on_cpu and (here or check(exercise_id, answer, True, False, device)):
        print(f"{role} your {_name(answer)} (exercise {exercise_id} passed)")
        return answer
    where = f" on {device}" if on_cpu else ""
    print(f"exercise {exercise_id} has not passed{where}: {role} cmlib's {_name(fallback)}")
    return fallback


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def register_prediction(
    exercise_id: str, question: str, options: dict[str, str], answer: str
) -> Exercise:
    """Register a "predict, then run" question: the reader picks an option *before* the cell
    that answers it runs, and the chapter explains the answer from the printed values after.

    Args:
        exercise_id: ``"N.M"``.
        question: what is asked, in a few words (the exercise's title).
        options: the choices, ``{"a": "near a coin (below 0.70)", ...}``.
        answer: the key of the right option; the other keys are the wrong answers.

    Raises:
        ValueError: if ``answer`` is not one of ``options`` or there are fewer than two.
    """
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise TypeError(f"options must be a dict of letters to texts, got {type(options).__name__}")
    if len(options) < 2:
        raise ValueError(f"a prediction needs at least two options, got {len(options)}")
    if answer not in options:
        raise ValueError(f"answer must be one of {sorted(options)}, got {answer!r}")
    listed = "; ".join(f"{key}) {text}" for key, text in options.items())
    return register(
        Exercise(
            id=exercise_id,
            title=f"predict: {question}",
            hint=f"answer with one of {', '.join(repr(k) for k in options)}: {listed}; then "
            "run the next cells and see why",
            reference=answer,
            wrong_answers=tuple(key for key in options if key != answer),
            normalize=_option_letter,
        )
    )


def _option_letter(answer: Any) -> Any:
    """``" (C) "`` → ``"c"``: how a reader may write an option; anything else is left as it is."""
    return answer.strip().strip("()").strip().lower() if isinstance(answer, str) else answer
