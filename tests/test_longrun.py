"""Long-run models: the safetensors store, its manifest, the recipes, and drift."""

from __future__ import annotations

import copy
import dataclasses
import json
import random

import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn

from cmlib import judge as judge_module
from cmlib.judge import AttributeJudge
from cmlib.longrun import cgan, cyclegan, recipes, referees, store, token_prior
from cmlib.longrun import judge as longrun_judge

CPU = torch.device("cpu")


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CMLIB_MODELS_DIR", str(tmp_path))
    return tmp_path


def _manifest(**changes):
    base = {
        "recipe": "tiny",
        "seed": 0,
        "config": {"width": 3},
        "code_version": "abc",
        "torch": torch.__version__,
        "profile": "cpu",
        "device": "cpu",
        "threads": 1,
        "wall_seconds": 1.5,
        "steps": 10,
        "metrics": {"score": 0.5},
        "curve": {"step": [5, 10], "score": [0.4, 0.5]},
    }
    return {**base, **changes}


def test_round_trip_is_exact_and_records_the_file(models_dir):
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    model[1].running_mean.fill_(0.25)
    store.save_long_run("tiny-seed0", model, _manifest())
    assert (models_dir / "tiny-seed0.safetensors").exists()
    fresh = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    manifest = store.load_long_run("tiny", 0, fresh)
    for (k, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), k
    assert manifest["format"] == store.FORMAT
    assert manifest["tensors"]["bytes"] == (models_dir / "tiny-seed0.safetensors").stat().st_size
    assert manifest["curve"]["step"] == [5, 10]
    # the weights file holds tensors only: no pickle
    assert not (models_dir / "tiny-seed0.safetensors").read_bytes().startswith(b"\x80")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seed": "0"}, "'seed' must be int"),
        ({"seed": True}, "'seed' must be int"),
        ({"metrics": {"score": float("nan")}}, "finite number"),
        ({"curve": {"step": [1], "score": [float("inf")]}}, "finite numbers only"),
        ({"curve": {"step": [1, 2], "score": [0.1]}}, "lists of one length"),
        ({"curve": {"score": [0.1]}}, "'step' list"),
        ({"wall_seconds": None}, "'wall_seconds' must be int or float"),
    ],
)
def test_manifest_schema_names_what_is_wrong(models_dir, changes, message):
    with pytest.raises(ValueError, match=message):
        store.save_long_run("tiny-seed0", nn.Linear(2, 2), _manifest(**changes))
    assert not (models_dir / "tiny-seed0.json").exists()


