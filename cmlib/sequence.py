"""Sequence models: recurrent sentence encoders (RNN, LSTM, GRU).

:class:`TextEncoder` is the text tower the course reuses: an embedding, a
recurrent layer, and the final hidden state as the sentence vector. Padding
is handled with packed sequences, so ``<pad>`` tokens never change the result.
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
