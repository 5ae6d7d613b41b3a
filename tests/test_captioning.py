"""cmlib.captioning: the decoders, decoding, training and meaning-based evaluation."""

import pytest
import torch

from cmlib.captioning import (
    AttentionCaptioner,
    BottleneckCaptioner,
    CaptionBatches,
    NearestNeighbourCaptioner,
    attention_in_object,
    beam_search,
    caption_scores,
    corpus_bleu,
    decode,
    greedy_decode,
    hallucination_rate,
    masked_cross_entropy,
    sample_decode,
    train_captioner,
)
from cmlib.captioning.decoding import normalised_score
from cmlib.captioning.evaluation import object_coverage
from cmlib.captioning.models import additive_attention, attention_coverage_penalty
from cmlib.data.shapes import Obj, Scene
from cmlib.data.shapes.captioning import (
    STYLE_PROMPTS,
    brief_caption,
    caption_vocab,
    load_captioning,
    style_index,
)
from cmlib.data.shapes.parse import caption_form, parse_caption
from cmlib.data.shapes.text import canonical_caption
from cmlib.exercises import ch05

VOCAB = caption_vocab()
RED = Obj("circle", "red", "small", 0.3, 0.5, 0.12)
BLUE = Obj("square", "blue", "large", 0.75, 0.5, 0.18)
ONE = Scene((RED,), "photo", position="left")
TWO = Scene((RED, BLUE), "photo", relation="left of")


def small_model(cls=AttentionCaptioner, seed=0):
    torch.manual_seed(seed)
    return cls(len(VOCAB), grid_channels=8, grid_size=4, embed_dim=8, hidden_dim=16).eval()


