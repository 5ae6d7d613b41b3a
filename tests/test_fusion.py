"""Tests for cmlib.fusion: fusion modules, VQA model, late fusion, adversarial alignment, errata."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import cmlib.fusion as fusion_module
from cmlib.fusion import (
    FUSIONS,
    AdditiveFusion,
    AdversarialAligner,
    ArticleAdversarialFusion,
    ArticleFeatureFusion,
    ConcatFusion,
    CosineClassifier,
    CrossAttentionFusion,
    FiLMFusion,
    GatedFusion,
    GridTagger,
    LateFusionEnsemble,
    ModalityDiscriminator,
    MultiplicativeFusion,
    VQAModel,
    accuracy_by_kind,
    alignment_accuracies,
    grad_reverse,
    grid_features,
    late_fusion,
    make_fusion,
    make_vqa_model,
    modality_loss,
    modality_probe,
    train_adversarial_alignment,
)
from cmlib.sequence import TextEncoder
from cmlib.vision import ConvEncoder

C, L, D = 8, 6, 10


def _inputs(name: str, batch: int = 3):
    spatial = FUSIONS[name].spatial
    vision = torch.randn(batch, C, 4, 4) if spatial else torch.randn(batch, C)
    return vision, torch.randn(batch, L)


@pytest.mark.parametrize("name", list(FUSIONS))
def test_every_fusion_gives_batch_by_out_dim(name):
    fusion = make_fusion(name, C, L, D)
    vision, language = _inputs(name)
    assert fusion(vision, language).shape == (3, D)


@pytest.mark.parametrize("name", list(FUSIONS))
def test_mismatched_batch_raises_naming_both_shapes(name):
    fusion = make_fusion(name, C, L, D)
    vision, _ = _inputs(name, batch=3)
    with pytest.raises(ValueError, match=r"vision \(3, 8.*language \(4, 6\)"):
        fusion(vision, torch.randn(4, L))


@pytest.mark.parametrize("name", list(FUSIONS))
def test_wrong_feature_size_raises(name):
    fusion = make_fusion(name, C, L, D)
    vision, _ = _inputs(name)
    with pytest.raises(ValueError, match="language"):
        fusion(vision, torch.randn(3, L + 1))
    bad_vision = torch.randn(3, C + 1, 4, 4) if fusion.spatial else torch.randn(3, C + 1)
    with pytest.raises(ValueError, match="vision"):
        fusion(bad_vision, torch.randn(3, L))


def test_unknown_fusion_and_bad_sizes_raise():
    with pytest.raises(ValueError, match="unknown fusion"):
        make_fusion("sum", C, L)
    with pytest.raises(ValueError, match="out_dim"):
        ConcatFusion(C, L, 0)
    with pytest.raises(TypeError):
        ConcatFusion(C, L)([1, 2], torch.randn(1, L))


def test_additive_multiplicative_concat_do_what_they_say():
    v, lang = torch.randn(2, C), torch.randn(2, L)
    add = AdditiveFusion(C, L, D)
    assert torch.allclose(add(v, lang), F.relu(add.vision_proj(v) + add.language_proj(lang)))
    mul = MultiplicativeFusion(C, L, D)
    expected = torch.tanh(mul.vision_proj(v)) * torch.tanh(mul.language_proj(lang))
    assert torch.allclose(mul(v, lang), expected)
    cat = ConcatFusion(C, L, D)
    assert torch.allclose(cat(v, lang), F.relu(cat.proj(torch.cat([v, lang], 1))))


def test_gate_lies_in_unit_interval_and_mixes():
    gated = GatedFusion(C, L, D)
    v, lang = torch.randn(4, C), torch.randn(4, L)
    g = gated.gate_values(v, lang)
    assert g.shape == (4, D) and (g > 0).all() and (g < 1).all()
    mix = g * torch.tanh(gated.vision_proj(v)) + (1 - g) * torch.tanh(gated.language_proj(lang))
    assert torch.allclose(gated(v, lang), mix)


def test_attention_maps_sum_to_one_per_head():
    attention = CrossAttentionFusion(C, L, D, grid_size=4, num_heads=3)
    maps = attention.attention(torch.randn(2, C, 4, 4), torch.randn(2, L))
    assert maps.shape == (2, 3, 4, 4)
    assert torch.allclose(maps.sum(dim=(2, 3)), torch.ones(2, 3), atol=1e-5)


def test_spatial_fusions_reject_a_wrong_grid_size():
    for fusion in (FiLMFusion(C, L, D, grid_size=4), CrossAttentionFusion(C, L, D, grid_size=4)):
        with pytest.raises(ValueError, match="4x4 grid"):
            fusion(torch.randn(2, C, 3, 3), torch.randn(2, L))


def test_film_uses_where_things_are():
    torch.manual_seed(0)
    film = FiLMFusion(C, L, D, grid_size=4).eval()
    grid, lang = torch.zeros(1, C, 4, 4), torch.randn(1, L)
    left, right = grid.clone(), grid.clone()
    left[..., 1, 0], right[..., 1, 3] = 1.0, 1.0  # the same feature in another place
    assert not torch.allclose(film(left, lang), film(right, lang))


def _toy_vqa(name: str):
    torch.manual_seed(0)
    model = make_vqa_model(name, vocab_size=12, num_answers=3, grid_channels=C, text_dim=16,
                           embed_dim=8, fused_dim=16)
    grids = torch.randn(64, C, 4, 4)
    ids = torch.randint(1, 12, (64, 5))
    lengths = torch.full((64,), 5)
    answers = (grids[:, 0].mean(dim=(1, 2)) > 0).long() + (ids[:, 0] > 6).long()
    return model, grids, ids, lengths, answers


@pytest.mark.parametrize("name", ["concat", "film", "attention"])
def test_a_few_steps_lower_the_vqa_loss(name):
    model, grids, ids, lengths, answers = _toy_vqa(name)
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    model.train()
    first = F.cross_entropy(model(grids, ids, lengths), answers).item()
    for _ in range(30):
        loss = F.cross_entropy(model(grids, ids, lengths), answers)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.7 * first


def test_vqa_model_checks_its_parts_and_inputs():
    with pytest.raises(ValueError, match="text encoder gives 16"):
        VQAModel(ConcatFusion(C, L, D), TextEncoder(12, 8, 16), 3)
    with pytest.raises(TypeError):
        VQAModel(nn.Linear(2, 2), TextEncoder(12, 8, 16), 3)
    model, grids, ids, lengths, _ = _toy_vqa("add")
    with pytest.raises(ValueError, match="feature grid"):
        model(grids.mean(dim=(2, 3)), ids, lengths)


def test_accuracy_by_kind_reports_each_kind():
    model, grids, ids, lengths, answers = _toy_vqa("mul")
    kinds = torch.arange(64) % 2
    acc = accuracy_by_kind(model, grids, ids, lengths, answers, kinds, ["a", "b"], torch.device("cpu"))
    assert set(acc) == {"overall", "a", "b"} and all(0 <= v <= 1 for v in acc.values())
    with pytest.raises(ValueError, match="Q rows"):
        accuracy_by_kind(model, grids[:10], ids, lengths, answers, kinds, ["a", "b"], torch.device("cpu"))


def test_grid_tagger_and_grid_features_shapes():
    encoder = ConvEncoder(width=4, embed_dim=8)
    tagger = GridTagger(encoder, num_labels=19)
    assert tagger(torch.rand(2, 3, 32, 32)).shape == (2, 19, 4, 4)
    grids = grid_features(encoder, torch.rand(5, 3, 32, 32), torch.device("cpu"), batch_size=2)
    assert grids.shape == (5, 16, 4, 4)
    with pytest.raises(TypeError):
        GridTagger(nn.Linear(2, 2), 3)


# ---------------------------------------------------------------- model-level fusion
def test_late_fusion_is_a_product_of_experts():
    a, b = torch.randn(4, 5), torch.randn(4, 5)
    prior = torch.softmax(torch.randn(5), 0).log()
    expected = F.log_softmax(a, 1) + F.log_softmax(b, 1) - prior
    assert torch.allclose(late_fusion([a, b], log_prior=prior), expected, atol=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        late_fusion([a, torch.randn(4, 6)])
    with pytest.raises(ValueError, match="weights"):
        late_fusion([a, b], weights=[1.0])


def test_ensemble_combines_complementary_members():
    # member 1 knows the first half of the classes, member 2 the parity: together they are sure
    labels = torch.arange(8)
    first = torch.where(torch.arange(8)[None, :] // 4 == labels[:, None] // 4, 3.0, 0.0)
    second = torch.where(torch.arange(8)[None, :] % 4 == labels[:, None] % 4, 3.0, 0.0)
    members = [nn.Identity(), nn.Identity()]
    ensemble = LateFusionEnsemble(members)
    pred = ensemble([(first,), (second,)]).argmax(1)
    assert (pred == labels).all()
    assert (first.argmax(1) == labels).float().mean() < 1
    with pytest.raises(ValueError, match="one input tuple per member"):
        ensemble([(first,)])


def test_grad_reverse_is_identity_forward_and_negates_backward():
    x = torch.randn(3, 4, requires_grad=True)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, -0.5))
    with pytest.raises(ValueError):
        grad_reverse(x, -1.0)


def test_adversarial_aligner_reverses_only_the_encoders_gradient():
    torch.manual_seed(0)
    aligner = AdversarialAligner(nn.Linear(5, 4), nn.Linear(3, 4), embed_dim=4, num_classes=2)
    images, texts, labels = torch.randn(6, 5), torch.randn(6, 3), torch.randint(0, 2, (6,))

    def grads(strength):
        aligner.zero_grad()
        aligner.losses((images,), (texts,), labels, strength)["disc"].backward()
        return (aligner.image_encoder.weight.grad.clone(),
                aligner.discriminator.net[0].weight.grad.clone())

    enc_reversed, disc_1 = grads(1.0)
    enc_zero, disc_0 = grads(0.0)
    assert torch.count_nonzero(enc_zero) == 0           # λ = 0: the encoders ignore the adversary
    assert torch.allclose(disc_1, disc_0)                # the discriminator always learns normally
    # without reversal the encoder's gradient would be the exact opposite
    aligner.zero_grad()
    z_img, z_txt = aligner.embed((images,), (texts,))
    z = torch.cat([z_img, z_txt])
    modality = torch.cat([torch.ones(6), torch.zeros(6)])
    F.binary_cross_entropy_with_logits(aligner.discriminator(z), modality).backward()
    assert torch.allclose(aligner.image_encoder.weight.grad, -enc_reversed, atol=1e-6)


def test_aligner_losses_and_discriminator_checks():
    aligner = AdversarialAligner(nn.Linear(5, 4), nn.Linear(3, 4), embed_dim=4, num_classes=2)
    out = aligner.losses((torch.randn(6, 5),), (torch.randn(6, 3),), torch.randint(0, 2, (6,)))
    assert set(out) == {"task", "disc", "task_acc", "disc_acc"}
    with pytest.raises(ValueError, match="embeddings"):
        ModalityDiscriminator(4)(torch.randn(2, 5))
    bad = AdversarialAligner(nn.Linear(5, 3), nn.Linear(3, 4), embed_dim=4, num_classes=2)
    with pytest.raises(ValueError, match="image encoder"):
        bad.losses((torch.randn(6, 5),), (torch.randn(6, 3),), torch.randint(0, 2, (6,)))


def test_cosine_classifier_ignores_norm_and_is_bounded():
    torch.manual_seed(0)
    head = CosineClassifier(4, 3, scale=5.0)
    z = torch.randn(6, 4)
    logits = head(z)
    assert logits.shape == (6, 3)
    assert torch.allclose(logits, head(7.0 * z), atol=1e-5)   # only the direction counts
    assert logits.abs().max() <= 5.0 + 1e-5                    # scale · cos lies in [-scale, scale]
    with pytest.raises(ValueError, match="embeddings"):
        head(torch.randn(6, 5))
    with pytest.raises(ValueError, match="scale"):
        CosineClassifier(4, 3, scale=0.0)


def test_aligner_normalises_embeddings_unless_scale_is_none():
    torch.manual_seed(0)
    images, texts = torch.randn(5, 5), torch.randn(5, 3)
    unit = AdversarialAligner(nn.Linear(5, 4), nn.Linear(3, 4), embed_dim=4, num_classes=2)
    for z in unit.embed((images,), (texts,)):
        assert torch.allclose(z.norm(dim=1), torch.ones(5), atol=1e-5)
    assert isinstance(unit.classifier, CosineClassifier)
    raw = AdversarialAligner(nn.Linear(5, 4), nn.Linear(3, 4), embed_dim=4, num_classes=2, scale=None)
    z_img, _ = raw.embed((images,), (texts,))
    assert torch.allclose(z_img, raw.image_encoder(images))
    assert isinstance(raw.classifier, nn.Linear)
    with pytest.raises(TypeError, match="image_encoder"):
        AdversarialAligner(lambda x: x, nn.Linear(3, 4), embed_dim=4, num_classes=2)
    with pytest.raises(ValueError, match="labels"):
        unit.losses((images,), (texts,), torch.zeros(4, dtype=torch.long))


def test_modality_loss_labels_images_one_and_texts_zero():
    disc = ModalityDiscriminator(2, hidden_dim=None)
    with torch.no_grad():
        disc.net[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        disc.net[0].bias.zero_()
    z_img = torch.tensor([[1.0, 0.0], [2.0, 1.0], [-1.0, 0.0]])   # two right, one wrong
    z_txt = torch.tensor([[-1.0, 0.0], [-3.0, 2.0]])              # both right
    loss, acc = modality_loss(disc, z_img, z_txt)
    assert acc.item() == pytest.approx(4 / 5)
    logits = torch.tensor([1.0, 2.0, -1.0, -1.0, -3.0])
    target = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0])
    assert loss.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, target).item())
    with pytest.raises(TypeError, match="ModalityDiscriminator"):
        modality_loss(nn.Linear(2, 1), z_img, z_txt)
    with pytest.raises(ValueError, match="text embeddings"):
        modality_loss(disc, z_img, torch.randn(2, 3))


def _shifted_modalities(n: int = 200, shift: float = 0.0, seed: int = 0):
    """Two modalities with the same classes; the text inputs are offset by ``shift``."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=gen)
    centres = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    images = centres[labels] + 0.3 * torch.randn(n, 3, generator=gen)
    texts = centres[labels] + 0.3 * torch.randn(n, 3, generator=gen) + torch.tensor([0, 0, shift])
    return images, texts, labels


