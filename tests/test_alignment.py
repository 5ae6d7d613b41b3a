"""Tests for cmlib.alignment: gradient reversal, the aligner, its trainer and the probes."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cmlib.alignment import (
    AdversarialAligner,
    CosineClassifier,
    ModalityDiscriminator,
    alignment_accuracies,
    grad_reverse,
    modality_loss,
    modality_probe,
    train_adversarial_alignment,
)


def _shifted_modalities(n: int = 200, shift: float = 0.0, seed: int = 0):
    """Two modalities with the same classes; the text inputs are offset by ``shift``."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=gen)
    centres = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    images = centres[labels] + 0.3 * torch.randn(n, 3, generator=gen)
    texts = centres[labels] + 0.3 * torch.randn(n, 3, generator=gen) + torch.tensor([0, 0, shift])
    return images, texts, labels


def _align_toy(strength: float):
    """Align two linear encoders on :func:`_shifted_modalities`; return the history."""
    torch.manual_seed(0)
    images, texts, labels = _shifted_modalities(n=512, shift=1.0)
    test_images, test_texts, test_labels = _shifted_modalities(n=512, shift=1.0, seed=1)
    aligner = AdversarialAligner(nn.Linear(3, 4), nn.Linear(3, 4), embed_dim=4, num_classes=2)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images, texts, labels), batch_size=64, shuffle=True
    )
    train_in, test_in = ((images,), (texts,)), ((test_images,), (test_texts,))

    def evaluate(model):
        return {
            **alignment_accuracies(model, *test_in, test_labels),
            "probe_acc": modality_probe(model, train_in, test_in),
        }

    history = train_adversarial_alignment(
        aligner,
        loader,
        2,
        12,
        torch.device("cpu"),
        strength=strength,
        encoder_lr=3e-2,
        final_encoder_lr=3e-3,
        eval_fn=evaluate,
        progress=False,
    )
    assert not aligner.training
    return history


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
        return (
            aligner.image_encoder.weight.grad.clone(),
            aligner.discriminator.net[0].weight.grad.clone(),
        )

    enc_reversed, disc_1 = grads(1.0)
    enc_zero, disc_0 = grads(0.0)
    assert torch.count_nonzero(enc_zero) == 0  # λ = 0: the encoders ignore the adversary
    assert torch.allclose(disc_1, disc_0)  # the discriminator always learns normally
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
    assert torch.allclose(logits, head(7.0 * z), atol=1e-5)  # only the direction counts
    assert logits.abs().max() <= 5.0 + 1e-5  # scale · cos lies in [-scale, scale]
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
    raw = AdversarialAligner(
        nn.Linear(5, 4), nn.Linear(3, 4), embed_dim=4, num_classes=2, scale=None
    )
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
    z_img = torch.tensor([[1.0, 0.0], [2.0, 1.0], [-1.0, 0.0]])  # two right, one wrong
    z_txt = torch.tensor([[-1.0, 0.0], [-3.0, 2.0]])  # both right
    loss, acc = modality_loss(disc, z_img, z_txt)
    assert acc.item() == pytest.approx(4 / 5)
    logits = torch.tensor([1.0, 2.0, -1.0, -1.0, -3.0])
    target = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0])
    assert loss.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, target).item())
    with pytest.raises(TypeError, match="ModalityDiscriminator"):
        modality_loss(nn.Linear(2, 1), z_img, z_txt)
    with pytest.raises(ValueError, match="text embeddings"):
        modality_loss(disc, z_img, torch.randn(2, 3))