def grids(n=5, seed=1):
    return torch.randn(n, 8, 4, 4, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cls", [AttentionCaptioner, BottleneckCaptioner])
def test_forward_shapes_and_attention(cls):
    model = small_model(cls)
    inputs = torch.randint(1, len(VOCAB), (3, 6))
    logits, attention = model(grids(3), inputs, torch.tensor([0, 1, 2]), return_attention=True)
    assert logits.shape == (3, 6, len(VOCAB))
    if cls is AttentionCaptioner:
        assert attention.shape == (3, 6, 16)
        assert torch.allclose(attention.sum(2), torch.ones(3, 6), atol=1e-5)
    else:
        assert attention is None


def test_additive_attention_matches_the_formula():
    torch.manual_seed(0)
    w_q, w_k, v = torch.nn.Linear(5, 4), torch.nn.Linear(3, 4), torch.nn.Linear(4, 1)
    query, regions = torch.randn(2, 5), torch.randn(2, 6, 3)
    context, alpha = additive_attention(query, w_k(regions), regions, w_q, v)
    scores = torch.stack(
        [
            torch.stack(
                [v(torch.tanh(w_q(query[b]) + w_k(regions[b, i]))).squeeze() for i in range(6)]
            )
            for b in range(2)
        ]
    )
    assert torch.allclose(alpha, torch.softmax(scores, 1), atol=1e-6)
    assert torch.allclose(context, (alpha[:, :, None] * regions).sum(1), atol=1e-6)


@pytest.mark.parametrize("cls", [AttentionCaptioner, BottleneckCaptioner])
def test_beam_width_one_is_greedy(cls):
    model, g, style = small_model(cls), grids(6), torch.tensor([0, 1, 2, 0, 1, 2])
    greedy = greedy_decode(model, g, style, VOCAB, max_len=12)
    beam = beam_search(model, g, style, VOCAB, beam_width=1, max_len=12, length_penalty=0.7)
    assert torch.equal(greedy.tokens, beam.tokens)
    assert torch.allclose(greedy.log_prob, beam.log_prob, atol=1e-5)


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_a_batch_captions_as_single_images_do(method):
    model, g, style = small_model(), grids(5), torch.tensor([0, 1, 2, 1, 0])
    batch = decode(model, g, style, VOCAB, method=method, max_len=10)
    for i in range(5):
        single = decode(model, g[i : i + 1], style[i : i + 1], VOCAB, method=method, max_len=10)
        assert batch.texts(VOCAB)[i] == single.texts(VOCAB)[0]


def test_beam_search_finds_at_least_greedys_score():
    model, g, style = small_model(), grids(8), torch.zeros(8, dtype=torch.long)
    greedy = greedy_decode(model, g, style, VOCAB, max_len=10)
    beam = beam_search(model, g, style, VOCAB, beam_width=4, max_len=10, length_penalty=0.0)
    finished = (greedy.tokens == VOCAB.eos_id).any(1) & (beam.tokens == VOCAB.eos_id).any(1)
    assert (beam.log_prob[finished] >= greedy.log_prob[finished] - 1e-5).all()


def test_decoded_tokens_stop_at_eos_and_pad_after():
    out = greedy_decode(small_model(), grids(4), torch.zeros(4, dtype=torch.long), VOCAB, 15)
    for row in out.tokens.tolist():
        if VOCAB.eos_id in row:
            end = row.index(VOCAB.eos_id)
            assert all(t == VOCAB.pad_id for t in row[end + 1 :])
    assert out.attention.shape[:2] == out.tokens.shape


def test_sampling_is_reproducible_and_temperature_checked():
    model, g, style = small_model(), grids(4), torch.zeros(4, dtype=torch.long)
    a = sample_decode(model, g, style, VOCAB, 1.0, generator=torch.Generator().manual_seed(3))
    b = sample_decode(model, g, style, VOCAB, 1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.tokens, b.tokens)
    with pytest.raises(ValueError):
        sample_decode(model, g, style, VOCAB, temperature=0.0)


def test_normalised_score():
    lp, length = torch.tensor([-4.0, -4.0]), torch.tensor([2, 4])
    assert torch.equal(normalised_score(lp, length, 0.0), lp)
    assert torch.allclose(normalised_score(lp, length, 1.0), torch.tensor([-2.0, -1.0]))


def test_masked_loss_ignores_padding():
    torch.manual_seed(0)
    logits, targets = torch.randn(2, 5, 7), torch.tensor([[3, 4, 2, 0, 0], [5, 2, 0, 0, 0]])
    loss = masked_cross_entropy(logits, targets, pad_id=0)
    changed = logits.clone()
    changed[0, 3:], changed[1, 2:] = 100 * torch.randn(2, 7), 100 * torch.randn(3, 7)
    assert torch.allclose(loss, masked_cross_entropy(changed, targets, pad_id=0))
    real = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    expected = torch.stack(
        [
            torch.nn.functional.cross_entropy(logits[b, t][None], targets[b, t][None])
            for b, t in real
        ]
    ).mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    with pytest.raises(ValueError, match="no real token"):
        masked_cross_entropy(logits, torch.zeros(2, 5, dtype=torch.long))


def test_coverage_penalty_is_zero_for_even_attention():
    attention = torch.full((2, 4, 4), 0.25)
    assert attention_coverage_penalty(attention, torch.ones(2, 4)).item() == pytest.approx(0)
    peaked = torch.zeros(2, 4, 4)
    peaked[:, :, 0] = 1
    assert attention_coverage_penalty(peaked, torch.ones(2, 4)).item() > 0


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda m: greedy_decode(m, torch.zeros(0, 8, 4, 4), torch.zeros(0).long(), VOCAB),
            "empty",
        ),
        (
            lambda m: greedy_decode(m, torch.zeros(2, 8, 8, 8), torch.zeros(2).long(), VOCAB),
            "expected grids",
        ),
        (
            lambda m: beam_search(m, grids(2), torch.zeros(2).long(), VOCAB, beam_width=0),
            "beam_width",
        ),
        (lambda m: greedy_decode(m, grids(2), torch.zeros(2).long(), VOCAB, max_len=0), "max_len"),
        (lambda m: decode(m, grids(2), torch.zeros(2).long(), VOCAB, method="topk"), "method"),
        (lambda m: style_index("shout"), "style prompt"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(small_model())


def test_style_prompts():
    assert [style_index(p) for p in STYLE_PROMPTS] == [0, 1, 2]
    assert style_index("  In   Detail ") == 2
    with pytest.raises(TypeError):
        style_index(3)
    assert brief_caption(ONE) == "a red circle"
    assert brief_caption(TWO) == "a red circle and a blue square"
    assert caption_form(parse_caption(brief_caption(TWO))) == "brief"
    assert caption_form(parse_caption(canonical_caption(TWO))) == "detailed"


def test_caption_data_and_batches(tmp_path, monkeypatch):
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))
    data = load_captioning("train", num_images=12, seed=0)
    assert data.ids.shape[:2] == (12, 5) and data.images.shape == (12, 3, 32, 32)
    assert set(data.cells) == {"pair", "color", "shape", "size"}
    for i in range(12):
        assert VOCAB.decode(data.detailed_ids[i].tolist()) == canonical_caption(data.scenes[i])
        assert VOCAB.decode(data.brief_ids[i].tolist()) == brief_caption(data.scenes[i])
        assert [VOCAB.decode(r.tolist()) for r in data.ids[i]] == data.references[i]
    batches = CaptionBatches(data, grids(12), batch_size=5, seed=0)
    assert len(batches) == 3
    g, inputs, targets, style = next(iter(batches))
    assert inputs.shape == targets.shape and torch.equal(inputs[:, 1:], targets[:, :-1])
    assert (inputs[:, 0] == VOCAB.bos_id).all()
    assert (targets != VOCAB.pad_id).sum(1).max() == targets.shape[1]  # trimmed
    with pytest.raises(ValueError, match="style_mix"):
        CaptionBatches(data, grids(12), style_mix=(0.5, 0.5))