def test_modality_probe_tells_apart_only_what_differs_and_keeps_rng():
    torch.manual_seed(0)
    aligner = AdversarialAligner(nn.Identity(), nn.Identity(), embed_dim=3, num_classes=2, scale=None)
    for shift, low, high in ((3.0, 0.95, 1.0), (0.0, 0.35, 0.65)):
        images, texts, _ = _shifted_modalities(shift=shift)
        test_images, test_texts, _ = _shifted_modalities(shift=shift, seed=1)
        state = torch.get_rng_state()
        acc = modality_probe(aligner, ((images,), (texts,)), ((test_images,), (test_texts,)))
        assert torch.equal(state, torch.get_rng_state())   # the probe leaves the global RNG alone
        assert low <= acc <= high
    assert aligner.training                                  # the aligner's mode is restored
    with pytest.raises(ValueError, match="train_inputs"):
        modality_probe(aligner, ((images,),), ((images,), (texts,)))


def _align_toy(strength: float):
    """Align two linear encoders on :func:`_shifted_modalities`; return the history."""
    torch.manual_seed(0)
    images, texts, labels = _shifted_modalities(n=512, shift=1.0)
    test_images, test_texts, test_labels = _shifted_modalities(n=512, shift=1.0, seed=1)
    aligner = AdversarialAligner(nn.Linear(3, 4), nn.Linear(3, 4), embed_dim=4, num_classes=2)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, texts, labels),
                                         batch_size=64, shuffle=True)
    train_in, test_in = ((images,), (texts,)), ((test_images,), (test_texts,))

    def evaluate(model):
        return {**alignment_accuracies(model, *test_in, test_labels),
                "probe_acc": modality_probe(model, train_in, test_in)}

    history = train_adversarial_alignment(aligner, loader, 2, 12, torch.device("cpu"),
                                          strength=strength, encoder_lr=3e-2,
                                          final_encoder_lr=3e-3, eval_fn=evaluate, progress=False)
    assert not aligner.training
    return history