def test_half_stores_float16_and_loads_back_what_was_rounded(models_dir):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    model[1].running_mean.normal_()
    before = copy.deepcopy(model)
    assert store.round_to_half(model) is model
    for (key, a), b in zip(model.state_dict().items(), before.state_dict().values()):
        assert a.dtype == b.dtype, key  # still float32 (and the step counter still an int)
        assert torch.equal(a, b.half().float() if b.is_floating_point() else b), key
    assert not torch.equal(model[0].weight, before[0].weight)
    store.save_long_run("tiny-seed0", model, _manifest(), half=True)
    full_size = len(store.serialise("tiny-seed0", model, _manifest())[0])
    stored = safetensors.torch.load_file(models_dir / "tiny-seed0.safetensors")
    assert stored["0.weight"].dtype == torch.float16
    assert stored["1.num_batches_tracked"].dtype == torch.int64
    assert (models_dir / "tiny-seed0.safetensors").stat().st_size < full_size
    fresh = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    store.load_long_run("tiny", 0, fresh)
    for (key, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert b.dtype == a.dtype and torch.equal(a, b), key
    with pytest.raises(TypeError, match="nn.Module"):
        store.round_to_half({"weight": torch.ones(1)})
    with pytest.raises(TypeError, match="half"):
        store.serialise("tiny-seed0", model, _manifest(), half="yes")
    with torch.no_grad():
        model[0].weight[0, 0] = 1e5  # beyond float16's range: it would come back infinite
    with pytest.raises(ValueError, match="float16's range"):
        store.serialise("tiny-seed0", model, _manifest(), half=True)
    with pytest.raises(ValueError, match="0.weight"):
        store.round_to_half(model)


def test_the_store_fills_in_its_own_keys_and_writes_plain_json(models_dir):
    with pytest.raises(ValueError, match="filled in here"):
        store.save_long_run("tiny-seed0", nn.Linear(2, 2), _manifest(name="other"))
    with pytest.raises(ValueError, match="not plain JSON"):
        store.save_long_run("tiny-seed0", nn.Linear(2, 2), _manifest(config={"f": object()}))
    assert list(models_dir.iterdir()) == []  # nothing written by a failed save


def test_a_missing_key_is_named():
    manifest = {
        "format": store.FORMAT,
        "name": "x",
        **_manifest(),
        "tensors": {"sha256": "", "bytes": 0},
    }
    del manifest["steps"]
    with pytest.raises(ValueError, match="missing key 'steps'"):
        store.validate_manifest(manifest)


def test_every_broken_file_names_the_command_that_rebuilds_it(models_dir):
    fix = 'make models NAMES="tiny" SEEDS="0"'
    with pytest.raises(store.LongRunError, match="is missing") as err:
        store.load_long_run("tiny", 0, nn.Linear(2, 2))
    assert fix in str(err.value)
    store.save_long_run("tiny-seed0", nn.Linear(2, 2), _manifest())
    # a model that does not fit today's code
    with pytest.raises(store.LongRunError, match="does not fit today's code") as err:
        store.load_long_run("tiny", 0, nn.Linear(2, 3))
    assert fix in str(err.value)
    # a truncated weights file
    weights = models_dir / "tiny-seed0.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])
    with pytest.raises(store.LongRunError, match="checksum") as err:
        store.load_long_run("tiny", 0, nn.Linear(2, 2))
    assert fix in str(err.value)
    # files copied from seed 0 to seed 1: the manifest still names seed 0
    (models_dir / "tiny-seed1.safetensors").write_bytes(weights.read_bytes())
    (models_dir / "tiny-seed1.json").write_text((models_dir / "tiny-seed0.json").read_text())
    with pytest.raises(store.LongRunError, match="describes recipe 'tiny', seed 0"):
        store.load_long_run("tiny", 1, nn.Linear(2, 2))
    # a manifest that is not JSON
    (models_dir / "tiny-seed0.json").write_text("{not json")
    with pytest.raises(store.LongRunError, match="unreadable") as err:
        store.read_manifest("tiny", 0)
    assert fix in str(err.value)
    # a manifest that is JSON but not one
    (models_dir / "tiny-seed0.json").write_text(json.dumps({"format": store.FORMAT}))
    with pytest.raises(store.LongRunError, match="missing key"):
        store.read_manifest("tiny", 0)


def test_an_unknown_recipe_lists_the_known_ones():
    with pytest.raises(ValueError, match="ch04-cgan"):
        recipes.get_recipe("no-such-recipe")


TINY_CGAN = {
    **cgan.CONFIG,
    "num_train": 96,
    "steps": 4,
    "eval_every": 2,
    "samples_per_prompt": 2,
    "batch_size": 8,
}


@pytest.fixture
def tiny_cgan(monkeypatch, models_dir):
    """The cGAN recipe on tiny data, with an untrained referee instead of the reference judge."""
    monkeypatch.setattr(
        cgan,
        "reference_judge",
        lambda device, seed, progress=True: (
            AttributeJudge(16, 4).eval(),
            "untrained",
        ),
    )
    tiny = dataclasses.replace(cgan.RECIPE, config=TINY_CGAN)
    monkeypatch.setattr(recipes, "recipes", lambda: {tiny.name: tiny})
    return tiny


def test_cgan_recipe_trains_ships_and_loads_back(tiny_cgan):
    before = torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    model, manifest = recipes.run_recipe("ch04-cgan", 0, CPU, progress=False)
    assert torch.equal(before[0], torch.random.get_rng_state()), "torch's random state changed"
    assert (before[1] == np.random.get_state()[1]).all(), "NumPy's random state changed"
    assert before[2] == random.getstate(), "Python's random state changed"
    assert manifest["steps"] == 4 and manifest["curve"]["step"] == [2, 4]
    assert set(manifest["metrics"]) == {"seen", "held-out", "diversity"}
    assert manifest["curve"]["seen"][-1] == pytest.approx(manifest["metrics"]["seen"])
    # with composed prompts, the curve also records what D's heads see in the held-out samples
    heads = manifest["curve"]["held-out, D's heads"]
    assert len(heads) == 2 and all(0 <= v <= 1 for v in heads)
    loaded, again = recipes.load_long_run("ch04-cgan", 0, CPU)
    assert again == manifest
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a.cpu(), b), k
    assert cgan.evaluate(loaded, again["config"], 0, CPU) == pytest.approx(manifest["metrics"])


