"""Tokenizer and vocabulary."""

import pytest
import torch

from cmlib.text import Vocab, pad_sequences, tokenize


def test_tokenize():
    assert tokenize("A Red circle, left?") == ["a", "red", "circle", "left"]
    assert tokenize("Is it red?", keep_punctuation=True)[-1] == "?"
    with pytest.raises(TypeError):
        tokenize(3)


def test_vocab_round_trip_and_unknowns():
    vocab = Vocab.build(["a red circle", "a blue square", "a red square"])
    assert vocab.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert vocab.itos[4] == "a"  # most frequent first
    ids = vocab.encode("a red square", add_bos_eos=True)
    assert ids[0] == vocab.bos_id and ids[-1] == vocab.eos_id
    assert vocab.decode(ids) == "a red square"
    assert vocab.encode("a green square")[1] == vocab.unk_id
    with pytest.raises(KeyError, match="green"):
        vocab.encode("a green square", strict=True)


def test_vocab_limits_and_errors():
    vocab = Vocab.build(["x x x y y z"], min_freq=2)
    assert "z" not in vocab and "x" in vocab
    assert len(Vocab.build(["x x y z"], max_size=1)) == 5
    with pytest.raises(ValueError, match="empty"):
        Vocab.build([])
    with pytest.raises(ValueError, match="empty"):
        Vocab.build(["", "  ?"])
    with pytest.raises(ValueError):
        vocab.decode([999])


def test_padding():
    ids, lengths = pad_sequences([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]
    vocab = Vocab.build(["a b c"])
    batch, lens = vocab.encode_batch(["a b", "c"], max_len=1)
    assert batch.shape == (2, 1) and lens.tolist() == [1, 1]
    with pytest.raises(TypeError):
        vocab.encode_batch("a b")
    assert isinstance(ids, torch.Tensor)