def test_train_adversarial_alignment_removes_a_modality_offset():
    history = _align_toy(strength=1.0)
    assert len(history.metrics) == len(history.train_loss) == 14
    warm, last = history.metrics[1], history.metrics[-1]
    assert warm["probe_acc"] >= 0.95 and warm["disc_acc"] >= 0.9   # separable after the warm-up
    assert last["probe_acc"] <= 0.6 and last["disc_acc"] < warm["disc_acc"]   # no hyperplane now
    assert last["task_acc"] >= 0.95                                # and the task holds


def test_without_gradient_reversal_the_modalities_stay_apart():
    last = _align_toy(strength=0.0).metrics[-1]   # the same training with λ = 0 throughout
    assert last["probe_acc"] >= 0.95 and last["task_acc"] >= 0.95


def test_train_adversarial_alignment_checks_its_arguments():
    aligner = AdversarialAligner(nn.Linear(3, 4), nn.Linear(3, 4), embed_dim=4, num_classes=2)
    images, texts, labels = _shifted_modalities(n=8)
    loader = [(images, texts, labels)]
    cpu = torch.device("cpu")
    with pytest.raises(TypeError, match="AdversarialAligner"):
        train_adversarial_alignment(nn.Linear(3, 4), loader, 1, 1, cpu, progress=False)
    with pytest.raises(ValueError, match="warmup_epochs"):
        train_adversarial_alignment(aligner, loader, -1, 1, cpu, progress=False)
    with pytest.raises(ValueError, match="final_encoder_lr"):
        train_adversarial_alignment(aligner, loader, 0, 1, cpu, encoder_lr=1e-3,
                                    final_encoder_lr=1e-2, progress=False)
    with pytest.raises(ValueError, match="disc_weight_decay"):
        train_adversarial_alignment(aligner, loader, 0, 1, cpu, disc_weight_decay=-1.0,
                                    progress=False)
    with pytest.raises(ValueError, match="batch must be"):
        train_adversarial_alignment(aligner, [(images, labels)], 0, 1, cpu, progress=False)
    with pytest.raises(ValueError, match="no batches"):
        train_adversarial_alignment(aligner, [], 0, 1, cpu, progress=False)