def test_the_cgan_ablations_change_chapter_04s_recipe_one_thing_at_a_time():
    known = recipes.recipes()
    names = [r.name for r in cgan.ABLATIONS]
    assert set(names) <= set(known) and len(set(names)) == len(names)
    for recipe in cgan.ABLATIONS:
        keys, known_keys = set(recipe.config), set(cgan.CHAPTER_04) | set(cgan.HELD_OUT)
        assert set(cgan.CHAPTER_04) <= keys <= known_keys, recipe.name
        assert recipe.config["steps"] == cgan.CHAPTER_04["steps"], recipe.name
        assert recipe.scored_by == ("ch04-judge",) and recipe.half and recipe.seeds == (0,)
    changed = {
        r.name: {k for k in r.config if r.config[k] != cgan.CHAPTER_04.get(k)}
        for r in cgan.ABLATIONS
    }
    assert changed["ch09-cgan-chapter04"] == set()
    for name, key in (
        ("ttur", "d_lr"),
        ("spectral", "d_norm"),
        ("r1", "r1_weight"),
        ("mode-seeking", "mode_seeking"),
    ):
        assert changed[f"ch09-cgan-{name}"] == {key}
    assert changed["ch09-cgan-repaired"] == set(cgan.REPAIR)
    assert changed["ch09-cgan-repair-no-ema"] == set(cgan.REPAIR) | {"ema_decay"}
    # the shipped recipe is the repair, taught the held-out pairs by doubting heads; the last
    # ablation is the same with heads that trust G
    assert cgan.CONFIG == {**known["ch09-cgan-repaired"].config, **cgan.HELD_OUT}
    assert known["ch09-cgan-composed"].config == {**cgan.CONFIG, "doubt_weight": 0.0}
    with pytest.raises(ValueError, match="unknown config keys"):
        cgan.ablation("typo", "a misspelt key", mode_seekin=0.05)


def test_same_seed_same_model(tiny_cgan):
    first, _ = recipes.run_recipe("ch04-cgan", 1, CPU, save=False, progress=False)
    torch.manual_seed(123)  # the caller's state must not matter
    second, _ = recipes.run_recipe("ch04-cgan", 1, CPU, save=False, progress=False)
    for (k, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), k


TINY_REFEREES = {
    **referees.REFEREE_CONFIG,
    "num_scenes": 64,
    "num_heldout": 520,
    "judge_width": 4,
    "judge_epochs": 1,
    "style_images": 32,
    "style_epochs": 1,
}
TINY_CYCLEGAN = {
    **cyclegan.CYCLEGAN_CONFIG,
    "num_steps": 4,
    "batch_size": 4,
    "num_per_domain": 16,
    "eval_every": 2,
    "width": 4,
    "num_blocks": 1,
}

TINY_NO_CYCLE = {**TINY_CYCLEGAN, "cycles": (), "cycle_noise": 0.0}