def test_training_lowers_the_loss(tmp_path, monkeypatch):
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))
    data = load_captioning("train", num_images=8, seed=0)
    model = small_model()
    history = train_captioner(
        model,
        data,
        grids(8),
        30,
        torch.device("cpu"),
        batch_size=8,
        lr=3e-2,
        scheduled_sampling=0.25,
        coverage_weight=0.1,
        progress=False,
    )
    assert history.train_loss[-1] < 0.6 * history.train_loss[0]
    assert {"xent", "coverage"} <= set(history.steps)


def test_caption_scores_and_hallucination():
    truth = [canonical_caption(ONE), canonical_caption(TWO)]
    assert caption_scores(truth, [ONE, TWO])["exact"] == 1.0
    assert hallucination_rate(truth, [ONE, TWO]) == 0.0
    wrong = [
        "a small green circle on the left",
        "a small red circle to the right of a large blue square",
    ]
    scores = caption_scores(wrong, [ONE, TWO])
    assert scores["exact"] == 0.0 and scores["color"] == 0.5 and scores["where"] == 0.0
    assert hallucination_rate(wrong, [ONE, TWO]) == pytest.approx(1 / 3)
    assert hallucination_rate(["gibberish words"], [ONE]) == 1.0
    assert caption_scores(["gibberish words"], [ONE])["parsed"] == 0.0
    with pytest.raises(ValueError):
        caption_scores([], [])


def test_sacrebleu_agrees_with_the_exercise_bleu():
    pytest.importorskip("sacrebleu")
    candidates = [
        "a small red circle on the left",
        "a big blue box to the right of a red ball",
        "there is a small green triangle at the top",
    ]
    references = [
        [
            "a small red circle on the left",
            "there is a little red ball to the left",
            "a red circle on the left",
        ],
        [
            "a large blue square right of a small red circle",
            "a huge blue box to the right of a tiny red ball",
            "a blue square to the right of a red circle",
        ],
        [
            "a small green triangle at the top",
            "there is a tiny green wedge near the top",
            "up top there is a small green triangle",
        ],
    ]
    assert corpus_bleu(candidates, references) == pytest.approx(
        ch05.corpus_bleu_by_hand(candidates, references), abs=1e-6
    )
    assert corpus_bleu(references[0][:1], [references[0]]) == pytest.approx(100.0)


def test_attention_in_object_measures_mass_on_the_object():
    image_size, grid = 32, 4
    coverage = object_coverage(RED, image_size, grid)
    on_object = coverage / coverage.sum()
    tokens = torch.tensor(
        [[VOCAB[w] for w in "small red circle on the left".split()] + [VOCAB.eos_id]]
    )
    attention = on_object.repeat(1, tokens.shape[1], 1)
    out = attention_in_object(attention, tokens, [ONE], VOCAB, image_size)
    assert out["words"] == 2
    assert out["mass"] == pytest.approx(float(on_object @ coverage), rel=1e-5)
    uniform = torch.full_like(attention, 1 / grid**2)
    assert attention_in_object(uniform, tokens, [ONE], VOCAB, image_size)["ratio"] == (
        pytest.approx(1.0, rel=1e-5)
    )
    with pytest.raises(ValueError, match="nothing to measure"):
        attention_in_object(uniform, torch.full_like(tokens, VOCAB.eos_id), [ONE], VOCAB, 32)


