"""ShapesWorld: determinism, exact attributes, splits, captions, questions, errors."""

import numpy as np
import pytest
import torch

from cmlib.data import shapes as S
from cmlib.data.shapes import HELDOUT_PAIRS, ShapesWorld, render, sample_scene
from cmlib.data.shapes.text import (
    ANSWERS,
    QUESTION_KINDS,
    canonical_caption,
    captions,
    shapes_vocab,
)
from cmlib.text import tokenize


def pairs_in(ds, n):
    return {(o.color, o.shape) for i in range(n) for o in ds.scene(i).objects}


def test_item_is_deterministic_and_random_access():
    a, b = ShapesWorld("train", 100, seed=3), ShapesWorld("train", 100, seed=3)
    img_a, cap_a, att_a = a[42]
    for i in (5, 99, 0):  # other items first: no hidden state
        b[i]
    img_b, cap_b, att_b = b[42]
    assert torch.equal(img_a, img_b) and cap_a == cap_b and att_a == att_b
    assert not torch.equal(a[1][0], a[2][0])
    assert not torch.equal(ShapesWorld("train", 10, seed=4)[0][0], a[0][0])


def test_item_format():
    image, caption, attrs = ShapesWorld("val", 8, image_size=48)[3]
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert isinstance(caption, str) and caption
    assert set(attrs) == set(S.ATTRIBUTE_KEYS)


def test_splits_differ_and_heldout_is_compositional():
    train = ShapesWorld("train", 400)
    test = ShapesWorld("test", 400)
    held = ShapesWorld("heldout", 200)
    assert not torch.equal(train[0][0], test[0][0])
    assert not pairs_in(train, 400) & set(HELDOUT_PAIRS)
    assert not pairs_in(test, 400) & set(HELDOUT_PAIRS)
    for i in range(200):
        assert any((o.color, o.shape) in HELDOUT_PAIRS for o in held.scene(i).objects)
    # every colour and every shape is still seen in training
    seen = pairs_in(train, 400)
    assert {c for c, _ in seen} == set(S.COLORS) and {s for _, s in seen} == set(S.SHAPES)


def test_attributes_match_the_pixels():
    """The object's colour is the dominant colour inside its shape, at its position."""
    ds = ShapesWorld("train", 60, image_size=64, num_objects=1)
    for i in range(60):
        scene = ds.scene(i)
        obj = scene.objects[0]
        image = ds.image_array(i)
        inside = S.signed_distance(obj, 64) < -1.5
        if scene.style == "sketch":
            inside = np.abs(S.signed_distance(obj, 64)) < 0.4
        mean = image[inside].mean(0)
        nearest = min(S.COLORS, key=lambda c: np.abs(np.array(S.RGB[c]) - mean).sum())
        assert nearest == obj.color, (i, obj, mean)


def test_positions_and_relations_are_geometric():
    ds = ShapesWorld("train", 300)
    for i in range(300):
        scene = ds.scene(i)
        if scene.relation:
            a, b = scene.objects
            dx, dy = b.x - a.x, b.y - a.y
            expected = {
                "left of": dx > abs(dy),
                "right of": -dx > abs(dy),
                "above": dy > abs(dx),
                "below": -dy > abs(dx),
            }[scene.relation]
            assert expected, scene
            assert (a.color, a.shape) != (b.color, b.shape)
        else:
            obj = scene.objects[0]
            if scene.position == "left":
                assert obj.x < 0.35
            if scene.position == "center":
                assert 0.4 < obj.x < 0.6 and 0.4 < obj.y < 0.6
        for obj in scene.objects:  # inside the frame
            assert obj.radius < obj.x < 1 - obj.radius and obj.radius < obj.y < 1 - obj.radius


def test_styles_look_different():
    photo = ShapesWorld("train", 50, style="photo").tensors(cache=False)[0]
    sketch = ShapesWorld("train", 50, style="sketch").tensors(cache=False)[0]
    assert sketch.mean() > photo.mean() + 0.2  # light paper vs darker textured ground
    assert photo.std(dim=(2, 3)).mean() > 0.0


def test_tensors_match_items_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))
    ds = ShapesWorld("test", 40, style="mixed")
    images, attrs = ds.tensors()
    assert images.shape == (40, 3, 32, 32)
    assert (images[7] - ds[7][0]).abs().max() <= 1 / 255
    assert attrs["color"][7] == ds[7][2]["color"]
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    files[0].write_bytes(files[0].read_bytes()[:100])  # truncate: must be rebuilt
    with pytest.warns(UserWarning, match="rebuilding"):
        again, _ = ds.tensors()
    assert torch.equal(images, again)