# ---------------------------------------------------------------- errata
def test_erratum_article_feature_fusion_concatenates_not_adds():
    torch.manual_seed(0)
    article = ArticleFeatureFusion(4, 4)
    assert article.add.weight.shape == (4, 8)  # a linear map of [v; l]
    v, lang = torch.randn(1, 4), torch.randn(1, 4)
    assert not torch.allclose(article(v, lang), article(v + lang, torch.zeros(1, 4)))
    fixed = AdditiveFusion(4, 4, 4)
    fixed.vision_proj.load_state_dict(fixed.language_proj.state_dict())
    assert torch.allclose(fixed(v, lang), fixed(v + lang, torch.zeros(1, 4)), atol=1e-6)


def test_erratum_article_adversarial_fusion_undefined_and_no_adversary():
    with pytest.raises(NameError, match="vis_dim"):
        ArticleAdversarialFusion(nn.Linear(8, 4), nn.Linear(6, 4))
    fusion_module.vis_dim, fusion_module.lang_dim = 4, 4
    try:
        listing = ArticleAdversarialFusion(nn.Linear(8, 4), nn.Linear(6, 4))
    finally:
        del fusion_module.vis_dim, fusion_module.lang_dim
    out = listing(torch.randn(5, 8), torch.randn(5, 6))
    assert out.shape == (5, 1)                             # one guess per *pair*, not per modality
    assert listing.discriminator[0].in_features == 8       # it reads both modalities at once
    assert not hasattr(listing, "losses")                  # no loss: nothing says what to learn
    assert not any(isinstance(m, ModalityDiscriminator) for m in listing.modules())
