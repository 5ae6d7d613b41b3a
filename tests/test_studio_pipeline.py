"""The studio's models by name, its pipeline, its evaluation, its app and its evidence tables.

Untrained (or tiny) models keep these fast; chapter 11 measures the trained studio.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import math

import pytest
import torch

from cmlib import judge as judge_module
from cmlib import runtime
from cmlib.cyclegan.training import CycleGAN
from cmlib.data.shapes import COLORS, SHAPES
from cmlib.data.shapes.parse import Parsed
from cmlib.shapes_retrieval import make_dual_encoder
from cmlib.studio import PromptNotUnderstood, evaluation, models, understand
from cmlib.studio.evidence import checkpoint_table, evidence, run_times
from cmlib.studio.pipeline import Studio, completions, model_text


@pytest.fixture(scope="module")
def studio():
    torch.manual_seed(0)
    gallery = torch.rand(12, 3, 16, 16)
    attrs = {
        "color": torch.arange(12) % 6,
        "shape": torch.arange(12) % 3,
        "size": torch.arange(12) % 2,
        "position": torch.arange(12) % 5,
    }
    parts = (make_dual_encoder(16, 16, 64), models.Drawer(), models.Describer(), CycleGAN())
    for part in parts:
        part.eval()
    return Studio(*parts, gallery=gallery, device=torch.device("cpu"), gallery_attrs=attrs)


# ---------------------------------------------------------------- understanding
def test_a_size_without_a_position_is_understood():
    scene = understand("draw a large green triangle").scene
    assert scene.objects == (("large", "green", "triangle"),) and scene.position is None


def test_the_studio_serves_one_shape_and_says_so(studio):
    with pytest.raises(PromptNotUnderstood, match="one shape at a time"):
        studio.understand("a red circle left of a blue square")
    for prompt, words in (("draw a cat", "no colour or shape"), ("", "empty")):
        with pytest.raises(PromptNotUnderstood, match=words):
            studio.serve(prompt)


def test_completions_fill_in_what_the_prompt_leaves_unsaid():
    assert len(completions(Parsed(((None, "red", "circle"),)))) == 2 * 5
    assert len(completions(Parsed((("small", "red", "circle"),)))) == 5
    full = Parsed((("small", "red", "circle"),), position="left")
    assert completions(full) == [model_text(full)] == ["a small red circle on the left"]


# ---------------------------------------------------------------- the pipeline
def test_find_returns_the_best_k_by_the_best_completion(studio):
    images, scores, index = studio.find(["a red circle", "a blue square on the left"], 4)
    assert images.shape == (4, 3, 16, 16) and torch.all(scores[:-1] >= scores[1:])
    single = [studio.find(t, 12)[1].max() for t in ("a red circle", "a blue square on the left")]
    assert torch.isclose(scores[0], max(single))
    assert torch.equal(images, studio.gallery[index])


def test_serve_shows_found_drawn_and_sketches_each_with_a_verdict(studio):
    answer = studio.serve("a small red circle on the left", k=2, n=3, seed=1)
    assert [len(answer.of_kind(k)) for k in ("found", "drawn", "sketch")] == [2, 3, 5]
    for item in answer.shown:
        assert item.image.shape == (3, 16, 16) and 0 <= item.image.min() <= item.image.max() <= 1
        assert isinstance(item.caption, str) and item.verdict.message()
        assert (item.score is not None) == (item.kind == "found")
    assert not studio.serve("a red circle", k=1, n=1, sketches=False).of_kind("sketch")


def test_drawing_is_reproducible_with_a_seed(studio):
    a, b = studio.draw("a red circle", 2, seed=3), studio.draw("a red circle", 2, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, studio.draw("a red circle", 2, seed=4))
    hotter = studio.draw("a red circle", 2, seed=3, temperature=1.0)
    assert hotter.shape == a.shape and not torch.equal(a, hotter)


def test_bad_scenes_and_images_get_clear_errors(studio):
    two = Parsed(((None, "red", "circle"), (None, "blue", "square")), relation="left of")
    with pytest.raises(ValueError, match="one object, got 2"):
        completions(two)
    with pytest.raises(TypeError, match="Parsed"):
        model_text("a red circle")
    with pytest.raises(ValueError, match="photos"):
        studio.translate(torch.rand(2, 3, 32, 32))


def test_a_gallery_of_the_wrong_shape_is_refused(studio):
    with pytest.raises(ValueError, match=r"\(N, 3, 16, 16\)"):
        studio.with_gallery(torch.rand(5, 3, 32, 32))


# ---------------------------------------------------------------- evaluation
def test_matches_checks_only_what_the_prompt_says():
    attrs = {
        "color": torch.tensor([0, 0]),
        "shape": torch.tensor([0, 0]),
        "size": torch.tensor([0, 1]),
        "position": torch.tensor([0, 1]),
    }
    assert evaluation.matches(attrs, ("a red circle", "red", "circle", None, None)).tolist() == [
        True,
        True,
    ]
    prompt = ("a small red circle on the left", "red", "circle", "small", "left")
    assert evaluation.matches(attrs, prompt).tolist() == [True, False]


def test_rates_and_the_verdict_judge_agreement():
    def record(source, verdict, judge):
        return evaluation.Record("seen", "p", source, "c", verdict, verdict, judge)

    records = [record("drawn", True, True), record("drawn", False, True), record("found", 1, 0)]
    assert evaluation.rate(records, "verdict_agrees", source="drawn") == 0.5
    assert evaluation.verdict_judge_agreement(records, source="drawn") == 0.5
    assert evaluation.verdict_judge_agreement(records, source="found") == 0.0
    assert math.isnan(evaluation.rate(records, "verdict_agrees", source="none"))


def test_evaluate_needs_the_gallery_labels(studio):
    judge = models.BUILDERS["judge"]({})
    with pytest.raises(ValueError, match="gallery_attrs"):
        evaluation.evaluate(studio.with_gallery(studio.gallery), judge, {}, 1)
    with pytest.raises(ValueError):
        evaluation.evaluate(studio, judge, {}, 0)


def test_evaluate_makes_one_record_per_image(studio):
    judge = models.BUILDERS["judge"]({}).eval()
    prompts = {"seen": [("a red circle", "red", "circle", None, None)]}
    records = evaluation.evaluate(studio, judge, prompts, num_drawn=3)
    assert [r.source for r in records] == ["found", "drawn", "drawn", "drawn"]
    rows = evaluation.summary_table(records)
    assert {(r["prompt set"], r["source"]) for r in rows} == {("seen", "found"), ("seen", "drawn")}
    assert all(r.gallery_has_answer for r in records)  # gallery item 0 is a red circle
    missing = {"seen": [("a red square", "red", "square", None, None)]}  # none in the gallery
    assert not any(r.gallery_has_answer for r in evaluation.evaluate(studio, judge, missing, 1))


# ---------------------------------------------------------------- models by name
def test_role_names_and_configs():
    assert models.registry_name("drawer", 3) == f"ch04-cvae-{runtime.profile()}-seed3"
    assert models.registry_name("finder", 0) == f"ch11-finder-{runtime.profile()}-seed0"
    config = models.role_config("judge", 0)
    assert "threads" not in config and config["image_size"] == 16  # the registry records it
    for bad in ("painter", ""):
        with pytest.raises(ValueError, match="role must be one of"):
            models.registry_name(bad, 0)


@pytest.fixture
def tiny_recipes(monkeypatch, tmp_path):
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CMLIB_PROFILE", "cpu")
    sizes = {"translator": {"num_per_domain": 16, "num_steps": 2, "batch_size": 4}}
    monkeypatch.setitem(models.SIZES, "cpu", {**models.SIZES["cpu"], **sizes})
    tiny_judge = {"width": 4, "num_train": 48, "num_heldout": 24, "num_kept": 8, "num_epochs": 1}
    monkeypatch.setattr(
        judge_module, "REFERENCE_CONFIG", {**judge_module.REFERENCE_CONFIG, **tiny_judge}
    )


def test_a_role_is_trained_once_then_loaded_and_a_corrupt_entry_is_rebuilt(
    tiny_recipes, monkeypatch, tmp_path
):
    """The judge without its shipped long run: the registry keeps the one trained in its place."""
    monkeypatch.setenv("CMLIB_MODELS_DIR", str(tmp_path / "no-models"))
    cpu = torch.device("cpu")
    _, status = models.load_role("judge", 0, cpu, progress=False)
    assert status.startswith("the long run is not usable") and status.endswith("trained: missing")
    _, status = models.load_role("judge", 0, cpu, progress=False)
    assert status.endswith("; loaded")
    path = models.registry.model_path(models.registry_name("judge", 0))
    path.write_bytes(path.read_bytes()[:100])  # a torn write
    _, status = models.load_role("judge", 0, cpu, progress=False)
    assert "trained: corrupt" in status
    judge_module.REFERENCE_CONFIG["num_epochs"] = 2
    _, status = models.load_role("judge", 0, cpu, progress=False)
    assert "trained: stale" in status


def test_a_chapter_saves_the_drawer_the_studio_then_loads(tiny_recipes):
    recipe = dict(models.SIZES["cpu"]["drawer"])
    drawer = models.Drawer.from_parts(models.Drawer().cvae, models.Drawer().text)
    with pytest.raises(ValueError, match="not the studio's recipe"):
        models.save_role("drawer", drawer, 0, {**recipe, "num_epochs": 1})
    with pytest.raises(ValueError, match="reference_judge"):
        models.save_role("judge", models.BUILDERS["judge"]({}), 0, {})
    entry = models.save_role("drawer", drawer, 0, recipe, metrics={"seen": 1.0})
    assert entry.name == "ch04-cvae-cpu-seed0" and entry.metrics == {"seen": 1.0}
    loaded, status = models.load_role("drawer", 0, torch.device("cpu"), progress=False)
    assert status == "loaded ch04-cvae-cpu-seed0"
    for (name, a), b in zip(drawer.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(TypeError, match="CVAE"):
        models.Drawer.from_parts(drawer.text, drawer.text)


def test_the_translator_is_chapter_six_shipped_long_run(tiny_recipes):
    from cmlib.longrun.recipes import get_recipe, load_long_run

    shipped = get_recipe(models.TRANSLATOR_RECIPE).seeds
    expected, _ = load_long_run(models.TRANSLATOR_RECIPE, shipped[0], torch.device("cpu"))
    for seed in (shipped[0], 99):  # 99 has no long run of its own: the first shipped seed's
        model, status = models.load_role("translator", seed, torch.device("cpu"), progress=False)
        assert status == f"loaded the long run ch06-cyclegan-seed{shipped[0]} (models/)"
        assert not model.training
        for (name, a), b in zip(expected.state_dict().items(), model.state_dict().values()):
            assert torch.equal(a, b), name


def test_the_translator_falls_back_to_its_own_compact_cyclegan(tiny_recipes, monkeypatch, tmp_path):
    monkeypatch.setenv("CMLIB_MODELS_DIR", str(tmp_path / "no-models"))  # models/ lost
    model, status = models.load_role("translator", 0, torch.device("cpu"), progress=False)
    assert "the long run is not usable" in status and "make models" in status
    assert "trained: missing" in status
    assert isinstance(model, CycleGAN) and not model.training


# ---------------------------------------------------------------- the app
def test_the_app_answers_a_prompt_and_shows_a_message_for_a_bad_one(studio, capsys):
    pytest.importorskip("ipywidgets")
    from cmlib.widgets.studio import studio_app

    app = studio_app(studio, prompt="a red circle", k=1, n=1, static=False)
    (box, button), message, picture, verdicts = app.children[0].children, *app.children[1:]
    assert picture.value and "studio-verdict" in verdicts.value and "studio-ok" in message.value
    for bad in ("draw a cat", ""):
        box.value = bad
        button.click()
        assert "studio-error" in message.value and "Traceback" not in message.value
        assert picture.value == b"" and verdicts.value == ""
    box.value = "a blue square"
    button.click()
    assert picture.value and "studio-ok" in message.value


def test_the_data_flow_figure_names_every_step():
    from cmlib.widgets.studio_flow import data_flow_figure

    fig = data_flow_figure()
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    for step in ("find", "draw", "describe", "translate", "verdict"):
        assert step in text


def test_the_question_flow_figure_shows_one_tagger_under_two_reasoners():
    from cmlib.widgets.studio_flow import QUESTION_ARROWS, question_flow_figure

    fig = question_flow_figure()
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    for part in ("scene tagger", "transformer", "program", "agree"):
        assert part in text
    assert {end for start, end in QUESTION_ARROWS if start == "tagger"} == {
        "transformer",
        "program",
    }
    labelled = [t for t in fig.axes[0].texts if t.get_text()]  # arrows are empty annotations
    assert len(labelled) == 7  # one box each


# ---------------------------------------------------------------- evidence
REPORT = """# Learning checkpoints over seeds

