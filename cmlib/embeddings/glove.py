"""GloVe (Pennington et al., 2014): word vectors fitted to the log co-occurrence counts.

:class:`GloVe` fits ``w_i · w̃_j + b_i + b̃_j ≈ log X_ij`` by weighted least squares;
:func:`train_glove` trains it with AdaGrad, the paper's optimiser, and returns a
:class:`cmlib.train.History`.
"""

from __future__ import annotations

import scipy.sparse as sp
import torch
from torch import nn

from ..train import History, IndexBatches, fit
from ..validate import check_positive_ints


def glove_weight(counts: torch.Tensor, x_max: float = 100.0, alpha: float = 0.75) -> torch.Tensor:
    """GloVe's weighting ``f(x) = min(1, (x / x_max) ** alpha)``: rare pairs count less."""
    return (counts / x_max).clamp(max=1.0) ** alpha


class GloVe(nn.Module):
    """GloVe (Pennington et al., 2014): fit ``w_i · w̃_j + b_i + b̃_j ≈ log X_ij``.

    The loss is the weighted least squares ``Σ f(X_ij) (w_i·w̃_j + b_i + b̃_j − log X_ij)²``
    over the non-zero co-occurrence counts ``X_ij``; the word vectors are ``w + w̃``.

    Args:
        vocab_size: number of words V.
        dim: vector size D.

    Shapes:
        ``forward(rows (B,), cols (B,), counts (B,))`` → scalar loss (mean over the batch).
    """

    def __init__(self, vocab_size: int, dim: int = 50):
        super().__init__()
        check_positive_ints(vocab_size=vocab_size, dim=dim)
        self.word = nn.Embedding(vocab_size, dim)
        self.context = nn.Embedding(vocab_size, dim)
        self.word_bias = nn.Embedding(vocab_size, 1)
        self.context_bias = nn.Embedding(vocab_size, 1)
        for table in (self.word, self.context):
            nn.init.uniform_(table.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.word_bias.weight)
        nn.init.zeros_(self.context_bias.weight)

    def forward(self, rows: torch.Tensor, cols: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        if rows.ndim != 1 or cols.shape != rows.shape or counts.shape != rows.shape:
            raise ValueError(
                f"expected rows, cols and counts of shape (B,), got {tuple(rows.shape)}, "
                f"{tuple(cols.shape)}, {tuple(counts.shape)}"
            )
        if (counts <= 0).any():
            raise ValueError("GloVe is fitted on non-zero co-occurrence counts only")
        pred = (
            (self.word(rows) * self.context(cols)).sum(1)
            + self.word_bias(rows).squeeze(1)
            + self.context_bias(cols).squeeze(1)
        )
        return (glove_weight(counts) * (pred - counts.log()) ** 2).mean()

    def vectors(self) -> torch.Tensor:
        """``(V, D)``: the sum of the word and context vectors, as the paper recommends."""
        return (self.word.weight + self.context.weight).detach()


def train_glove(
    model: GloVe,
    cooc: sp.spmatrix,
    num_epochs: int = 10,
    batch_size: int = 8192,
    lr: float = 0.05,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> History:
    """Fit a :class:`GloVe` to a co-occurrence matrix with AdaGrad (the paper's optimiser).

    Args:
        model: the GloVe model, one row per word of the matrix.
        cooc: ``(V, V)`` co-occurrence counts, e.g. ``cooccurrence(corpus, weighting="harmonic")``.
        num_epochs: passes over the non-zero entries.
        batch_size: entries per step.
        lr: AdaGrad's learning rate.
        seed: seeds the shuffling (the model arrives initialised).
        device: where to train.
        progress: show a tqdm bar.

    Returns:
        The :class:`~cmlib.train.History` (the mean loss of each epoch). The vectors are
        ``model.vectors()``.
    """
    if not isinstance(model, GloVe):
        raise TypeError(f"model must be a GloVe, got {type(model).__name__}")
    vocab = model.word.num_embeddings
    if not sp.issparse(cooc):
        raise TypeError(f"cooc must be a SciPy sparse matrix, got {type(cooc).__name__}")
    if cooc.shape != (vocab, vocab):
        raise ValueError(
            f"expected a ({vocab}, {vocab}) co-occurrence matrix for the model's "
            f"{vocab} words, got shape {cooc.shape}"
        )
    check_positive_ints(num_epochs=num_epochs, batch_size=batch_size)
    coo = sp.coo_matrix(cooc)
    keep = coo.data > 0
    if not keep.any():
        raise ValueError("the co-occurrence matrix has no non-zero entry")
    rows = torch.as_tensor(coo.row[keep], dtype=torch.long)
    cols = torch.as_tensor(coo.col[keep], dtype=torch.long)
    counts = torch.as_tensor(coo.data[keep], dtype=torch.float32)
    model.to(device)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=lr)
    batches = IndexBatches(len(rows), batch_size, seed, (rows, cols, counts), drop_last=False)
    return fit(
        model,
        batches,
        optimizer,
        num_epochs,
        device,
        step_fn=lambda m, batch: m(*batch),
        progress=progress,
        desc="GloVe",
    )