def test_modality_probe_tells_apart_only_what_differs_and_keeps_rng():
    torch.manual_seed(0)
    aligner = AdversarialAligner(
        nn.Identity(), nn.Identity(), embed_dim=3, num_classes=2, scale=None
    )
    for shift, low, high in ((3.0, 0.95, 1.0), (0.0, 0.35, 0.65)):
        images, texts, _ = _shifted_modalities(shift=shift)
        test_images, test_texts, _ = _shifted_modalities(shift=shift, seed=1)
        state = torch.get_rng_state()
        acc = modality_probe(aligner, ((images,), (texts,)), ((test_images,), (test_texts,)))
        assert torch.equal(state, torch.get_rng_state())  # the probe leaves the global RNG alone
        assert low <= acc <= high
    assert aligner.training  # the aligner's mode is restored
    with pytest.raises(ValueError, match="train_inputs"):
        modality_probe(aligner, ((images,),), ((images,), (texts,)))


def test_train_adversarial_alignment_removes_a_modality_offset():
    history = _align_toy(strength=1.0)
    assert len(history.metrics) == len(history.train_loss) == 14
    warm, last = history.metrics[1], history.metrics[-1]
    assert warm["probe_acc"] >= 0.95 and warm["disc_acc"] >= 0.9  # separable after the warm-up
    assert last["probe_acc"] <= 0.6 and last["disc_acc"] < warm["disc_acc"]  # no hyperplane now
    assert last["task_acc"] >= 0.95  # and the task holds


def test_without_gradient_reversal_the_modalities_stay_apart():
    last = _align_toy(strength=0.0).metrics[-1]  # the same training with λ = 0 throughout
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
        train_adversarial_alignment(
            aligner, loader, 0, 1, cpu, encoder_lr=1e-3, final_encoder_lr=1e-2, progress=False
        )
    with pytest.raises(ValueError, match="disc_weight_decay"):
        train_adversarial_alignment(
            aligner, loader, 0, 1, cpu, disc_weight_decay=-1.0, progress=False
        )
    with pytest.raises(ValueError, match="batch must be"):
        train_adversarial_alignment(aligner, [(images, labels)], 0, 1, cpu, progress=False)
    with pytest.raises(ValueError, match="no batches"):
        train_adversarial_alignment(aligner, [], 0, 1, cpu, progress=False)


# ---------------------------------------------------------------- Procrustes and CSLS
def test_procrustes_recovers_a_planted_rotation_exactly():
    from cmlib.alignment import cosine_scores, precision_at_1, procrustes

    torch.manual_seed(0)
    x = torch.randn(50, 8)
    q, _ = torch.linalg.qr(torch.randn(8, 8))
    w = procrustes(x, x @ q)
    assert torch.allclose(w, q, atol=1e-5)
    assert torch.allclose(w @ w.T, torch.eye(8), atol=1e-5)
    assert precision_at_1(cosine_scores(x @ w, x @ q)) == 1.0
    with pytest.raises(ValueError):
        procrustes(x, x[:10])


def test_csls_against_a_hand_computation():
    from cmlib.alignment import csls_scores

    mapped = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    target = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    cos = (
        torch.nn.functional.normalize(mapped, dim=1)
        @ torch.nn.functional.normalize(target, dim=1).T
    )
    k = 1
    r_t = cos.max(dim=1).values  # each source's best target cosine (k = 1)
    r_s = cos.max(dim=0).values  # each target's best source cosine
    expected = 2 * cos - r_t[:, None] - r_s[None, :]
    assert torch.allclose(csls_scores(mapped, target, k), expected)
    # by hand for one entry: source 1 = (0, 1), target 1 = (0.6, 0.8)
    assert csls_scores(mapped, target, 1)[1, 1].item() == pytest.approx(
        2 * 0.8 - 0.8 - 0.98995, abs=1e-4
    )
    with pytest.raises(ValueError, match="k"):
        csls_scores(mapped, target, k=5)  # k larger than the vocabulary


def test_csls_demotes_a_hub():
    from cmlib.alignment import cosine_scores, csls_scores

    torch.manual_seed(1)
    target = torch.nn.functional.normalize(torch.randn(20, 16), dim=1)
    hub = target.mean(0, keepdim=True) * 5
    target = torch.cat([target, torch.nn.functional.normalize(hub, dim=1)])
    sources = target[:20] + 0.3 * torch.randn(20, 16)
    nn_hits = (cosine_scores(sources, target).argmax(1) == 20).sum()
    csls_hits = (csls_scores(sources, target, 5).argmax(1) == 20).sum()
    assert csls_hits <= nn_hits


