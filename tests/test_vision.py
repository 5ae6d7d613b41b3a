"""cmlib.vision: encoders, the CNN classifier, the autoencoder, conv arithmetic, shifts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cmlib.vision import (
    CNNClassifier,
    ConvAutoencoder,
    ConvEncoder,
    autoencoder_loss,
    conv_output_size,
    permute_channels,
    random_shift,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


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


# -------------------------------------------------------------- ConvEncoder (shared API, unchanged)
def test_conv_encoder_api_unchanged():
    enc = ConvEncoder(in_channels=3, image_size=32, width=8, embed_dim=16)
    x = torch.rand(2, 3, 32, 32)
    assert enc(x).shape == (2, 16)
    assert enc.feature_map(x).shape == (2, 32, 4, 4)
    with pytest.raises(ValueError, match="expected images \\(B, "):
        enc(torch.rand(2, 1, 32, 32))


def test_conv_encoder_pooling_forgets_the_layout_and_flatten_keeps_it():
    torch.manual_seed(0)
    x = torch.zeros(1, 3, 32, 32)
    x[:, 0, 4:12, 4:12] = 1.0  # a red square top left...
    x[:, 2, 20:28, 20:28] = 1.0  # ...and a blue square bottom right
    mirrored = x.flip(-1).flip(-2)  # the same two squares, places exchanged
    mean = ConvEncoder(3, 32, width=8, embed_dim=16, pool="mean").eval()
    flat = ConvEncoder(3, 32, width=8, embed_dim=16, pool="flatten").eval()
    assert flat.project.in_features == 32 * 4 * 4 and flat(x).shape == (1, 16)

    def gap(enc):
        a, b = enc(x), enc(mirrored)
        return ((a - b).norm() / a.norm()).item()

    assert gap(flat) > 2 * gap(mean)  # pooling barely sees the exchange; flattening does
    with pytest.raises(ValueError, match="pool"):
        ConvEncoder(3, 32, pool="max")


# ----------------------------------------------------------------- CNNClassifier
def test_cnn_classifier_shapes():
    model = CNNClassifier(
        in_channels=1, image_size=28, num_classes=10, channels=(8, 16), embed_dim=32
    )
    x = torch.rand(5, 1, 28, 28)
    assert model(x).shape == (5, 10)
    assert model.embed(x).shape == (5, 32)
    assert model.features(x).shape == (5, 16, 7, 7)
    rgb = CNNClassifier(in_channels=3, image_size=32, num_classes=18, channels=(8, 16, 16))
    assert rgb(torch.rand(2, 3, 32, 32)).shape == (2, 18)


@pytest.mark.parametrize(
    "bad, message",
    [
        (
            torch.rand(4, 3, 28, 28),
            "expected images \\(B, 1, 28, 28\\), got a tensor of shape \\(4, 3, ",
        ),
        (torch.rand(4, 1, 32, 32), "got a tensor of shape \\(4, 1, 32, 32\\)"),
        (torch.rand(1, 28, 28), "expected images \\(B, "),
    ],
)
def test_cnn_classifier_rejects_bad_input(bad, message):
    model = CNNClassifier(in_channels=1, image_size=28, channels=(4, 8))
    with pytest.raises(ValueError, match=message):
        model(bad)


def test_cnn_classifier_rejects_bad_config():
    with pytest.raises(ValueError, match="divisible by 4"):
        CNNClassifier(image_size=30, channels=(4, 8))
    with pytest.raises(ValueError, match="at least one conv block"):
        CNNClassifier(channels=())
    with pytest.raises(TypeError, match="float tensor"):
        CNNClassifier(channels=(4,))(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


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
    assert ConvAutoencoder(in_channels=3, image_size=32, latent_dim=8, width=8)(
        torch.rand(2, 3, 32, 32)
    )[1].shape == (2, 3, 32, 32)
    with pytest.raises(
        ValueError, match="expected codes \\(B, 12\\), got a tensor of shape \\(3, 7\\)"
    ):
        ae.decode(torch.rand(3, 7))
    with pytest.raises(ValueError, match="expected images \\(B, "):
        ae(torch.rand(3, 3, 28, 28))
    with pytest.raises(ValueError, match="divisible by 4"):
        ConvAutoencoder(image_size=30)


def test_autoencoder_training_lowers_loss():
    x = torch.rand(16, 1, 28, 28).round()
    ae = ConvAutoencoder(latent_dim=8, width=8)
    first, last = _loss_drops(ae, lambda m: autoencoder_loss(m, (x,)), steps=30)
    assert last < 0.8 * first


# ----------------------------------------------------------------- conv arithmetic
@pytest.mark.parametrize(
    "size, k, s, p",
    [
        (28, 3, 1, 1),
        (28, 3, 1, 0),
        (31, 5, 2, 2),
        (16, 2, 2, 0),
        (17, 2, 2, 0),
        (224, 3, 2, 1),
        (9, 1, 3, 0),
    ],
)
def test_conv_output_size_matches_pytorch(size, k, s, p):
    out = nn.Conv2d(1, 1, k, stride=s, padding=p)(torch.zeros(1, 1, size, size))
    assert conv_output_size(size, k, s, p) == out.shape[-1]


def test_conv_output_size_errors():
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_size(2, 5)
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        conv_output_size(28, 3, stride=0)


# ----------------------------------------------------------------- augmentation
def test_random_shift_moves_content_without_loss():
    x = torch.zeros(6, 2, 10, 10)
    x[:, :, 3:7, 3:7] = torch.rand(6, 2, 4, 4)
    shifted = random_shift(x, max_shift=2, generator=torch.Generator().manual_seed(1))
    assert shifted.shape == x.shape
    assert torch.allclose(shifted.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))  # nothing falls off
    for i in range(6):  # each image is an exact translate of the original
        assert any(
            torch.equal(shifted[i], torch.roll(x[i], (dy, dx), dims=(1, 2)))
            for dy in range(-2, 3)
            for dx in range(-2, 3)
        )
    assert torch.equal(random_shift(x, 0), x)
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(x, -1)


def test_permute_channels_shuffles_each_image_on_its_own():
    x = torch.rand(64, 3, 5, 5)
    out = permute_channels(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    orders = set()
    for i in range(len(x)):  # every output channel is one of the image's own channels, once each
        order = tuple(
            next(j for j in range(3) if torch.equal(out[i, c], x[i, j])) for c in range(3)
        )
        assert sorted(order) == [0, 1, 2]
        orders.add(order)
    assert len(orders) == 6  # 64 images draw every order of 3 channels
    again = permute_channels(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    with pytest.raises(ValueError, match="images"):
        permute_channels(torch.rand(3, 5, 5))


def test_a_functional_convolution_matches_the_layer_it_replaces_and_trains_its_weights():
    from cmlib.exercises.ch01 import conv2d_unfold
    from cmlib.vision import CNNClassifier, FunctionalConv2d, with_convolution

    torch.manual_seed(0)
    cnn = CNNClassifier(1, 8, 3, channels=(4,), embed_dim=5).eval()
    x = torch.rand(2, 1, 8, 8)
    before = cnn(x)
    weight = cnn.features.conv1.weight
    calls = []

    def recorded(x, w, b):
        calls.append(tuple(x.shape))
        return conv2d_unfold(x, w, b)

    assert with_convolution(cnn, recorded) is cnn
    assert isinstance(cnn.features.conv1, FunctionalConv2d)
    assert cnn.features.conv1.weight is weight  # shared, not copied
    assert torch.allclose(cnn(x), before, atol=1e-5)
    assert calls == [(2, 1, 10, 10)]  # padded as the convolution it replaced
    cnn(x).sum().backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0


def test_a_functional_convolution_refuses_what_it_cannot_replace():
    from cmlib.vision import FunctionalConv2d, with_convolution

    with pytest.raises(TypeError, match="nn.Conv2d"):
        FunctionalConv2d(torch.nn.Linear(2, 2), lambda *a: None)
    with pytest.raises(TypeError, match="conv_fn"):
        FunctionalConv2d(torch.nn.Conv2d(1, 1, 3), "conv")
    with pytest.raises(ValueError, match="stride-1"):
        FunctionalConv2d(torch.nn.Conv2d(1, 1, 3, stride=2), lambda *a: None)
    with pytest.raises(ValueError, match="stride-1"):
        FunctionalConv2d(torch.nn.Conv2d(1, 1, 3, padding=(1, 0)), lambda *a: None)
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        with_convolution(torch.nn.Linear(2, 2), lambda *a: None)
    with pytest.raises(ValueError, match="square kernel"):
        FunctionalConv2d(torch.nn.Conv2d(1, 1, (3, 1)), lambda *a: None)
    with pytest.raises(ValueError, match="inside a network"):
        with_convolution(torch.nn.Conv2d(1, 1, 3), lambda *a: None)
    layer = FunctionalConv2d(torch.nn.Conv2d(2, 1, 3), lambda *a: None)
    with pytest.raises(ValueError):
        layer(torch.rand(1, 3, 5, 5))  # three channels for a two-channel weight


def test_a_functional_convolution_keeps_a_real_bias_and_valid_padding():
    from cmlib.exercises.ch01 import conv2d_unfold
    from cmlib.vision import FunctionalConv2d

    torch.manual_seed(0)
    x = torch.rand(2, 3, 6, 6)
    for conv in (torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(3, 4, 3, padding="valid")):
        assert conv.bias is not None
        assert torch.allclose(FunctionalConv2d(conv, conv2d_unfold)(x), conv(x), atol=1e-5)
