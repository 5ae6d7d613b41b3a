"""Sequence models: recurrent sentence encoders (RNN, LSTM, GRU).

:class:`TextEncoder` is the text tower the course reuses: an embedding, a
recurrent layer, and the final hidden state as the sentence vector. Padding
is handled with packed sequences, so ``<pad>`` tokens never change the result.

Also here: :class:`BagOfEmbeddings`, the order-blind baseline;
:class:`SentenceClassifier` (an encoder plus a linear head); :class:`FixedLSTM`, the
article's LSTM listing corrected (the listing as printed is :class:`cmlib.errata.LSTM`); and
:func:`lstm_step` with :class:`StepLSTMEncoder`, an LSTM run one step at a time through a step
function a reader can write (chapter 02's build exercise).
Chapter 02's word-order task is :func:`cmlib.data.shapes.tasks.left_object_data`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .validate import check_choice, check_int, check_tensor

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def check_token_batch(ids: torch.Tensor, lengths: torch.Tensor) -> None:
    """Check integer token ids ``(B, T)`` and their ``lengths`` ``(B,)`` in 1..T.

    Raises:
        TypeError: if either is not an integer tensor.
        ValueError: if a shape is wrong or a length is out of range.
    """
    check_tensor("token ids", ids, ("B", "T"), floating=False)
    check_tensor("lengths", lengths, (ids.shape[0],), floating=False)
    if len(lengths) and (lengths.min() < 1 or lengths.max() > ids.shape[1]):
        raise ValueError(
            f"lengths must lie in 1..{ids.shape[1]}, got {lengths.min()}..{lengths.max()}"
        )


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

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        hidden_dim: int = 128,
        cell: str = "gru",
        bidirectional: bool = False,
        pad_id: int = 0,
    ):
        super().__init__()
        check_choice("cell", cell, sorted(CELLS))
        self.cell, self.bidirectional = cell, bidirectional
        self.out_dim = hidden_dim * (2 if bidirectional else 1)
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.rnn = CELLS[cell](embed_dim, hidden_dim, batch_first=True, bidirectional=bidirectional)

    def _run(self, ids: torch.Tensor, lengths: torch.Tensor):
        check_token_batch(ids, lengths)
        packed = pack_padded_sequence(
            self.embedding(ids), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
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


# ---------------------------------------------------------------- an LSTM, one step at a time
def lstm_step(
    x: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step, as ``nn.LSTMCell`` computes it.

    The four gates come out of one matrix product, in ``nn.LSTMCell``'s order: input ``i``,
    forget ``f``, candidate ``g``, output ``o``. Then ``c' = σ(f)·c + σ(i)·tanh(g)`` and
    ``h' = σ(o)·tanh(c')``.

    Args:
        x: the step's input ``(B, F)``.
        h: the hidden state ``(B, H)``.
        c: the cell state ``(B, H)``.
        weight_ih: ``(4H, F)``.
        weight_hh: ``(4H, H)``.
        bias: ``(4H,)``, ``nn.LSTMCell``'s two biases added.

    Returns:
        ``(h', c')``, each ``(B, H)``.
    """
    gates = x @ weight_ih.T + h @ weight_hh.T + bias
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class StepLSTMEncoder(nn.Module):
    """Embedding → an LSTM run one step at a time by ``step_fn`` → the last real step's state.

    The same computation as ``TextEncoder(cell="lstm")``, written as the loop that packed
    sequences hide: each sentence's state stops changing after its last token, so padding never
    moves it. ``step_fn`` takes :func:`lstm_step`'s arguments; chapter 02 passes the reader's.

    Args:
        vocab_size: number of token ids.
        embed_dim: size of the word embeddings.
        hidden_dim: size of the states.
        step_fn: ``step_fn(x, h, c, weight_ih, weight_hh, bias) -> (h, c)``.
        pad_id: the padding id (its embedding stays zero).

    Shapes:
        ``forward(ids (B, T), lengths (B,))`` → ``(B, hidden_dim)``.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        hidden_dim: int = 128,
        step_fn=lstm_step,
        pad_id: int = 0,
    ):
        super().__init__()
        if not callable(step_fn):
            raise TypeError(f"step_fn must be a function, got {type(step_fn).__name__}")
        self.out_dim, self.step_fn = hidden_dim, step_fn
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.cell = nn.LSTMCell(embed_dim, hidden_dim)  # the parameters; step_fn does the work

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        check_token_batch(ids, lengths)
        x = self.embedding(ids)
        h = x.new_zeros(len(ids), self.out_dim)
        c = torch.zeros_like(h)
        bias = self.cell.bias_ih + self.cell.bias_hh
        alive = torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None].to(
            ids.device
        )  # (B, T): which steps are real tokens
        for t in range(int(lengths.max())):
            h_next, c_next = self.step_fn(
                x[:, t], h, c, self.cell.weight_ih, self.cell.weight_hh, bias
            )
            keep = alive[:, t, None]
            h, c = torch.where(keep, h_next, h), torch.where(keep, c_next, c)
        return h


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

    def __init__(
        self, vocab_size: int, embed_dim: int = 64, hidden_dim: int = 128, pad_id: int = 0
    ):
        super().__init__()
        self.out_dim = hidden_dim
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
        )

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        check_token_batch(ids, lengths)
        mask = torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None].to(
            ids.device
        )
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
        check_int("num_classes", num_classes, minimum=2)
        self.encoder = encoder
        self.head = nn.Linear(encoder.out_dim, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(ids, lengths))


# ---------------------------------------------------------------- the article's listing, fixed
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
        check_tensor("x", x, ("B", "T", self.lstm.input_size), floating=True)
        output, (h_n, c_n) = self.lstm(x)
        return output, h_n[-1], c_n[-1]
