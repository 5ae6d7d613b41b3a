"""The reasoning package: the scene tagger's labels and parse, and the neural reasoners."""

from __future__ import annotations

import pytest
import torch

from cmlib.data.reasoning import ANSWERS, ReasoningDataset, encode_question, execute, question_vocab
from cmlib.data.reasoning.programs import answer_word
from cmlib.data.shapes.world import COLORS, SHAPES, SIZES, Obj, Scene
from cmlib.reasoning import models, perception, symbolic, training
from cmlib.vision import ConvEncoder

CPU = torch.device("cpu")


def _scene(*objects):
    return Scene(tuple(Obj(*o) for o in objects), "photo")


def test_cell_labels_put_each_object_in_the_cell_of_its_centre():
    scene = _scene(
        ("circle", "red", "small", 0.10, 0.90, 0.06), ("square", "blue", "large", 0.5, 0.2, 0.09)
    )
    labels = perception.cell_labels([scene], 12)
    assert set(labels) == {"color", "shape", "size"}
    assert labels["color"].shape == (1, 12, 12)
    assert labels["color"][0, 10, 1] == COLORS.index("red")  # y 0.9 → row 10, x 0.1 → col 1
    assert labels["shape"][0, 2, 6] == SHAPES.index("square")
    assert labels["size"][0, 2, 6] == SIZES.index("large")
    # every other cell is background, the last label of each head
    assert (labels["color"] == len(COLORS)).sum() == 144 - 2


def test_cell_labels_refuse_a_coarse_grid_and_two_objects_in_a_cell():
    scene = _scene(
        ("circle", "red", "small", 0.50, 0.50, 0.06), ("square", "blue", "small", 0.52, 0.53, 0.06)
    )
    with pytest.raises(ValueError, match="two objects in cell"):
        perception.cell_labels([scene], 12)
    with pytest.raises(ValueError, match="at least 10 cells"):
        perception.cell_labels([scene], 6)
    with pytest.raises(TypeError):
        perception.cell_labels(["not a scene"], 12)


def test_no_generated_scene_puts_two_objects_in_one_cell():
    data = ReasoningDataset("train", 300, num_objects=(7, 8))
    perception.cell_labels([item.scene for item in data.items(range(300))], 12)  # no error


def test_the_scene_tagger_has_a_twelve_by_twelve_grid_at_48_pixels():
    tagger = perception.build_scene_tagger(48)
    out = tagger(torch.rand(2, 3, 48, 48))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "color": (2, len(COLORS) + 1, 12, 12),
        "shape": (2, len(SHAPES) + 1, 12, 12),
        "size": (2, len(SIZES) + 1, 12, 12),
    }
    with pytest.raises(ValueError, match="at least"):
        perception.build_scene_tagger(32)  # an 8 × 8 grid could merge two objects


def test_conv_encoder_cell_size_four_keeps_the_weights_and_halves_the_cell():
    coarse, fine = (
        ConvEncoder(image_size=48, width=4),
        ConvEncoder(image_size=48, width=4, cell_size=4),
    )
    assert list(coarse.state_dict()) == list(fine.state_dict())
    assert fine.feature_map(torch.rand(1, 3, 48, 48)).shape == (1, 16, 12, 12)
    with pytest.raises(ValueError, match="cell_size"):
        ConvEncoder(cell_size=2)


def _perfect_tags(scenes, grid=12):
    """Logits that say exactly what cell_labels says: a tagger that never errs."""
    labels = perception.cell_labels(scenes, grid)
    return {
        k: torch.nn.functional.one_hot(v, perception.HEADS[k]).permute(0, 3, 1, 2).float() * 20
        for k, v in labels.items()
    }


class _Oracle(perception.GridTagger):
    def __init__(self, tags):
        super().__init__(ConvEncoder(image_size=48, width=4, cell_size=4), perception.HEADS)
        self.tags = tags

    def forward(self, images):
        index = images[:, 0, 0, 0].long()  # image i carries i in its first pixel
        return {k: v[index] for k, v in self.tags.items()}


def test_a_perfect_parse_answers_every_question_right():
    data = ReasoningDataset("test", 60)
    items = data.items(range(60))
    scenes = [i.scene for i in items]
    images = torch.zeros(60, 3, 48, 48)
    images[:, 0, 0, 0] = torch.arange(60).float()
    graphs = perception.parse_scenes(_Oracle(_perfect_tags(scenes)), images, CPU)
    assert perception.tag_accuracy(graphs, scenes, 12) == {
        "count": 1.0,
        "found": 1.0,
        "color": 1.0,
        "shape": 1.0,
        "size": 1.0,
        "all": 1.0,
    }
    for item, graph in zip(items, graphs):
        assert answer_word(execute(item.program, graph)) == item.answer