def test_refine_improves_a_rough_map():
    from cmlib.alignment import cosine_scores, precision_at_1, procrustes, refine

    torch.manual_seed(2)
    x = torch.randn(300, 20)
    q, _ = torch.linalg.qr(torch.randn(20, 20))
    y = x @ q + 0.05 * torch.randn(300, 20)
    rough = procrustes(x[:25], y[:25] + 0.8 * torch.randn(25, 20))  # 25 noisy seed pairs
    before = precision_at_1(cosine_scores(x @ rough, y))
    after = precision_at_1(cosine_scores(x @ refine(rough, x, y), y))
    assert before < 0.9 and after == 1.0


# ---------------------------------------------------------------- DANN
def test_grl_schedule_ramps_from_zero_to_one():
    from cmlib.alignment import grl_schedule

    values = [grl_schedule(p / 10) for p in range(11)]
    assert values[0] == 0.0 and values[-1] > 0.99
    assert all(a < b for a, b in zip(values, values[1:]))
    with pytest.raises(ValueError):
        grl_schedule(1.5)


def test_train_dann_logs_the_domain_game_only_when_adapting():
    from cmlib.alignment import DomainAdaptationNet, label_accuracy, train_dann

    torch.manual_seed(0)
    x, t = torch.rand(32, 3, 16, 16), torch.rand(40, 3, 16, 16)
    attrs = {"color": torch.randint(0, 6, (32,)), "shape": torch.randint(0, 3, (32,))}
    model = DomainAdaptationNet(16, width=4)
    history = train_dann(model, x, attrs, t, 4, torch.device("cpu"), batch_size=8, progress=False)
    assert {"domain_loss", "domain_accuracy", "lambda", "label_loss"} <= set(history.steps)
    assert history.steps["lambda"][0] == 0.0 and history.steps["lambda"][-1] > 0.99
    history = train_dann(
        model, x, attrs, None, 2, torch.device("cpu"), adapt=False, batch_size=8, progress=False
    )
    assert "domain_loss" not in history.steps
    history = train_dann(
        model, x, attrs, t, 2, torch.device("cpu"), batch_size=8, entropy_weight=0.1, progress=False
    )
    assert "target_entropy" in history.steps
    acc = label_accuracy(model, x, attrs)
    assert set(acc) == {"color", "shape", "color+shape"}
    with pytest.raises(TypeError):
        train_dann(model, x, attrs, None, 2, torch.device("cpu"), adapt=True)
    with pytest.raises(ValueError):
        train_dann(model, x, attrs, torch.rand(5, 3, 32, 32), 2, torch.device("cpu"))


def test_lr_annealing_is_ganins_schedule_and_train_dann_follows_it(monkeypatch):
    from cmlib.alignment import DomainAdaptationNet, lr_annealing, train_dann

    assert lr_annealing(0.0) == 1.0
    assert lr_annealing(1.0) == pytest.approx(11**-0.75)
    assert lr_annealing(0.5, alpha=2.0, beta=1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        lr_annealing(-0.1)
    torch.manual_seed(0)
    x = torch.rand(16, 3, 16, 16)
    attrs = {"color": torch.randint(0, 6, (16,)), "shape": torch.randint(0, 3, (16,))}
    seen = []

    class Spy(torch.optim.Adam):  # records the rate each update is taken at
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "Adam", Spy)
    cpu = torch.device("cpu")
    for anneal in (False, True):
        model = DomainAdaptationNet(16, width=4)
        train_dann(
            model,
            x,
            attrs,
            None,
            5,
            cpu,
            adapt=False,
            batch_size=4,
            lr=0.1,
            progress=False,
            anneal_lr=anneal,
        )
    assert seen[:5] == [0.1] * 5
    assert seen[5:] == pytest.approx([0.1 * lr_annealing(s / 4) for s in range(5)])
    with pytest.raises(TypeError, match="anneal_lr"):
        train_dann(
            DomainAdaptationNet(16, width=4), x, attrs, None, 1, cpu, adapt=False, anneal_lr="yes"
        )