@pytest.fixture
def tiny_cyclegan(monkeypatch, models_dir):
    """Chapter 06's referees, CycleGAN and no-cycle ablation on tiny data, in a models folder of
    their own."""
    tiny = {
        r.name: dataclasses.replace(r, config=c)
        for r, c in (
            (referees.REFEREES, TINY_REFEREES),
            (cyclegan.CYCLEGAN, TINY_CYCLEGAN),
            (cyclegan.NO_CYCLE, TINY_NO_CYCLE),
        )
    }
    monkeypatch.setattr(recipes, "recipes", lambda: tiny)
    return tiny


def test_cyclegan_recipe_needs_the_referees_and_names_the_command(tiny_cyclegan):
    with pytest.raises(store.LongRunError, match='make models NAMES="ch06-referees" SEEDS="0"'):
        recipes.run_recipe("ch06-cyclegan", 0, CPU, save=False, progress=False)


def test_cyclegan_recipes_train_ship_and_load_back(tiny_cyclegan):
    _, ref_manifest = recipes.run_recipe("ch06-referees", 0, CPU, progress=False)
    for style in ("photo", "sketch"):
        keys = (
            "clean",
            "noise",
            "blur",
            "shift",
            f"reads_{'sketch' if style == 'photo' else 'photo'}",
        )
        for key in keys:
            assert 0.0 <= ref_manifest["metrics"][f"{style}_{key}"] <= 1.0
    assert ref_manifest["steps"] == 2 * -(-(64 + 520 - 500) // 64)
    model, manifest = recipes.run_recipe("ch06-cyclegan", 0, CPU, progress=False)
    assert manifest["steps"] == 4 and manifest["curve"]["step"] == [2, 4]
    metrics = manifest["metrics"]
    for direction in ("G", "F"):
        for key in ("mae", "ssim", "preserved", "target_style", "joint"):
            assert f"{direction}_{key}" in metrics and f"identity_{direction}_{key}" in metrics
            assert manifest["curve"][f"{direction}_{key}"][-1] == pytest.approx(
                metrics[f"{direction}_{key}"]
            )
    # the identity map's error is the distance between the styles, whatever the model
    photos, sketches, _ = cyclegan.photo_sketch_pairs("test", cyclegan.NUM_TEST, 16)
    assert metrics["identity_G_mae"] == pytest.approx((photos - sketches).abs().mean().item())
    loaded, again = recipes.load_long_run("ch06-cyclegan", 0, CPU)
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a.cpu(), b), k
    assert cyclegan.evaluate_cyclegan(loaded, again["config"], 0, CPU) == pytest.approx(metrics)


def test_an_ablation_ships_g_and_f_trained_as_the_full_recipe_would(tiny_cyclegan, monkeypatch):
    recipes.run_recipe("ch06-referees", 0, CPU, progress=False)
    full, _ = recipes.run_recipe("ch06-cyclegan", 1, CPU, progress=False)
    # an "ablation" that changes nothing trains G and F to the very same weights: same initial
    # weights, same discriminators, same batches
    same = dataclasses.replace(tiny_cyclegan["ch06-cyclegan-no-cycle"], config=TINY_CYCLEGAN)
    monkeypatch.setitem(tiny_cyclegan, "ch06-cyclegan-no-cycle", same)
    model, _ = recipes.run_recipe("ch06-cyclegan-no-cycle", 1, CPU, save=False, progress=False)
    assert set(model.state_dict()) == {k for k in full.state_dict() if k[:2] in ("g.", "f.")}
    rounded = store.round_to_half(copy.deepcopy(full)).state_dict()  # ablations ship float16
    for key, value in model.state_dict().items():
        assert torch.equal(value, rounded[key]), key
    # the real ablation: no cycle term in its losses, shipped and loaded back as G and F alone
    monkeypatch.setitem(
        tiny_cyclegan, "ch06-cyclegan-no-cycle", dataclasses.replace(same, config=TINY_NO_CYCLE)
    )
    model, manifest = recipes.run_recipe("ch06-cyclegan-no-cycle", 1, CPU, progress=False)
    assert manifest["config"]["cycles"] == [] and "G_preserved" in manifest["metrics"]
    loaded, again = recipes.load_long_run("ch06-cyclegan-no-cycle", 1, CPU)
    assert not torch.equal(loaded.g.stem[1].weight, full.g.stem[1].weight)
    for key, value in model.state_dict().items():  # the scored weights are the shipped ones
        assert torch.equal(loaded.state_dict()[key], value.cpu()), key
    assert again["tensors"]["bytes"] < 0.6 * store.paths("ch06-cyclegan-seed1")[0].stat().st_size
    assert cyclegan.evaluate_cyclegan(loaded, again["config"], 1, CPU) == manifest["metrics"]