def test_parse_reports_what_it_missed():
    scenes = [
        _scene(
            ("circle", "red", "small", 0.1, 0.1, 0.06), ("square", "blue", "large", 0.7, 0.7, 0.09)
        )
    ]
    tags = _perfect_tags(scenes)
    tags["color"][0, :, 1, 1] = 0
    tags["color"][0, COLORS.index("green"), 1, 1] = 20  # the red circle read as green
    graphs = perception.parse_scenes(_Oracle(tags), torch.zeros(1, 3, 48, 48), CPU)
    scores = perception.tag_accuracy(graphs, scenes, 12)
    assert scores["found"] == 1.0 and scores["color"] == 0.5 and scores["all"] == 0.5
    with pytest.raises(ValueError, match="threshold"):
        perception.parse_scenes(_Oracle(tags), torch.zeros(1, 3, 48, 48), CPU, threshold=1.5)


@pytest.mark.parametrize("name", models.REASONERS)
def test_every_reasoner_maps_a_grid_and_a_question_to_answer_logits(name):
    torch.manual_seed(0)
    model = models.make_reasoner(name, len(question_vocab()), len(ANSWERS), 16, 12, dim=16, depth=1)
    grid = torch.randn(3, 16, 12, 12, requires_grad=True)
    questions = torch.stack(
        [
            encode_question(q)
            for q in (
                "Is there a red circle?",
                "How many squares are there?",
                "What colour is the large square?",
            )
        ]
    )
    logits = model(grid, questions)
    assert logits.shape == (3, len(ANSWERS))
    logits.sum().backward()
    # the answer depends on the image unless the model is blind by design
    assert (grid.grad is not None and grid.grad.abs().sum() > 0) == (name != "question_only")


def test_relation_network_pairs_match_the_concatenated_mlp():
    torch.manual_seed(0)
    rn = models.RelationNetwork(len(question_vocab()), len(ANSWERS), channels=8, pool=3, hidden=16)
    grid, questions = (
        torch.randn(2, 8, 6, 6),
        torch.stack([encode_question("Is there a red circle?")] * 2),
    )
    objects = rn.objects(grid)  # (2, 4, 10)
    q = rn.question(questions, models.question_lengths(questions))
    total = 0
    for i in range(4):
        for j in range(4):
            first = torch.cat([objects[:, i], objects[:, j], q], dim=1)
            weight = torch.cat([rn.first.weight, rn.second.weight, rn.ask.weight], dim=1)
            total = total + rn.g(first @ weight.T + rn.first.bias)
    assert torch.allclose(rn(grid, questions), rn.f(total), atol=1e-5)


@pytest.mark.parametrize("name", ["single_stream", "cross_attention"])
def test_transformer_patches_of_two_cells_quarter_the_image_tokens(name):
    model = models.make_reasoner(name, 10, 5, 16, 12, dim=16, depth=1, patch_size=2)
    assert model.patches.num_patches == 36
    questions = torch.ones(2, 4, dtype=torch.long)
    assert model(torch.randn(2, 16, 12, 12), questions).shape == (2, 5)


def test_relation_network_pools_as_asked_and_only_it_pools():
    rn = models.make_reasoner("relation_network", 10, 5, 16, 12, pool=3)
    assert rn.pool == 3
    assert rn(torch.randn(2, 16, 12, 12), torch.ones(2, 4, dtype=torch.long)).shape == (2, 5)
    assert models.make_reasoner("relation_network", 10, 5, 16, 12).pool == 2  # its default
    with pytest.raises(ValueError, match="only 'relation_network' pools"):
        models.make_reasoner("film", 10, 5, 16, 12, pool=3)
    with pytest.raises(ValueError, match="divide"):
        models.make_reasoner("relation_network", 10, 5, 16, 12, pool=5)
    with pytest.raises(ValueError, match="pool"):
        models.make_reasoner("relation_network", 10, 5, 16, 12, pool=0)


def test_reasoners_reject_bad_input():
    with pytest.raises(ValueError, match="name"):
        models.make_reasoner("oracle", 10, 5)
    with pytest.raises(ValueError, match="patch_size"):
        models.make_reasoner("film", 10, 5, patch_size=2)
    with pytest.raises(ValueError, match="patch_size"):
        models.make_reasoner("cross_attention", 10, 5, grid_size=12, patch_size=5)
    rn = models.RelationNetwork(10, 5, channels=8)
    with pytest.raises(ValueError):
        rn(torch.randn(2, 7, 6, 6), torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="batch"):
        rn(torch.randn(2, 8, 6, 6), torch.ones(3, 4, dtype=torch.long))