def test_gradient_reversal_pushes_the_encoder_against_the_domain_discriminator():
    from cmlib.alignment import DomainAdaptationNet, grad_reverse

    torch.manual_seed(0)
    model = DomainAdaptationNet(16, width=4)
    x = torch.rand(4, 3, 16, 16)
    grads = []
    for reverse in (False, True):
        model.zero_grad()
        h = model.features(x)
        h = grad_reverse(h, 1.0) if reverse else h
        model.domain_logits(h).sum().backward()
        grads.append(model.encoder.project.weight.grad.clone())
    assert torch.allclose(grads[1], -grads[0])


# ---------------------------------------------------------------- unsupervised maps
def test_orthogonalize_moves_towards_an_orthogonal_matrix():
    from cmlib.alignment import OrthogonalMap

    torch.manual_seed(0)
    m = OrthogonalMap(6)
    with torch.no_grad():
        m.weight.add_(0.05 * torch.randn(6, 6))

    def gap():
        return (m.weight @ m.weight.T - torch.eye(6)).norm().item()

    before = gap()
    for _ in range(50):
        m.orthogonalize(0.1)
    assert gap() < 0.1 * before


def test_mean_csls_similarity_prefers_the_true_rotation():
    from cmlib.alignment import mean_csls_similarity

    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(200, 10), dim=1)
    q, _ = torch.linalg.qr(torch.randn(10, 10))
    y = x @ q
    wrong, _ = torch.linalg.qr(torch.randn(10, 10))
    assert mean_csls_similarity(x @ q, y) > mean_csls_similarity(x @ wrong, y) + 0.2


def test_adversarial_maps_train_keep_orthogonal_and_close_the_cycle():
    from cmlib.alignment import train_adversarial_maps

    torch.manual_seed(0)
    source = torch.nn.functional.normalize(torch.randn(300, 8), dim=1)
    q, _ = torch.linalg.qr(torch.randn(8, 8))
    target = source[torch.randperm(300)] @ q  # the same cloud, rotated and unpaired

    def game(cycle_weight, seed=0):
        return train_adversarial_maps(
            source, target, 60, batch_size=32, hidden=16, d_steps=1,
            cycle_weight=cycle_weight, seed=seed, progress=False,
        )  # fmt: skip

    w, v, history = game(1.0)
    assert {k: len(s) for k, s in history.steps.items()} == {"loss": 60, "d_loss": 60, "cycle": 60}
    assert history.train_loss == [pytest.approx(sum(history.steps["loss"]) / 60)]
    for m in (w, v):  # the maps stay (nearly) orthogonal: rotations, not squashes
        assert (m.weight @ m.weight.T - torch.eye(8)).abs().max() < 0.05
        assert not torch.allclose(m.weight, torch.eye(8))  # and they moved
    # both maps start at the identity; the cycle term keeps V the inverse of W as they move,
    # which two independent games do not (seeds 0-2: 10-20 times less cycle error)
    _, _, free = game(0.0)
    assert sum(history.steps["cycle"][-10:]) < 0.5 * sum(free.steps["cycle"][-10:])
    # the same seed replays the same game
    w_again, _, _ = game(1.0)
    assert torch.equal(w.weight, w_again.weight)
    with pytest.raises(ValueError, match="batch_size"):
        train_adversarial_maps(source, target, 5, batch_size=301, progress=False)
    with pytest.raises(ValueError):
        train_adversarial_maps(source, target[:, :4], 5, progress=False)