def test_an_ablation_names_the_fields_it_may_change():
    with pytest.raises(ValueError, match="CycleGANConfig fields"):
        cyclegan.ablation("x", "y", cycle=())
    with pytest.raises(ValueError, match="CycleGANConfig fields"):
        cyclegan.ablation("x", "y")
    with pytest.raises(ValueError, match="CycleGANConfig fields"):  # other initial weights
        cyclegan.ablation("x", "y", width=8)
    with pytest.raises(ValueError, match="lr"):  # checked now, not half an hour later
        cyclegan.ablation("x", "y", lr=-1.0)
    with pytest.raises(TypeError, match="name"):
        cyclegan.ablation(None, "y", cycles=())
    assert cyclegan.NO_CYCLE.config["cycles"] == () and cyclegan.NO_CYCLE.config["cycle_noise"] == 0
    forced = ("cycles", "cycle_noise")  # no cycle, and so no noise on the way back
    rest = {k: v for k, v in cyclegan.NO_CYCLE.config.items() if k not in forced}
    assert rest == {k: v for k, v in cyclegan.CYCLEGAN_CONFIG.items() if k not in forced}


def test_cyclegan_recipe_config_round_trips_through_json():
    config = json.loads(json.dumps(cyclegan.CYCLEGAN_CONFIG))
    assert cyclegan.cyclegan_config(config) == cyclegan.cyclegan_config(cyclegan.CYCLEGAN_CONFIG)
    assert cyclegan.cyclegan_config(config).num_steps == cyclegan.CYCLEGAN_CONFIG["num_steps"]


def test_the_shipped_files_are_the_recipes_seeds():
    """Every manifest in models/ belongs to a recipe's shipped seed, and every shipped seed has
    its files (a recipe whose seeds list a model that is not there fails here)."""
    on_disk = {p.stem for p in store.models_dir().glob("*.json")}
    shipped = {store.model_name(r.name, s) for r in recipes.recipes().values() for s in r.seeds}
    assert on_disk == shipped


#: What models/ may hold in all: the long runs are committed to the repository, and a clone must
#: stay small (models/README.md).
MODELS_BUDGET_BYTES = 25_000_000


def test_the_shipped_models_fit_the_budget():
    files = [p for p in store.models_dir().iterdir() if p.suffix in (".safetensors", ".json")]
    total = sum(p.stat().st_size for p in files)
    largest = sorted(files, key=lambda p: p.stat().st_size)[-3:]
    assert total <= MODELS_BUDGET_BYTES, (
        f"models/ holds {total:,} bytes, over the {MODELS_BUDGET_BYTES:,} allowed; the largest: "
        + ", ".join(f"{p.name} {p.stat().st_size:,}" for p in largest)
        + " (a recipe with half=True stores float16: recipes.ship_in_half)"
    )


def _shipped():
    out = []
    for recipe in recipes.recipes().values():
        for seed in recipe.seeds:
            out.append((recipe.name, seed))
    return out