def test_neuro_symbolic_explains_a_typed_question_and_fails_gracefully():
    scenes = [
        _scene(
            ("circle", "red", "small", 0.1, 0.1, 0.06), ("square", "blue", "large", 0.7, 0.7, 0.09)
        )
    ]
    reasoner = symbolic.NeuroSymbolicReasoner(_Oracle(_perfect_tags(scenes)), CPU)
    image = torch.zeros(3, 48, 48)
    told = reasoner.explain(image, "What colour is the circle left of the large square?")
    assert told.answer == "red" and told.error is None
    assert told.question.family == "query_relate" and len(told.steps) == len(told.question.program)
    # no triangle in the scene: the program cannot pick "the triangle", and says why
    missing = reasoner.explain(image, "What colour is the triangle?")
    assert missing.answer == symbolic.NO_ANSWER and "no object" in missing.error.lower()
    with pytest.raises(ValueError, match="unknown"):
        reasoner.explain(image, "What colour is the ball?")
    with pytest.raises(ValueError, match="one program per image"):
        reasoner.answer(image.unsqueeze(0), [])


def test_the_scoring_helpers_agree_with_scoring_by_hand():
    data = ReasoningDataset("test", 40)
    items = data.items(range(40))
    images = torch.zeros(40, 3, 48, 48)
    images[:, 0, 0, 0] = torch.arange(40).float()
    oracle = symbolic.NeuroSymbolicReasoner(_Oracle(_perfect_tags([i.scene for i in items])), CPU)
    assert oracle.score(images, items) == {"all": 1.0} | {f: 1.0 for f in {i.family for i in items}}
    torch.manual_seed(0)
    model = models.make_reasoner("film", len(question_vocab()), len(ANSWERS), 8, 6, 16, 1)
    grids = torch.randn(40, 8, 6, 6)
    questions = torch.stack([encode_question(i.question) for i in items])
    by_hand = training.accuracy_by_family(
        training.predict_answers(model, grids, questions, CPU),
        [i.answer for i in items],
        [i.family for i in items],
    )
    assert training.score_items(model, grids, items, CPU) == by_hand
    with pytest.raises(ValueError, match="same number of rows"):
        training.score_items(model, grids[:39], items, CPU)
    with pytest.raises(ValueError, match="one program per image"):
        oracle.score(images[:39], items)


def test_the_generalisation_recipe_trains_on_condition_a_without_its_held_out_family():
    from cmlib.data.reasoning import FAMILIES, allowed_pairs
    from cmlib.longrun import reasoning as recipe
    from cmlib.longrun.recipes import get_recipe

    general = get_recipe("ch08-reasoning-generalisation")
    assert general.config["condition"] == "A" and general.half
    assert recipe.data_options(recipe.CONFIG) == {}  # ch08-reasoning sees everything
    options = recipe.data_options(general.config)
    assert set(options["families"]) == set(FAMILIES) - {"count_relate"}
    config = {**general.config, "num_test": 24}
    sets = recipe.test_sets(config, 0)
    assert set(sets) == {"test", "beyond", "cogent", "closure"}

    def pairs(name):
        return {(o.color, o.shape) for i in sets[name][0] for o in i.scene.objects}

    assert pairs("test") <= set(allowed_pairs("A")) and pairs("beyond") <= set(allowed_pairs("A"))
    assert pairs("cogent") <= set(allowed_pairs("B")) and pairs("cogent") - set(allowed_pairs("A"))
    assert {i.family for i in sets["closure"][0]} == {"count_relate"}
    trained = {i.family for name in ("test", "beyond", "cogent") for i in sets[name][0]}
    assert "count_relate" not in trained
    assert all(len(i.scene.objects) >= 7 for i in sets["beyond"][0])
    with pytest.raises(ValueError, match="family"):
        recipe.data_options({**config, "held_out_families": ["counting"]})


