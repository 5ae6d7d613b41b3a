"""Sequence models: TextEncoder, the bag-of-embeddings baseline, the order task, FixedLSTM."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cmlib.data.shapes import COLORS, SHAPES, pair_label
from cmlib.data.shapes.tasks import left_object_data
from cmlib.data.shapes.text import shapes_vocab
from cmlib.sequence import BagOfEmbeddings, FixedLSTM, SentenceClassifier, TextEncoder


def test_bag_of_embeddings_ignores_order_and_padding():
    torch.manual_seed(0)
    model = BagOfEmbeddings(10, 4, 6).eval()
    ids = torch.tensor([[4, 5, 6, 0], [6, 5, 4, 0], [4, 5, 6, 7]])
    out = model(ids, torch.tensor([3, 3, 3]))
    assert out.shape == (3, 6)
    assert torch.allclose(out[0], out[1]) and torch.allclose(out[0], out[2])
    with pytest.raises(ValueError, match="lengths"):
        model(ids, torch.tensor([3, 3]))


def test_text_encoder_tells_orders_apart():
    torch.manual_seed(0)
    model = TextEncoder(10, 4, 6, cell="gru").eval()
    out = model(torch.tensor([[4, 5, 6], [6, 5, 4]]), torch.tensor([3, 3]))
    assert not torch.allclose(out[0], out[1])


def test_left_object_data_labels_the_left_object():
    texts, labels = left_object_data("val", num_scenes=40, seed=0)
    assert len(texts) == len(labels) > 0 and len(texts) % 5 == 0
    for text, label in zip(texts, labels):
        assert COLORS[label // len(SHAPES)] in text and ("left" in text or "right" in text)
        assert "above" not in text and "below" not in text
    for canonical, label in zip(texts[::5], labels[::5]):  # "a small red circle left of a ..."
        words = canonical.split()
        colours = [w for w in words if w in COLORS]
        shapes = [w for w in words if w in SHAPES]
        first, second = pair_label(colours[0], shapes[0]), pair_label(colours[1], shapes[1])
        assert label == (first if " left of " in canonical else second)
    with pytest.raises(ValueError, match="num_scenes"):
        left_object_data(num_scenes=0)


def test_order_task_gru_loss_falls():
    torch.manual_seed(0)
    vocab = shapes_vocab()
    texts, labels = left_object_data("train", num_scenes=300)
    ids, lengths = vocab.encode_batch(texts)
    gru = SentenceClassifier(TextEncoder(len(vocab), 16, 32, cell="gru"), 18)
    optimizer = torch.optim.Adam(gru.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = F.cross_entropy(gru(ids, lengths), labels)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first * 0.7


def test_sentence_classifier_shapes_and_bad_classes():
    model = SentenceClassifier(BagOfEmbeddings(10, 4, 6), 3)
    assert model(torch.tensor([[4, 5]]), torch.tensor([2])).shape == (1, 3)
    with pytest.raises(ValueError, match="num_classes"):
        SentenceClassifier(BagOfEmbeddings(10, 4, 6), 1)


def test_fixed_lstm_returns_outputs_and_final_states():
    x = torch.randn(2, 7, 16)
    output, h_n, c_n = FixedLSTM(16, 32)(x)
    assert output.shape == (2, 7, 32) and h_n.shape == (2, 32) and c_n.shape == (2, 32)
    assert torch.allclose(output[:, -1], h_n)
    with pytest.raises(ValueError, match="expected x \\(B, T, 16\\)"):
        FixedLSTM(16, 32)(torch.randn(2, 7))


def test_lstm_step_is_an_lstm_cell():
    from cmlib.sequence import lstm_step

    torch.manual_seed(0)
    cell = nn.LSTMCell(3, 4)
    x, h, c = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    expected_h, expected_c = cell(x, (h, c))
    got_h, got_c = lstm_step(x, h, c, cell.weight_ih, cell.weight_hh, cell.bias_ih + cell.bias_hh)
    assert torch.allclose(got_h, expected_h, atol=1e-6)
    assert torch.allclose(got_c, expected_c, atol=1e-6)


def test_the_step_encoder_is_the_packed_lstm_and_ignores_padding():
    from cmlib.sequence import StepLSTMEncoder

    torch.manual_seed(0)
    steps = StepLSTMEncoder(vocab_size=12, embed_dim=5, hidden_dim=6)
    packed = TextEncoder(vocab_size=12, embed_dim=5, hidden_dim=6, cell="lstm")
    packed.embedding.load_state_dict(steps.embedding.state_dict())
    packed.rnn.weight_ih_l0.data.copy_(steps.cell.weight_ih)
    packed.rnn.weight_hh_l0.data.copy_(steps.cell.weight_hh)
    packed.rnn.bias_ih_l0.data.copy_(steps.cell.bias_ih)
    packed.rnn.bias_hh_l0.data.copy_(steps.cell.bias_hh)
    ids = torch.randint(1, 12, (3, 7))
    lengths = torch.tensor([7, 1, 4])
    ids[1, 1:], ids[2, 4:] = 0, 0
    assert torch.allclose(steps(ids, lengths), packed(ids, lengths), atol=1e-5)
    longer = torch.cat([ids, torch.zeros(3, 2, dtype=torch.long)], dim=1)  # more padding
    assert torch.allclose(steps(longer, lengths), steps(ids, lengths), atol=1e-6)


def test_the_step_encoder_runs_the_step_it_is_given():
    from cmlib.sequence import StepLSTMEncoder, lstm_step

    calls = []

    def counted(*args):
        calls.append(1)
        return lstm_step(*args)

    encoder = StepLSTMEncoder(10, 4, 5, step_fn=counted)
    out = encoder(torch.randint(1, 10, (2, 6)), torch.tensor([6, 3]))
    assert out.shape == (2, 5) and len(calls) == 6  # the longest sentence's steps
    with pytest.raises(TypeError, match="step_fn"):
        StepLSTMEncoder(10, 4, 5, step_fn="lstm")
