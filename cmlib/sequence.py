"""Sequence models: recurrent sentence encoders (RNN, LSTM, GRU).

:class:`TextEncoder` is the text tower the course reuses: an embedding, a
recurrent layer, and the final hidden state as the sentence vector. Padding
is handled with packed sequences, so ``<pad>`` tokens never change the result.

Also here: :class:`BagOfEmbeddings`, the order-blind baseline;
:class:`SentenceClassifier` (an encoder plus a linear head); the word-order task
:func:`left_object_data`; and the article's LSTM listing (:class:`ArticleLSTM`)
with its correction (:class:`FixedLSTM`) for chapter 02's errata box.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def check_token_batch(ids: torch.Tensor, lengths: torch.Tensor) -> None:
    """Raise ValueError unless ``ids`` is ``(B, T)`` integer and ``lengths`` ``(B,)`` in 1..T."""
    if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.is_floating_point():
        raise ValueError(f"expected integer token ids of shape (B, T), got "
                         f"{getattr(ids, 'shape', type(ids).__name__)}")
    if not isinstance(lengths, torch.Tensor) or lengths.shape != ids.shape[:1]:
        raise ValueError(f"expected lengths of shape ({ids.shape[0]},), got "
                         f"{getattr(lengths, 'shape', type(lengths).__name__)}")
    if len(lengths) and (lengths.min() < 1 or lengths.max() > ids.shape[1]):
        raise ValueError(f"lengths must lie in 1..{ids.shape[1]}, got {lengths.min()}..{lengths.max()}")


class TextEncoder(nn.Module):
    """Embedding → RNN/LSTM/GRU → last hidden state.

    Args:
        vocab_size: number of token ids.
        embed_dim: size of the word embeddings.
        hidden_dim: size of the recurrent state.
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        bidirectional: also read the sentence right to left.
        pad_id: the padding id (its embedding stays zero).

    Shapes:
        ``forward(ids (B, T), lengths (B,))`` → ``(B, out_dim)``, with
        ``out_dim = hidden_dim * (2 if bidirectional else 1)``.
        ``forward_tokens(ids, lengths)`` → ``(B, T, out_dim)`` (zeros at padding).
    """

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_dim: int = 128,
                 cell: str = "gru", bidirectional: bool = False, pad_id: int = 0):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        self.cell, self.bidirectional = cell, bidirectional
        self.out_dim = hidden_dim * (2 if bidirectional else 1)
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.rnn = CELLS[cell](embed_dim, hidden_dim, batch_first=True, bidirectional=bidirectional)

    def _run(self, ids: torch.Tensor, lengths: torch.Tensor):
        check_token_batch(ids, lengths)
        packed = pack_padded_sequence(self.embedding(ids), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        return self.rnn(packed)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        _, hidden = self._run(ids, lengths)
        h_n = hidden[0] if self.cell == "lstm" else hidden  # LSTM returns (h_n, c_n)
        if self.bidirectional:
            return torch.cat([h_n[-2], h_n[-1]], dim=1)
        return h_n[-1]

    def forward_tokens(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed_out, _ = self._run(ids, lengths)
        out, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=ids.shape[1])
        return out


# ---------------------------------------------------------------- a baseline that ignores order
class BagOfEmbeddings(nn.Module):
    """Mean of the word embeddings (padding excluded), then a small MLP.

    The average is the same for any order of the words, so this model cannot
    tell "a red circle left of a blue square" from "a blue square left of a red
    circle" — the baseline that shows why sequence models (序列模型) matter.

    Args:
        vocab_size: number of token ids.
        embed_dim: size of the word embeddings.
        hidden_dim: size of the output vector.
        pad_id: the padding id.

    Shapes:
        ``forward(ids (B, T), lengths (B,))`` → ``(B, hidden_dim)``.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_dim: int = 128, pad_id: int = 0):
        super().__init__()
        self.out_dim = hidden_dim
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.mlp = nn.Sequential(nn.Linear(embed_dim, hidden_dim), nn.ReLU(),
                                 nn.Linear(hidden_dim, hidden_dim), nn.ReLU())

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        check_token_batch(ids, lengths)
        mask = (torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None].to(ids.device))
        summed = (self.embedding(ids) * mask[..., None]).sum(1)
        return self.mlp(summed / lengths.to(summed.device, summed.dtype)[:, None])