@pytest.mark.parametrize(("name", "seed"), _shipped())
def test_shipped_model_has_not_drifted(name, seed):
    """Each shipped model loads strictly into today's code and scores what its manifest says,
    within 0.01, on its recipe's evaluation, or on its fingerprint (a fixed subset of the test
    split) where the recipe has one. A change to the model or its evaluation fails here until
    `make models` is run again."""
    model, manifest = recipes.load_long_run(name, seed, CPU)
    recipe_config = json.loads(json.dumps(recipes.get_recipe(name).config))  # tuples as lists
    assert manifest["config"] == recipe_config, (
        f"the recipe's config changed since {name} seed {seed} was shipped; run "
        f"`{store.rebuild_command(name, seed)}`"
    )
    recipe = recipes.get_recipe(name)
    score = recipe.fingerprint or recipe.evaluate
    metrics = score(model, manifest["config"], seed, CPU)
    scorers = "".join(
        f" (it is scored by {other}: if that was trained again, this one's scores moved with it)"
        for other in recipe.scored_by
    )
    missing = set(metrics) - set(manifest["metrics"])
    assert metrics and not missing, (
        f"{name} seed {seed}: its manifest lacks {sorted(missing)}; score them with "
        f"cmlib.longrun.recipes.add_fingerprint({name!r}, {seed}, device) or run "
        f"`{store.rebuild_command(name, seed)}`"
    )
    for key, value in manifest["metrics"].items():
        if key not in metrics:  # the fingerprint scores a subset of the metrics
            continue
        assert metrics[key] == pytest.approx(value, abs=0.01), (
            f"{name} seed {seed}: {key} is {metrics[key]:.4f} today, {value:.4f} in its manifest; "
            f"run `{store.rebuild_command(name, seed)}`{scorers}"
        )


def test_every_recipe_that_is_scored_by_another_names_a_known_one():
    known = recipes.recipes()
    for recipe in known.values():
        assert set(recipe.scored_by) <= set(known) - {recipe.name}, recipe.name
    assert known["ch06-cyclegan"].scored_by == ("ch06-referees",)


def test_the_curve_comes_from_the_histories_evaluations():
    from cmlib.longrun.base import curve_from_history
    from cmlib.train import History

    history = History()
    history.log_step({"loss": 1.0})
    history.log_step({"eval_step": 2, "eval_score": 0.5})
    assert curve_from_history(history) == {"step": [2], "score": [0.5]}
    with pytest.raises(ValueError, match="no evaluations"):
        curve_from_history(History())


TINY_TOKEN_PRIOR = {
    **token_prior.CONFIG,
    "num_train": 64,
    "num_codes": 16,
    "patch": 4,
    "channels": 8,
    "depth": 2,
    "num_epochs": 2,
    "eval_epochs": [1, 2],
    "eval_samples_per_prompt": 1,
    "samples_per_prompt": 1,
}


@pytest.fixture
def tiny_token_prior(monkeypatch, models_dir):
    """Chapter 05's token-model recipe on tiny data, read by a small untrained judge (the recipe's
    own, ``ch04-judge``, is not in the test's empty models folder)."""
    torch.manual_seed(0)
    judge = AttributeJudge(16, 4).eval()

    def referee(model, seed):
        return judge.to(next(model.parameters()).device)

    monkeypatch.setattr(token_prior, "_referee", referee)
    # stored in float32, as the recipe first shipped: the tests below halve it
    tiny = dataclasses.replace(token_prior.RECIPE, config=TINY_TOKEN_PRIOR, half=False)
    monkeypatch.setattr(recipes, "recipes", lambda: {tiny.name: tiny})
    return tiny


def test_token_prior_is_read_by_the_reference_judge_of_its_seed(monkeypatch):
    judge, calls = AttributeJudge(16, 4), []

    def reference_judge(device, seed, progress=True):
        calls.append((device, seed, progress))
        return judge, "loaded"

    monkeypatch.setattr(token_prior, "reference_judge", reference_judge)
    bundle = token_prior.build(TINY_TOKEN_PRIOR)
    assert set(bundle) == {"codebook", "prior", "text"}  # no referee of its own
    assert token_prior._referee(bundle, 3) is judge
    assert calls == [(torch.device("cpu"), 3, False)]
    assert token_prior.RECIPE.scored_by == ("ch04-judge",)


