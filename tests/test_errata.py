"""cmlib.errata: the article's ten listings fail as printed; build() supplies what they lack."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from cmlib import errata
from cmlib.fusion import AdditiveFusion
from cmlib.hooks import trace_shapes
from cmlib.sequence import FixedLSTM
from cmlib.vision import CNNClassifier, ConvAutoencoder, conv_output_size

ARTICLE = Path(__file__).resolve().parents[2] / "shared" / "seed" / "article.md"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_every_listing_is_registered_with_its_section_and_chapter():
    assert list(errata.LISTINGS) == [
        "CNN",
        "ImageEmbedder",
        "Word2Vec",
        "LSTM",
        "FeatureFusion",
        "AdversarialFusion",
        "GAN",
        "CVAE",
        "Seq2Seq",
        "CrossModalSeqGen",
    ]
    for name, listing in errata.LISTINGS.items():
        assert listing.cls.__name__ == name and listing.section.startswith("§")
        assert listing.chapter[:2].isdigit() and listing.fails and listing.fix
        assert listing.source.startswith(f"class {name}(nn.Module):")


@pytest.mark.skipif(not ARTICLE.exists(), reason="the article is not beside this checkout")
def test_listings_are_the_article_code_character_for_character():
    text = ARTICLE.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    printed = {
        re.search(r"class (\w+)\(", b).group(1): b[b.index("class ") :].rstrip() for b in blocks
    }
    for name, listing in errata.LISTINGS.items():
        assert listing.source.rstrip() == printed[name], name


def test_build_supplies_names_without_patching_anything():
    with pytest.raises(NameError, match="vis_dim"):
        errata.AdversarialFusion(nn.Linear(8, 4), nn.Linear(6, 4))
    listing = errata.build(
        "AdversarialFusion", nn.Linear(8, 4), nn.Linear(6, 4), names={"vis_dim": 4, "lang_dim": 4}
    )
    assert isinstance(listing, errata.AdversarialFusion)
    assert not hasattr(errata, "vis_dim") and "vis_dim" not in vars(errata)
    with pytest.raises(NameError, match="vis_dim"):  # the listing itself is unchanged
        errata.AdversarialFusion(nn.Linear(8, 4), nn.Linear(6, 4))
    with pytest.raises(ValueError, match="unknown listing"):
        errata.build("Transformer")
    with pytest.raises(TypeError, match="LISTINGS"):
        errata.build(nn.Linear, 2, 2)


def test_cnn_only_fits_16_or_17_and_folds_other_sizes_into_the_batch():
    cnn = errata.CNN()
    for size in (16, 17):
        assert cnn(torch.rand(4, 3, size, size)).shape == (4, 10)
    assert [s for s in range(8, 64) if conv_output_size(conv_output_size(s, 3), 2, 2) == 7] == [
        16,
        17,
    ]
    with pytest.raises(RuntimeError, match="invalid for input of size"):
        cnn(torch.rand(8, 3, 28, 28))
    with pytest.raises(RuntimeError, match="channels"):
        cnn(torch.rand(8, 1, 28, 28))  # MNIST does not run at all
    assert cnn(torch.rand(49, 3, 28, 28)).shape == (169, 10)  # no error, 169 rows for 49 images
    fixed = CNNClassifier(in_channels=3, image_size=28, channels=(4, 8))
    assert fixed(torch.rand(49, 3, 28, 28)).shape == (49, 10)


def test_image_embedder_raises_and_the_autoencoder_works():
    with pytest.raises(RuntimeError, match="conv_transpose2d"):
        errata.ImageEmbedder()(torch.rand(2, 3, 16, 16))
    trace = trace_shapes(errata.ImageEmbedder(), torch.rand(2, 3, 16, 16))
    assert trace.rows[-1] == ("encoder.fc", "Linear", (2, 10)) and "conv_transpose2d" in trace.error
    z, recon = ConvAutoencoder(in_channels=3, image_size=16, latent_dim=10, width=8)(
        torch.rand(2, 3, 16, 16)
    )
    assert z.shape == (2, 10) and recon.shape == (2, 3, 16, 16)


def test_word2vec_needs_vocab_size_and_then_only_looks_up():
    with pytest.raises(NameError, match="vocab_size"):
        errata.Word2Vec(embedding_dim=10)
    model = errata.build("Word2Vec", embedding_dim=10, names={"vocab_size": 50})
    out = model(torch.tensor([[1, 2, 3]]))
    assert out.shape == (1, 3, 10) and torch.equal(out[0, 0], model.embedding.weight[1])
    assert [n for n, _ in model.named_parameters()] == ["embedding.weight"]  # nothing else to learn


def test_lstm_returns_the_outputs_and_a_tuple():
    x = torch.randn(7, 2, 16)  # (T, B, F): time first, as nn.LSTM expects by default
    hidden, cell = errata.LSTM(16, 32)(x)
    assert hidden.shape == (7, 2, 32)  # the per-step outputs, not the final hidden state
    assert isinstance(cell, tuple) and len(cell) == 2  # (h_n, c_n), not the cell state
    output, h_n, _ = FixedLSTM(16, 32)(x.transpose(0, 1))
    assert torch.allclose(output[:, -1], h_n)


def test_feature_fusion_concatenates_not_adds():
    article = errata.FeatureFusion(4, 4)
    assert article.add.weight.shape == (4, 8)  # a linear map of [v; l]
    v, lang = torch.randn(1, 4), torch.randn(1, 4)
    assert not torch.allclose(article(v, lang), article(v + lang, torch.zeros(1, 4)))
    fixed = AdditiveFusion(4, 4, 4)
    fixed.vision_proj.load_state_dict(fixed.language_proj.state_dict())
    assert torch.allclose(fixed(v, lang), fixed(v + lang, torch.zeros(1, 4)), atol=1e-6)


def test_adversarial_fusion_has_no_adversary():
    listing = errata.build(
        "AdversarialFusion", nn.Linear(8, 4), nn.Linear(6, 4), names={"vis_dim": 4, "lang_dim": 4}
    )
    out = listing(torch.randn(5, 8), torch.randn(5, 6))
    assert out.shape == (5, 1)  # one guess per *pair*, not per modality
    assert listing.discriminator[0].in_features == 8  # it reads both modalities at once
    out.mean().backward()  # no reversal: the encoder helps the guess
    assert listing.vis_model.weight.grad is not None and not hasattr(listing, "losses")


def test_gan_has_no_noise_and_outputs_one_number():
    vis_dim, lang_dim = 48, 8
    model = errata.GAN(vis_dim, lang_dim)
    text = torch.randn(3, lang_dim)
    out = model(text)
    assert out.shape == (3, 1)  # one number, not an image
    assert torch.equal(out, model(text))  # no noise: deterministic
    with pytest.raises(RuntimeError):  # image ++ generator output has the wrong size
        model(text, torch.randn(3, vis_dim))
    assert model.discriminator[0].out_features == 1  # the one-unit bottleneck


def test_cvae_lacks_embed_sampling_and_a_conditioned_decoder():
    vis_dim, lang_dim = 48, 8
    text, x = torch.randn(3, lang_dim), torch.randn(3, vis_dim)
    with pytest.raises(AttributeError, match="embed"):
        errata.CVAE(vis_dim, lang_dim)(text, x)
    model = errata.build("CVAE", vis_dim, lang_dim, attributes={"embed": nn.Identity()})
    recon, z = model(text, x)
    assert z.shape == (3, 2)  # no mean/log-variance split
    assert torch.equal(z, model(text, x)[1])  # no sampling
    assert model.decoder[0].in_features == 2  # the decoder never sees the prompt


@pytest.mark.parametrize("name", ["Seq2Seq", "CrossModalSeqGen"])
def test_sequence_listings_map_one_vector_to_one_vector(name):
    with pytest.raises(NameError, match="hidden_dim"):
        errata.build(name, 48, 8)
    model = errata.build(
        name, 48, 8, names={"hidden_dim": 16, "latent_dim": 4}, attributes={"embed": nn.Identity()}
    )
    out = model(torch.randn(3, 8), torch.randn(3, 48))
    assert out.shape == (3, 48)  # one vector per example: no tokens, no steps
    assert not any(isinstance(m, (nn.RNNBase, nn.Embedding)) for m in model.modules())
    assert "for " not in inspect.getsource(errata.LISTINGS[name].cls.forward)  # no decoder loop
