"""Measuring the studio: round-trip agreement, retrieval against generation, and whether the
round-trip verdict agrees with an independent judge.

Prompts come from chapter 04's evaluation sets (:func:`~cmlib.data.shapes.prompt_text.
evaluation_prompts`): ``seen`` ("a red circle"), ``seen, full`` (with size and position),
``held-out`` (colour–shape pairs no model trained on) and ``paraphrase`` ("a crimson disc").
Each image gets one record; the summaries are fractions of records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..data.shapes import COLORS, POSITIONS, SHAPES, SIZES
from ..data.shapes.parse import Parsed
from ..data.shapes.prompt_text import EvalPrompt
from ..judge import AttributeJudge
from ..validate import check_int, check_tensor
from .pipeline import Studio, completions, model_text
from .verdict import round_trip_verdict

#: The prompt sets whose wording the studio understands (paraphrases it does not).
UNDERSTOOD_SETS = ("seen", "seen, full", "held-out")


@dataclass(frozen=True)
class Record:
    """One image's outcome.

    Attributes:
        prompt_set: which evaluation set the prompt is from.
        prompt: the prompt's text.
        source: ``"found"`` (the finder's top-1) or ``"drawn"``.
        caption: the describer's caption of the image.
        verdict_color_shape: the caption names the prompt's colour and shape.
        verdict_agrees: the caption agrees with everything the prompt says.
        judge_agrees: the judge sees everything the prompt says (colour, shape, and size and
            position where said); for found images, the image's true attributes do.
        gallery_has_answer: the gallery holds at least one image that shows all the prompt
            says (otherwise no finder can be right, and retrieval is scored without it).
    """

    prompt_set: str
    prompt: str
    source: str
    caption: str
    verdict_color_shape: bool
    verdict_agrees: bool
    judge_agrees: bool
    gallery_has_answer: bool = True


def prompt_scene(prompt: EvalPrompt) -> Parsed:
    """What an evaluation prompt asks for, as a scene (from its labels, not its words)."""
    _, color, shape, size, position = prompt
    return Parsed(((size, color, shape),), position=position)


def said_attributes(prompt: EvalPrompt) -> dict[str, int]:
    """The prompt's attributes as class ids, only those it says."""
    _, color, shape, size, position = prompt
    out = {"color": COLORS.index(color), "shape": SHAPES.index(shape)}
    if size is not None:
        out["size"] = SIZES.index(size)
    if position is not None:
        out["position"] = POSITIONS.index(position)
    return out


def matches(attrs: dict[str, torch.Tensor], prompt: EvalPrompt) -> torch.Tensor:
    """``(N,)`` bool: which images with attributes ``attrs`` show all that ``prompt`` says."""
    wanted = said_attributes(prompt)
    hits = [attrs[key] == value for key, value in wanted.items()]
    return torch.stack(hits).all(dim=0)


def _text_for(studio: Studio, prompt: EvalPrompt, prompt_set: str) -> str:
    # Paraphrases go to the models as typed; the others in the models' canonical words.
    return prompt[0] if prompt_set == "paraphrase" else model_text(prompt_scene(prompt))


def evaluate(
    studio: Studio,
    judge: AttributeJudge,
    prompt_sets: dict[str, Sequence[EvalPrompt]],
    num_drawn: int,
    seed: int = 0,
) -> list[Record]:
    """Find the top-1 and draw ``num_drawn`` images for every prompt; describe and judge each.

    Args:
        studio: the studio.
        judge: an attribute judge trained on real images, the independent referee.
        prompt_sets: ``{set name: prompts}``.
        num_drawn: images drawn per prompt.
        seed: the drawing seed.
    """
    check_int("num_drawn", num_drawn)
    if studio.gallery_attrs is None:
        raise ValueError("the studio needs its gallery's attributes (gallery_attrs) to be scored")
    gallery_attrs = studio.gallery_attrs
    records = []
    for prompt_set, prompts in prompt_sets.items():
        for k, prompt in enumerate(prompts):
            text = _text_for(studio, prompt, prompt_set)
            scene = prompt_scene(prompt)
            queries = [text] if prompt_set == "paraphrase" else completions(scene)
            _, _, index = studio.find(queries, 1)
            found_ok = matches({key: v[index] for key, v in gallery_attrs.items()}, prompt)
            answerable = bool(matches(gallery_attrs, prompt).any())
            drawn = studio.draw(text, num_drawn, seed=seed + k)
            drawn_ok = matches(judge.predict(drawn), prompt)
            images = torch.cat([studio.gallery[index], drawn])
            captions = studio.describe(images)
            judged = torch.cat([found_ok, drawn_ok]).tolist()
            for i, (caption, ok) in enumerate(zip(captions, judged)):
                verdict = round_trip_verdict(scene, caption)
                records.append(
                    Record(
                        prompt_set,
                        prompt[0],
                        "found" if i == 0 else "drawn",
                        caption,
                        verdict.matches["color_shape"],
                        verdict.agrees,
                        bool(ok),
                        answerable,
                    )
                )
    return records


def rate(records: Sequence[Record], field: str, **where: str) -> float:
    """The fraction of ``records`` (filtered by ``where``, e.g. ``source="drawn"``) whose boolean
    ``field`` holds; ``nan`` if none is left."""
    chosen = [r for r in records if all(getattr(r, k) == v for k, v in where.items())]
    if not chosen:
        return float("nan")
    return sum(bool(getattr(r, field)) for r in chosen) / len(chosen)


def verdict_judge_agreement(records: Sequence[Record], **where: str) -> float:
    """How often the round-trip verdict and the judge say the same (both yes or both no)."""
    chosen = [r for r in records if all(getattr(r, k) == v for k, v in where.items())]
    if not chosen:
        return float("nan")
    return sum(r.verdict_agrees == r.judge_agrees for r in chosen) / len(chosen)


def summary_table(records: Sequence[Record]) -> list[dict[str, float | str]]:
    """Per prompt set and source: judge fidelity, round-trip agreement and verdict–judge
    agreement, for a table."""
    rows = []
    for prompt_set in dict.fromkeys(r.prompt_set for r in records):
        for source in ("found", "drawn"):
            where = {"prompt_set": prompt_set, "source": source}
            rows.append(
                {
                    "prompt set": prompt_set,
                    "source": source,
                    "judge: right": rate(records, "judge_agrees", **where),
                    "round trip: colour+shape": rate(records, "verdict_color_shape", **where),
                    "round trip: all said": rate(records, "verdict_agrees", **where),
                    "verdict = judge": verdict_judge_agreement(records, **where),
                }
            )
    return rows


def verdict_reads(studio: Studio, images: torch.Tensor, attrs: dict[str, torch.Tensor]) -> float:
    """The round-trip verdict as a referee: the share of labelled ``images`` whose caption names
    their true colour and shape (the verdict a prompt of that colour and shape would get).

    Args:
        studio: the studio whose describer captions the images.
        images: ``(N, 3, 16, 16)`` images in [0, 1], e.g. true photos, perturbed or not.
        attrs: their labels, with ``color`` and ``shape`` ``(N,)`` class ids.
    """
    if not isinstance(studio, Studio):
        raise TypeError(f"studio must be a Studio, got {type(studio).__name__}")
    check_tensor("images", images, ("N", 3, 16, 16), floating=True)
    missing = {"color", "shape"} - set(attrs)
    if missing:
        raise ValueError(f"attrs lacks {sorted(missing)}")
    if len(attrs["color"]) != len(images) or len(attrs["shape"]) != len(images):
        raise ValueError(
            f"attrs must label every image: {len(images)} images, "
            f"{len(attrs['color'])} colours, {len(attrs['shape'])} shapes"
        )
    captions = studio.describe(images)
    right = 0
    for caption, color, shape in zip(captions, attrs["color"], attrs["shape"]):
        asked = Parsed(((None, COLORS[int(color)], SHAPES[int(shape)]),))
        right += round_trip_verdict(asked, caption).matches["color_shape"]
    return right / len(captions)