def test_token_prior_recipe_trains_ships_and_loads_back(tiny_token_prior):
    before = torch.random.get_rng_state()
    model, manifest = recipes.run_recipe("ch05-token-prior", 0, CPU, progress=False)
    assert torch.equal(before, torch.random.get_rng_state()), "torch's random state changed"
    assert manifest["steps"] == 2 and manifest["curve"]["step"] == [1, 2]  # one batch an epoch
    assert {"seen color+shape", "held-out color+shape", "ceiling"} <= set(manifest["metrics"])
    loaded, again = recipes.load_long_run("ch05-token-prior", 0, CPU)
    assert again == manifest
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a.cpu(), b), k
    assert loaded["codebook"].centres.abs().sum() > 0  # the fitted codebook, not the placeholder
    metrics = token_prior.evaluate(loaded, again["config"], 0, CPU)
    assert metrics == pytest.approx(manifest["metrics"])
    images = token_prior.generator_of(loaded, again["config"]).sample_images(
        loaded["text"](["a red circle"])
    )
    assert images.shape == (1, 3, 16, 16)
    fingerprint = {"test nll", "first seen prompts color+shape", "ceiling"}
    assert fingerprint <= set(manifest["metrics"])


def test_a_fingerprint_added_after_shipping_changes_only_the_metrics(tiny_token_prior, monkeypatch):
    def use(recipe):
        monkeypatch.setattr(recipes, "recipes", lambda: {recipe.name: recipe})

    without = dataclasses.replace(tiny_token_prior, fingerprint=None)
    use(dataclasses.replace(without, evaluate=lambda m, c, s, d: {"seen color+shape": 0.5}))
    trained, shipped = recipes.run_recipe("ch05-token-prior", 0, CPU, progress=False)
    assert set(shipped["metrics"]) == {"seen color+shape"}  # shipped without a fingerprint
    use(tiny_token_prior)
    added = recipes.add_fingerprint("ch05-token-prior", 0, CPU)
    fingerprint = {"test nll", "first seen prompts color+shape", "ceiling"}
    assert set(added["metrics"]) == {"seen color+shape"} | fingerprint
    same = {k: v for k, v in added.items() if k not in ("metrics", "tensors")}
    assert same == {k: v for k, v in shipped.items() if k not in ("metrics", "tensors")}
    # the same weights (safetensors orders its header by a hash map, so the checksum moves)
    assert added["tensors"]["bytes"] == shipped["tensors"]["bytes"]
    loaded, _ = recipes.load_long_run("ch05-token-prior", 0, CPU)
    for (k, a), (_, b) in zip(trained.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="on the CPU"):
        recipes.add_fingerprint("ch05-token-prior", 0, torch.device("meta"))
    # shipped in float32: a recipe that now stores float16 cannot just add its fingerprint
    use(dataclasses.replace(tiny_token_prior, half=True))
    with pytest.raises(ValueError, match="float16"):
        recipes.add_fingerprint("ch05-token-prior", 0, CPU)
    use(tiny_token_prior)
    with pytest.raises(ValueError, match="seed"):
        recipes.add_fingerprint("ch05-token-prior", -1, CPU)
    manifest_path = store.paths(store.model_name("ch05-token-prior", 0))[1]
    edited = json.loads(manifest_path.read_text())
    edited["metrics"]["test nll"] += 1.0  # a manifest that disagrees with today's scores
    store.save_long_run(
        edited["name"],
        loaded,
        {k: v for k, v in edited.items() if k not in ("format", "name", "tensors")},
    )
    with pytest.raises(ValueError, match="disagrees"):
        recipes.add_fingerprint("ch05-token-prior", 0, CPU)
    use(without)
    with pytest.raises(ValueError, match="no fingerprint"):
        recipes.add_fingerprint("ch05-token-prior", 0, CPU)