def test_nearest_neighbour_captioner_repeats_training_captions():
    train = grids(6)
    captioner = NearestNeighbourCaptioner(train, [f"caption {i}" for i in range(6)])
    assert captioner(train[[4, 1]]) == ["caption 4", "caption 1"]
    with pytest.raises(ValueError):
        captioner(torch.randn(2, 8, 2, 2))


def test_exposure_helpers_accept_either_object_order(tmp_path, monkeypatch):
    from cmlib.captioning.evaluation import (
        accuracy_by_position,
        free_running_tokens,
        mirrored_caption,
    )
    from cmlib.data.shapes.parse import agreement

    assert agreement(parse_caption(mirrored_caption(TWO)), TWO)["exact"]
    assert mirrored_caption(ONE) == canonical_caption(ONE)
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))
    data = load_captioning("train", num_images=10, seed=0)
    as_written = data.detailed_ids[:, 1:]
    mirrored, _ = VOCAB.encode_batch([mirrored_caption(s) for s in data.scenes], add_bos_eos=True)
    for decoded in (as_written, mirrored[:, 1:]):
        pred, target = free_running_tokens(decoded, data, VOCAB)
        per_position, overall = accuracy_by_position(pred, target, VOCAB.pad_id)
        assert overall == 1.0 and (per_position == 1.0).all()
    wrong = as_written.clone()
    wrong[:, 0] = VOCAB["the"]
    _, overall = accuracy_by_position(*free_running_tokens(wrong, data, VOCAB), VOCAB.pad_id)
    assert overall < 1.0


def test_caption_images_checks_its_inputs():
    from cmlib.captioning import caption_images
    from cmlib.vision import ConvEncoder

    encoder = ConvEncoder(image_size=32, width=2, embed_dim=4)  # 8 channels, a 4×4 grid
    model = small_model()
    out = caption_images(model, encoder, torch.rand(2, 3, 32, 32), VOCAB, "briefly")
    assert len(out.texts(VOCAB)) == 2
    with pytest.raises(ValueError):
        caption_images(model, encoder, torch.rand(2, 3, 16, 16), VOCAB)  # wrong image size
    with pytest.raises(ValueError, match="style prompt"):
        caption_images(model, encoder, torch.rand(2, 3, 32, 32), VOCAB, "loudly")
    with pytest.raises(ValueError, match="empty"):
        caption_images(model, encoder, torch.rand(0, 3, 32, 32), VOCAB)


def test_slot_captioner_takes_content_words_from_the_context_only():
    from cmlib.captioning import SlotCaptioner
    from cmlib.data.shapes.captioning import content_slots

    torch.manual_seed(0)
    model = SlotCaptioner(
        len(VOCAB),
        8,
        4,
        embed_dim=8,
        hidden_dim=16,
        content_slots=content_slots(),
        vocab_itos=VOCAB.itos,
    ).eval()
    h, context = torch.randn(3, 16), torch.randn(3, 10)
    logits = model.readout(h, context)
    other_h = model.readout(torch.randn(3, 16), context)
    red, triangle = VOCAB["red"], VOCAB["triangle"]
    # within a slot, the state shifts every word equally: the ranking of colours is the image's
    assert torch.allclose(
        logits[:, red] - logits[:, VOCAB["blue"]],
        other_h[:, red] - other_h[:, VOCAB["blue"]],
        atol=1e-5,
    )
    assert torch.allclose(
        logits[:, triangle] - logits[:, VOCAB["circle"]],
        other_h[:, triangle] - other_h[:, VOCAB["circle"]],
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="not in the vocabulary"):
        SlotCaptioner(len(VOCAB), 8, 4, content_slots={"x": ["zebra"]}, vocab_itos=VOCAB.itos)