| notebook | checkpoint | claim | runs | min | mean | max | std | margin | fragile |
|---|---|---|---|---|---|---|---|---|---|
| 01_x | acc | >= 0.9 | 6 | 0.9100 | 0.9500 | 0.9900 | 0.0100 | +0.0100 | no |

## Runs

| notebook | seed | threads | exit | seconds |
|---|---|---|---|---|
| 01_x | 0 | default | 0 | 91 |
"""


def test_the_evidence_tables_are_read_from_the_seeds_report(tmp_path):
    path = tmp_path / "checkpoints.md"
    path.write_text(REPORT, encoding="utf-8")
    table = checkpoint_table(path)
    assert table.loc[0, "checkpoint"] == "acc" and table.loc[0, "mean"] == 0.95
    assert run_times(path).loc[0, "seconds"] == 91
    with pytest.raises(FileNotFoundError, match="make seeds"):
        checkpoint_table(tmp_path / "missing.md")
    (tmp_path / "other.md").write_text("| a | b |\n|---|---|\n| 1 | 2 |\n", encoding="utf-8")
    with pytest.raises(ValueError, match="checkpoint table"):
        checkpoint_table(tmp_path / "other.md")


def test_evidence_picks_named_checkpoints_and_names_one_the_table_lacks():
    rows = evidence("08_reasoning", ("question-only-at-prior",))
    assert list(rows["checkpoint"]) == ["question-only-at-prior"]
    assert list(rows.columns) == ["notebook", "checkpoint", "claim", "min", "mean", "max"]
    with pytest.raises(ValueError, match="no-such-claim"):
        evidence("06_", ("no-such-claim",))
    with pytest.raises(TypeError, match="tuple of names"):
        evidence("06_", "G-target-style")


def test_verdict_reads_counts_captions_that_name_the_true_colour_and_shape(studio, monkeypatch):
    images = torch.rand(3, 3, 16, 16)
    attrs = {  # a red circle, a blue square, a green triangle
        "color": torch.tensor([COLORS.index("red"), COLORS.index("blue"), COLORS.index("green")]),
        "shape": torch.tensor([SHAPES.index(s) for s in ("circle", "square", "triangle")]),
    }
    captions = ["a small red circle on the left", "a large blue circle at the top", "green"]
    monkeypatch.setattr(studio, "describe", lambda images: captions)
    assert evaluation.verdict_reads(studio, images, attrs) == pytest.approx(1 / 3)
    with pytest.raises(TypeError, match="Studio"):
        evaluation.verdict_reads(object(), images, attrs)
    with pytest.raises(ValueError, match="lacks"):
        evaluation.verdict_reads(studio, images, {"color": attrs["color"]})
    with pytest.raises(ValueError, match="label every image"):
        evaluation.verdict_reads(studio, images, {**attrs, "color": attrs["color"][:2]})
    with pytest.raises(ValueError):
        evaluation.verdict_reads(studio, torch.rand(3, 3, 8, 8), attrs)


# ---------------------------------------------------------------- the describer's data
def test_perturbed_copies_repeat_every_scene_with_content_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))  # the data cache of this test alone
    clean = models.studio_caption_data("train", 12, seed=3)
    data = models.studio_caption_data("train", 12, seed=3, perturbed_copies=2)
    assert len(data) == 36 and data.images.shape == (36, 3, 32, 32)
    assert torch.equal(data.images[:12], clean.images)  # the clean scenes come first
    for c in (1, 2):
        rows = slice(12 * c, 12 * (c + 1))
        assert data.scenes[rows] == clean.scenes and data.references[rows] == clean.references
        assert torch.equal(data.ids[rows], clean.ids)
        assert torch.equal(data.detailed_ids[rows], clean.detailed_ids)
        for name, labels in clean.cells.items():
            assert torch.equal(data.cells[name][rows], labels)
        # perturbed, but the picture survives: small pixel changes, not new images
        change = (data.images[rows] - clean.images).abs()
        assert change.max() > 0 and change.mean() < 0.1
    assert not torch.equal(data.images[12:24], data.images[24:])  # each copy draws its own
    again = models.studio_caption_data("train", 12, seed=3, perturbed_copies=2)
    assert torch.equal(again.images, data.images)  # and the draw follows from the seed
    for bad in (-1, 1.5):
        with pytest.raises((TypeError, ValueError), match="perturbed_copies"):
            models.studio_caption_data("train", 12, perturbed_copies=bad)