class SentenceClassifier(nn.Module):
    """A sentence encoder (``TextEncoder`` or ``BagOfEmbeddings``) and a linear head.

    Args:
        encoder: a module with ``forward(ids, lengths) -> (B, out_dim)`` and ``out_dim``.
        num_classes: number of labels.

    Shapes:
        ``forward(ids (B, T), lengths (B,))`` → logits ``(B, num_classes)``.
    """

    def __init__(self, encoder: nn.Module, num_classes: int):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.encoder = encoder
        self.head = nn.Linear(encoder.out_dim, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(ids, lengths))


# ---------------------------------------------------------------- the order task
def left_object_data(split: str = "train", num_scenes: int = 2000,
                     seed: int = 0) -> tuple[list[str], torch.Tensor]:
    """The word-order task: from a two-object caption, name the object on the left.

    Only scenes whose relation is "left of" or "right of" are used (for "above"
    and "below" no object is on the left). Every caption variant of a scene is
    one example, so a scene appears as "a red circle left of a blue square" and
    as "a blue square to the right of a red circle". The label is the left
    object's (colour, shape) class, :func:`cmlib.data.shapes.pair_label`.

    The two orders of the same words — "a red circle left of a blue square" and
    "a blue square left of a red circle" — have opposite answers and are equally
    likely, so any model that ignores word order is right at most half the time.

    Args:
        split: the ShapesWorld split.
        num_scenes: two-object scenes drawn (about half are kept).
        seed: the dataset seed.

    Returns:
        ``(captions, labels)``: N strings and an ``(N,)`` LongTensor.
    """
    from .data.shapes import ShapesWorld, pair_label

    if not isinstance(num_scenes, int) or num_scenes < 1:
        raise ValueError(f"num_scenes must be a positive int, got {num_scenes!r}")
    data = ShapesWorld(split, size=num_scenes, num_objects=2, seed=seed)
    texts, labels = [], []
    for i in range(num_scenes):
        scene = data.scene(i)
        if scene.relation not in ("left of", "right of"):
            continue
        left = scene.objects[0] if scene.relation == "left of" else scene.objects[1]
        for caption in data.captions(i):
            texts.append(caption)
            labels.append(pair_label(left.color, left.shape))
    return texts, torch.tensor(labels, dtype=torch.long)


# ---------------------------------------------------------------- the article's listing (errata)
class ArticleLSTM(nn.Module):
    """The article's LSTM listing (§2.2.1.2), as printed — for the errata box.

    ``nn.LSTM`` returns ``output, (h_n, c_n)``, not ``hidden, cell``: here
    ``hidden`` is really the per-step output ``(T, B, H)`` and ``cell`` is the
    tuple ``(h_n, c_n)``. It also expects time-first input ``(T, B, F)``
    (``batch_first=False``). See :class:`TextEncoder` for the working encoder.
    """

    def __init__(self, input_dim, hidden_dim):
        super(ArticleLSTM, self).__init__()  # noqa: UP008 (as printed)
        self.lstm = nn.LSTM(input_dim, hidden_dim)

    def forward(self, x):
        hidden, cell = self.lstm(x)
        return hidden, cell


class FixedLSTM(nn.Module):
    """The listing corrected: unpack ``output, (h_n, c_n)`` and use batch-first input.

    Args:
        input_dim: features per time step F.
        hidden_dim: state size H.

    Shapes:
        ``forward(x (B, T, F))`` → ``(output (B, T, H), h_n (B, H), c_n (B, H))``.
    """

    def __init__(self, input_dim: int, hidden_dim: int):
        super().__init__()
        self.lstm = nn.LSTM(input_dim, hidden_dim, batch_first=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if x.ndim != 3 or x.shape[2] != self.lstm.input_size:
            raise ValueError(f"expected input (B, T, {self.lstm.input_size}), got {tuple(x.shape)}")
        output, (h_n, c_n) = self.lstm(x)
        return output, h_n[-1], c_n[-1]