def test_train_reasoner_learns_a_rule_read_off_the_grid_and_logs_each_round():
    # answer "yes" when cell (0, 0) of channel 0 is lit: a film model must learn to look there
    torch.manual_seed(0)
    grids = torch.zeros(256, 4, 12, 12)
    lit = torch.rand(256) < 0.5
    grids[lit, 0, 0, 0] = 3.0
    questions = torch.stack([encode_question("Is there a red circle?")] * 256)
    answers = torch.where(lit, ANSWERS.index("yes"), ANSWERS.index("no"))
    model = models.make_reasoner("film", len(question_vocab()), len(ANSWERS), 4, 12)
    calls = []

    def eval_fn(m):
        calls.append(m.training)
        predicted = training.predict_answers(m, grids, questions, CPU)
        return {"accuracy": (predicted == answers).float().mean().item()}

    history = training.train_reasoner(
        model,
        grids.half(),
        questions,
        answers,
        120,
        CPU,
        batch_size=32,
        eval_fn=eval_fn,
        eval_every=40,
        progress=False,
    )
    assert len(history.metrics) == 3 and calls == [False] * 3
    assert history.metrics[-1]["accuracy"] >= 0.95
    with pytest.raises(ValueError, match="divide"):
        training.train_reasoner(model, grids, questions, answers, 100, CPU, eval_every=30)


def test_accuracy_by_family_takes_ids_or_words():
    from cmlib.data.reasoning import FAMILIES

    words = ["yes", "no", "red", "three"]
    truth = ["yes", "yes", "red", "two"]
    families = ["exist", "exist", "query_color", "count"]
    scores = training.accuracy_by_family(words, truth, families)
    assert scores == {"all": 0.5, "exist": 0.5, "query_color": 1.0, "count": 0.0}
    ids = torch.tensor([ANSWERS.index(w) for w in words])
    family_ids = torch.tensor([FAMILIES.index(f) for f in families])
    assert training.accuracy_by_family(ids, truth, family_ids) == scores
    with pytest.raises(ValueError, match="as many"):
        training.accuracy_by_family(words, truth[:2], families)


def test_parse_keeps_one_object_where_it_spills_into_the_next_cell():
    scenes = [
        _scene(
            ("circle", "red", "small", 0.30, 0.30, 0.06),
            ("square", "blue", "large", 0.42, 0.42, 0.09),
        )
    ]
    tags = _perfect_tags(scenes)  # objects in cells (3, 3) and (5, 5): diagonal, never beside
    for name in perception.ATTRIBUTES:  # the circle seen again in (3, 4), less surely
        tags[name][0, :, 3, 4] = tags[name][0, :, 3, 3] * 0.5
    graphs = perception.parse_scenes(_Oracle(tags), torch.zeros(1, 3, 48, 48), CPU)
    assert [(o["color"], o["x"]) for o in graphs[0]["objects"]] == [("red", 0.292), ("blue", 0.458)]
    assert perception.tag_accuracy(graphs, scenes, 12)["count"] == 1.0


def test_encode_items_gives_the_ids_tensors_gives_without_rendering():
    from cmlib.data.reasoning import encode_items

    data = ReasoningDataset("test", 12)
    _, questions, answers, families = data.tensors()
    ids = encode_items(data.items(range(12)))
    assert all(torch.equal(a, b) for a, b in zip(ids, (questions, answers, families)))
    with pytest.raises(ValueError, match="at least one"):
        encode_items([])


def test_the_reasoning_recipe_trains_and_scores_on_tiny_data(monkeypatch):
    from cmlib.longrun import reasoning as recipe

    config = {**recipe.CONFIG, "tagger_images": 64, "tagger_epochs": 1, "num_train": 128}
    config.update(num_steps=4, eval_every=2, num_test=32, dim=16, depth=1)
    model = recipe.build(config)
    result = recipe.train(model, config, 0, CPU, False)
    assert result.steps == 4 and result.curve["step"] == [2, 4]
    scores = recipe.evaluate(model, config, 0, CPU)
    for test in ("test", "beyond"):
        for key in ("neural_all", "symbolic_all", "parse_count"):
            assert 0.0 <= scores[f"{test}_{key}"] <= 1.0
    # the drift test's fingerprint: a subset of evaluate's metrics, on the first items only
    monkeypatch.setattr(recipe, "FINGERPRINT_ITEMS", 8)
    scores = recipe.evaluate(model, config, 0, CPU)
    fingerprint = recipe.fingerprint(model, config, 0, CPU)
    assert set(fingerprint) == {
        f"first8_{test}_{who}_all" for test in ("test", "beyond") for who in ("neural", "symbolic")
    }
    first8 = recipe._scores(model, recipe.test_sets({**config, "num_test": 8}, 0), CPU)
    for key, value in fingerprint.items():
        assert scores[key] == value == first8[key.removeprefix("first8_")]