def test_a_float32_model_shipped_again_in_half_is_what_a_half_run_would_ship(
    tiny_token_prior, monkeypatch
):
    def use(recipe):
        monkeypatch.setattr(recipes, "recipes", lambda: {recipe.name: recipe})

    trained, shipped = recipes.run_recipe("ch05-token-prior", 0, CPU, progress=False)
    with pytest.raises(ValueError, match="float32"):
        recipes.ship_in_half("ch05-token-prior", 0, CPU)
    use(dataclasses.replace(tiny_token_prior, half=True))
    with pytest.raises(ValueError, match="on the CPU"):
        recipes.ship_in_half("ch05-token-prior", 0, torch.device("meta"))
    halved = recipes.ship_in_half("ch05-token-prior", 0, CPU)
    same = {k: v for k, v in halved.items() if k not in ("metrics", "tensors")}
    assert same == {k: v for k, v in shipped.items() if k not in ("metrics", "tensors")}
    assert halved["tensors"]["bytes"] < 0.6 * shipped["tensors"]["bytes"]
    # the weights a half run would have scored and stored, and their scores
    store.round_to_half(trained)
    loaded, _ = recipes.load_long_run("ch05-token-prior", 0, CPU)
    for (k, a), (_, b) in zip(trained.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    with recipes.own_random_state(0):
        rescored = tiny_token_prior.evaluate(loaded, halved["config"], 0, CPU)
    assert halved["metrics"] == pytest.approx(rescored)
    # now stored as the half recipe stores it: its fingerprint can be checked
    assert recipes.add_fingerprint("ch05-token-prior", 0, CPU)["metrics"] == pytest.approx(
        halved["metrics"]
    )


TINY_JUDGE = {
    **judge_module.REFERENCE_CONFIG,
    "width": 4,
    "num_train": 48,
    "num_heldout": 24,
    "num_kept": 8,
    "num_epochs": 1,
}


@pytest.fixture
def tiny_judge(monkeypatch, models_dir, tmp_path):
    """Chapter 04's reference-judge recipe on tiny data, shipped into an empty models/."""
    monkeypatch.setattr(judge_module, "REFERENCE_CONFIG", TINY_JUDGE)
    monkeypatch.setenv("CMLIB_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("CMLIB_PROFILE", "cpu")
    tiny = dataclasses.replace(longrun_judge.RECIPE, config=TINY_JUDGE)
    monkeypatch.setattr(recipes, "recipes", lambda: {tiny.name: tiny})
    return tiny


def test_reference_judge_recipe_ships_and_the_course_loads_it(tiny_judge):
    model, manifest = recipes.run_recipe("ch04-judge", 2, CPU, progress=False)
    assert manifest["steps"] == manifest["curve"]["step"][-1] == 1  # 48 + 16 images: one batch
    assert {"clean", "noise", "blur", "shift", "heldout_unseen", "clean_color"} <= set(
        manifest["metrics"]
    )
    before = torch.random.get_rng_state()
    judge, status = judge_module.reference_judge(CPU, 2, progress=False)
    assert status == "loaded the long run ch04-judge-seed2 (models/)"
    assert torch.equal(before, torch.random.get_rng_state())
    for (k, a), (_, b) in zip(model.state_dict().items(), judge.state_dict().items()):
        assert torch.equal(a, b), k
    assert judge_module.reference_judge_scores(judge, TINY_JUDGE, 2) == pytest.approx(
        manifest["metrics"]
    )


def test_without_its_file_the_reference_judge_is_trained_as_make_models_would(tiny_judge):
    shipped, _ = recipes.run_recipe("ch04-judge", 1, CPU, save=False, progress=False)
    torch.manual_seed(99)  # the caller's state must not matter
    before = torch.random.get_rng_state()
    judge, status = judge_module.reference_judge(CPU, 1, progress=False)
    assert status.startswith("the long run is not usable (") and "make models" in status
    assert status.endswith("trained: missing")
    assert torch.equal(before, torch.random.get_rng_state())
    for (k, a), (_, b) in zip(shipped.state_dict().items(), judge.state_dict().items()):
        assert torch.equal(a, b), k
    again, status = judge_module.reference_judge(CPU, 1, progress=False)
    assert status.endswith("loaded")  # from the registry this time
    with pytest.raises(TypeError, match="device"):
        judge_module.reference_judge("cpu", 1)
    with pytest.raises(ValueError, match="seed"):
        judge_module.reference_judge(CPU, -1)