def test_captions_are_faithful():
    ds = ShapesWorld("train", 200)
    vocab = shapes_vocab()
    for i in range(200):
        scene = ds.scene(i)
        variants = ds.captions(i)
        assert variants[0] == canonical_caption(scene) and len(variants) == 5
        for text in variants:
            assert all(w in vocab for w in tokenize(text)), text
            for obj in scene.objects:
                assert obj.color in text
        assert " a o" not in variants[0] and " a a" not in variants[0]  # "an orange"
    assert "crimson" not in vocab and "disc" not in vocab


def test_questions_cover_every_kind_with_valid_answers():
    ds = ShapesWorld("train", 300)
    answers = {k: [] for k in QUESTION_KINDS}
    for i in range(300):
        qas = ds.questions(i)
        assert [qa.kind for qa in qas] == list(QUESTION_KINDS)
        scene = ds.scene(i)
        for qa in qas:
            assert qa.answer in ANSWERS
            answers[qa.kind].append(qa.answer)
            if qa.kind == "color":
                assert qa.answer in {o.color for o in scene.objects}
    for kind in ("exist", "relation"):
        yes = answers[kind].count("yes") / len(answers[kind])
        assert 0.35 < yes < 0.65, (kind, yes)


def test_render_and_sample_scene_api():
    rng = np.random.default_rng(0)
    scene = sample_scene(rng, "train", "sketch", 2)
    assert len(scene.objects) == 2 and scene.relation in S.RELATIONS
    image = render(scene, 32, rng)
    assert image.shape == (32, 32, 3) and image.dtype == np.float32
    assert captions(scene, rng)[0].startswith(("a ", "an "))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "training"}, "valid values are"),
        ({"style": "cartoon"}, "valid values are"),
        ({"size": 0}, "size must be an int >= 1, got 0"),
        ({"size": -5}, "size must be an int >= 1, got -5"),
        ({"image_size": 8}, "at least 16"),
        ({"num_objects": 3}, "num_objects"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ShapesWorld(**kwargs)


def test_index_errors():
    ds = ShapesWorld("val", 5)
    with pytest.raises(IndexError):
        ds[5]
    assert torch.equal(ds[-1][0], ds[4][0])


def test_transforms_are_applied():
    ds = ShapesWorld("val", 3, transform=lambda x: x * 0, target_transform=lambda t: t["shape"])
    image, _, target = ds[0]
    assert image.abs().sum() == 0 and isinstance(target, int)


def test_vocab_covers_questions():
    vocab = shapes_vocab()
    ds = ShapesWorld("val", 100)
    for i in range(100):
        for qa in ds.questions(i):
            assert all(w in vocab for w in tokenize(qa.question)), qa.question


def test_existence_questions_never_leak_the_heldout_pairs():
    """In train, a question naming a held-out pair would always be "no": a learnable prior."""
    ds = ShapesWorld("train", 400)
    for i in range(400):
        qa = ds.questions(i)[3]
        assert not any(f"{c} {s}" in qa.question for c, s in HELDOUT_PAIRS), qa.question


def test_getitems_renders_a_batch_exactly_as_single_items():
    from torch.utils.data import DataLoader

    ds = ShapesWorld("train", 40, image_size=16, style="mixed", num_objects=(1, 2), seed=4)
    batch = ds.__getitems__([7, 3, 39, -1])
    for (image, caption, attrs), i in zip(batch, [7, 3, 39, 39]):
        single = ds[i]
        assert torch.equal(image, single[0]) and caption == single[1] and attrs == single[2]
    images, captions, attrs = next(iter(DataLoader(ds, batch_size=8)))
    assert images.shape == (8, 3, 16, 16) and len(captions) == 8 and attrs["shape"].shape == (8,)
    assert torch.equal(images[5], ds[5][0])
    assert ds.__getitems__([]) == []
    with pytest.raises(IndexError):
        ds.__getitems__([40])


def test_an_item_carries_caption_variant_index_mod_five():
    ds = ShapesWorld("val", 12, num_objects=(1, 2), seed=2)
    for i in range(12):
        assert ds[i][1] == ds.captions(i)[i % 5] == ds.caption(i)


def test_make_scene_composes_what_the_reader_asks_for():
    from cmlib.data.shapes.text import canonical_caption
    from cmlib.data.shapes.world import make_scene

    scene = make_scene("orange", "square", "small", "bottom", "sketch")
    assert canonical_caption(scene) == "a small orange square at the bottom"
    assert scene.style == "sketch" and scene.objects[0].y > 0.6
    pair = make_scene("red", "circle", "large", second=("blue", "square"), relation="above")
    assert canonical_caption(pair) == "a large red circle above a large blue square"
    assert pair.objects[0].y < pair.objects[1].y
    with pytest.raises(ValueError, match="told apart"):
        make_scene("red", "circle", second=("red", "circle"))
    with pytest.raises(ValueError, match="unknown position"):
        make_scene("red", "circle", position="behind")
