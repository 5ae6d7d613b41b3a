"""Training and scoring the reasoners: the course's one training convention, per family.

* :func:`train_reasoner` — cross-entropy on answers with :func:`cmlib.train.fit` (AdamW, the
  learning rate decaying linearly over the second half), on precomputed grids, scored every
  ``eval_every`` steps;
* :func:`predict_answers` — the answer ids of a model, batched (:func:`cmlib.train.predict`);
* :func:`accuracy_by_family` — accuracy overall and per question family, for any answers (a
  neural model's ids or the neuro-symbolic model's words);
* :func:`score_items` — a neural model's accuracy by family on items and their grids, in one
  call (the neuro-symbolic model's is
  :meth:`~cmlib.reasoning.symbolic.NeuroSymbolicReasoner.score`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..data.reasoning import ANSWERS, FAMILIES, encode_items
from ..train import History, endless_batches, fit, predict
from ..validate import check_int, check_number, check_same_length, check_tensor


def _check_data(grids: torch.Tensor, questions: torch.Tensor, answers: torch.Tensor) -> None:
    check_tensor("grids", grids, ("N", "C", "g", "g"), nonempty=True)
    check_tensor("questions", questions, ("N", "L"), floating=False)
    check_tensor("answers", answers, ("N",), floating=False)
    check_same_length(grids=grids, questions=questions, answers=answers)


class _Round:
    """``size`` batches from an endless stream, as one "epoch" of :func:`cmlib.train.fit`: each
    pass continues the stream where the last one stopped."""

    def __init__(self, stream, size: int):
        self.stream, self.size = stream, size

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        for _ in range(self.size):
            yield next(self.stream)


def train_reasoner(
    model: nn.Module,
    grids: torch.Tensor,
    questions: torch.Tensor,
    answers: torch.Tensor,
    num_steps: int,
    device: torch.device,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    seed: int = 0,
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    eval_every: int | None = None,
    progress: bool = True,
) -> History:
    """Train ``model(grid, questions) -> logits`` to answer, for ``num_steps`` batches.

    Args:
        model: a reasoner from :func:`~cmlib.reasoning.models.make_reasoner`; trained in place.
        grids: the frozen tagger's features ``(N, C, g, g)`` (float16 is fine: each batch is
            made float32 on the way in).
        questions: token ids ``(N, L)``.
        answers: answer ids ``(N,)`` into :data:`~cmlib.data.reasoning.ANSWERS`.
        num_steps: updates.
        device: where to train.
        batch_size: items per update.
        lr: AdamW's rate, constant for the first half, then linearly down to 0: the decay is
            what lets the last steps settle.
        weight_decay: AdamW's decoupled weight decay.
        seed: the batch order.
        eval_fn: ``eval_fn(model) -> metrics``, called in eval mode every ``eval_every`` steps.
        eval_every: steps between evaluations; must divide ``num_steps`` (``None``: only
            after the last step, if ``eval_fn`` is given).
        progress: show a tqdm bar.

    Returns:
        The :class:`~cmlib.train.History`: per-step ``loss``; one "epoch" per evaluation, whose
        ``metrics`` are ``eval_fn``'s.
    """
    _check_data(grids, questions, answers)
    check_int("num_steps", num_steps)
    check_int("batch_size", batch_size, 1, len(grids))
    check_number("lr", lr, 0.0, low_open=True)
    every = num_steps if eval_every is None else check_int("eval_every", eval_every, 1, num_steps)
    if num_steps % every:
        raise ValueError(f"eval_every must divide num_steps, got {every} and {num_steps}")
    optimizer = torch.optim.AdamW(model.parameters(), lr, weight_decay=weight_decay)
    half = num_steps // 2
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, max(0.0, (num_steps - step) / (num_steps - half)))
    )
    order = endless_batches(len(grids), batch_size, torch.Generator().manual_seed(seed))
    stream = ((grids[i].float(), questions[i], answers[i]) for i in order)
    return fit(
        model,
        _Round(stream, every),
        optimizer,
        num_steps // every,
        device,
        step_fn=lambda m, batch: F.cross_entropy(m(batch[0], batch[1]), batch[2]),
        eval_fn=eval_fn,
        scheduler=scheduler,
        progress=progress,
        desc="reasoner",
    )


def predict_answers(
    model: nn.Module, grids: torch.Tensor, questions: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """The model's answer ids ``(N,)``, in eval mode, batched."""
    check_tensor("grids", grids, ("N", "C", "g", "g"), nonempty=True)
    check_tensor("questions", questions, (len(grids), "L"), floating=False)
    model.eval().to(device)  # predict sets eval mode on a module; the lambda hides it
    return predict(lambda g, q: model(g.float(), q).argmax(dim=1), (grids, questions), device)


def accuracy_by_family(
    predicted: Sequence[str] | torch.Tensor,
    answers: Sequence[str] | torch.Tensor,
    families: Sequence[str] | torch.Tensor,
) -> dict[str, float]:
    """Accuracy overall (``"all"``) and per family, in :data:`FAMILIES` order.

    Args:
        predicted: answer ids ``(N,)`` or answer words.
        answers: the true answers, ids or words.
        families: each item's family, id ``(N,)`` into :data:`FAMILIES` or name.

    Returns:
        ``{"all": ..., family: ...}`` for the families present.
    """
    predicted, answers = _words(predicted, ANSWERS), _words(answers, ANSWERS)
    families = _words(families, FAMILIES)
    if not len(predicted) == len(answers) == len(families) or not predicted:
        raise ValueError(
            f"predicted, answers and families must be non-empty and as many, got "
            f"{len(predicted)}, {len(answers)} and {len(families)}"
        )
    right = [p == a for p, a in zip(predicted, answers)]
    out = {"all": sum(right) / len(right)}
    for family in FAMILIES:
        mine = [r for r, f in zip(right, families) if f == family]
        if mine:
            out[family] = sum(mine) / len(mine)
    return out


def score_items(
    model: nn.Module, grids: torch.Tensor, items: Sequence, device: torch.device
) -> dict[str, float]:
    """:func:`accuracy_by_family` of ``model``'s answers to ``items`` (anything with
    ``.question``, ``.answer`` and ``.family``), read from their ``grids (N, C, g, g)``."""
    questions, answers, families = encode_items(items)
    check_same_length(grids=grids, items=questions)
    return accuracy_by_family(predict_answers(model, grids, questions, device), answers, families)


def _words(values, names: Sequence[str]) -> list[str]:
    """Ids (a tensor or ints) → names; names are kept."""
    if isinstance(values, torch.Tensor):
        check_tensor("ids", values, ("N",), floating=False)
        return [names[i] for i in values.tolist()]
    return [v if isinstance(v, str) else names[v] for v in values]