def test_the_other_reasoners_train_on_the_shipped_tagger_and_leave_it_alone(monkeypatch):
    from cmlib.longrun import reasoners, store
    from cmlib.longrun import reasoning as recipe

    film = reasoners.reasoner_recipe("film", 4)
    assert film.name == "ch08-reasoning-film" and film.scored_by == ("ch08-reasoning",)
    assert not set(reasoners._TAGGER_KEYS) & set(film.config)  # it trains no tagger
    config = {**film.config, "num_train": 128, "num_test": 32, "num_steps": 4, "eval_every": 2}
    model = film.build(config)
    assert set(model) == {"reasoner"}  # the tagger ships once, with ch08-reasoning
    tagger = reasoners.shipped_tagger(0, CPU)
    before = {k: v.clone() for k, v in tagger.state_dict().items()}
    read = []  # the encoders whose grids the reasoner was trained on
    grids = recipe.training_grids

    def spy(config, seed, encoder, device, *args):
        read.append(encoder)
        return grids(config, seed, encoder, device, *args)

    monkeypatch.setattr(reasoners, "shipped_tagger", lambda seed, device: tagger)
    monkeypatch.setattr(recipe, "training_grids", spy)
    result = film.train(model, config, 0, CPU, False)
    assert result.steps == 4 and result.curve["step"] == [2, 4]
    assert read == [tagger.encoder]  # the shipped tagger's grids, and it is left as it was
    assert all(torch.equal(before[k], v) for k, v in tagger.state_dict().items())
    scores = film.evaluate(model, config, 0, CPU)
    assert 0.0 <= scores["test_neural_all"] <= 1.0 and 0.0 <= scores["beyond_neural_all"] <= 1.0
    assert not any("symbolic" in k or "parse" in k for k in scores)  # ch08-reasoning's to score
    monkeypatch.setattr(recipe, "FINGERPRINT_ITEMS", 8)
    scores = film.evaluate(model, config, 0, CPU)
    fingerprint = film.fingerprint(model, config, 0, CPU)
    assert set(fingerprint) == {"first8_test_neural_all", "first8_beyond_neural_all"}
    assert all(scores[k] == v for k, v in fingerprint.items())
    with pytest.raises(ValueError, match="48-pixel"):
        film.train(
            film.build({**config, "image_size": 64}), {**config, "image_size": 64}, 0, CPU, False
        )
    monkeypatch.undo()
    with pytest.raises(store.LongRunError, match="make models"):
        reasoners.shipped_tagger(7, CPU)


def test_reasoner_recipe_refuses_the_long_runs_own_and_unknown_reasoners():
    from cmlib.longrun import reasoners

    with pytest.raises(ValueError, match="ch08-reasoning's own"):
        reasoners.reasoner_recipe("cross_attention", 10)
    with pytest.raises(ValueError, match="reasoner"):
        reasoners.reasoner_recipe("lstm", 10)
    with pytest.raises(ValueError, match="patch_size"):
        reasoners.reasoner_recipe("film", 10, patch_size=2)
    with pytest.raises(ValueError, match="pool"):
        reasoners.reasoner_recipe("single_stream", 10, pool=3)
    assert reasoners.reasoner_recipe("relation_network", 10, pool=3).config["pool"] == 3
    with pytest.raises(ValueError, match="num_steps"):
        reasoners.reasoner_recipe("film", 0)
    with pytest.raises(TypeError, match="seeds"):
        reasoners.reasoner_recipe("film", 10, seeds=[0])


def test_scene_grids_are_the_encoders_grids_in_half_precision_chunk_by_chunk():
    from cmlib.backbone import grid_features
    from cmlib.data.reasoning import ReasoningDataset

    torch.manual_seed(0)
    encoder = perception.build_scene_tagger(48, 4).encoder
    data = ReasoningDataset("val", 5, seed=0)
    items = data.items(range(5))
    images = torch.from_numpy(data.images(items)).permute(0, 3, 1, 2)
    expected = grid_features(encoder, images, CPU).half()
    whole = perception.scene_grids(encoder, data, items, CPU)  # one chunk: the same batch
    assert whole.dtype == torch.float16 and torch.equal(whole, expected)
    # chunks of 2 batch the images otherwise: equal to float16 rounding
    chunked = perception.scene_grids(encoder, data, items, CPU, chunk=2)
    torch.testing.assert_close(chunked, expected, atol=2e-3, rtol=2e-3)
    with pytest.raises(ValueError, match="empty"):
        perception.scene_grids(encoder, data, [], CPU)
    with pytest.raises(TypeError, match="encoder"):
        perception.scene_grids("tagger", data, items, CPU)
