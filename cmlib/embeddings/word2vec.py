"""word2vec's skip-gram with negative sampling (跳字模型, 负采样), trained on a real corpus.

:class:`SkipGram` holds the two tables and the loss; :func:`train_skipgram` makes word2vec's
(centre, context) pairs with sub-sampling and reduced windows (:func:`skipgram_pairs`), draws
negatives from the unigram³ᐟ⁴ table, and trains with word2vec's own SGD rule
(:meth:`SkipGram.sgd_step`) or with Adam. The loop is word2vec's, so it is written out here;
it returns a :class:`cmlib.train.History` like every other trainer.

Example:
    >>> corpus = encode_corpus(wiki_sentences(), min_count=5)
    >>> model = SkipGram(corpus.vocab_size, dim=100)
    >>> history = train_skipgram(model, corpus, num_epochs=10, device=device())
    >>> WordVectors(corpus.words, model.vectors().numpy()).neighbours("king", k=5)
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn

from ..train import History, progress_bar
from ..validate import check_choice, check_positive_ints, check_type
from .counting import EncodedCorpus


def negative_sampling_loss(
    center: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor
) -> torch.Tensor:
    """Skip-gram's negative-sampling loss, averaged over the batch.

    ``−log σ(u_o · v_c) − Σ_k log σ(−u_k · v_c)`` for a centre vector ``v_c``,
    its true context ``u_o`` and ``K`` noise words ``u_k``.

    Args:
        center: ``(B, D)`` centre-word vectors.
        context: ``(B, D)`` true context vectors.
        negatives: ``(B, K, D)`` noise-word vectors.

    Returns:
        A scalar tensor.
    """
    if center.ndim != 2 or context.shape != center.shape:
        raise ValueError(
            f"expected center and context of shape (B, D), got {tuple(center.shape)} "
            f"and {tuple(context.shape)}"
        )
    if (
        negatives.ndim != 3
        or negatives.shape[0] != center.shape[0]
        or negatives.shape[2] != center.shape[1]
    ):
        raise ValueError(
            f"expected negatives of shape ({center.shape[0]}, K, {center.shape[1]}), "
            f"got {tuple(negatives.shape)}"
        )
    positive = nn.functional.logsigmoid((center * context).sum(-1))
    negative = nn.functional.logsigmoid(-(negatives * center[:, None, :]).sum(-1)).sum(-1)
    return -(positive + negative).mean()


class SkipGram(nn.Module):
    """Skip-gram with negative sampling (word2vec, Mikolov et al. 2013).

    Two tables: ``center`` (the word vectors we keep) and ``context`` (the
    output vectors). Initialised as word2vec does: small uniform centres,
    zero contexts.

    Args:
        vocab_size: number of words V.
        dim: vector size D.

    Shapes:
        ``forward(center (B,), context (B,), negatives (B, K))`` → scalar loss.
    """

    def __init__(self, vocab_size: int, dim: int = 100):
        super().__init__()
        check_positive_ints(vocab_size=vocab_size, dim=dim)
        self.center = nn.Embedding(vocab_size, dim)
        self.context = nn.Embedding(vocab_size, dim)
        nn.init.uniform_(self.center.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.context.weight)

    def forward(
        self, center: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor
    ) -> torch.Tensor:
        if (
            center.ndim != 1
            or context.shape != center.shape
            or negatives.ndim != 2
            or negatives.shape[0] != center.shape[0]
        ):
            raise ValueError(
                f"expected center (B,), context (B,) and negatives (B, K) ids, got "
                f"{tuple(center.shape)}, {tuple(context.shape)}, {tuple(negatives.shape)}"
            )
        # one lookup for the true context and its K negatives (faster on the CPU)
        outputs = self.context(torch.cat([context[:, None], negatives], dim=1))
        return negative_sampling_loss(self.center(center), outputs[:, 0], outputs[:, 1:])

    def vectors(self) -> torch.Tensor:
        """``(V, D)``: the centre table, the vectors word2vec keeps."""
        return self.center.weight.detach()

    @torch.no_grad()
    def sgd_step(
        self, center: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor, lr: float
    ) -> float:
        """One SGD step on the *summed* loss of the batch, with the gradient written out.

        For a score ``s = u · v`` with label ``y`` (1 for the true context, 0 for
        noise), ``∂(−log σ(±s))/∂s = σ(s) − y``. So the centre vector moves by
        ``lr · Σ (y − σ(s)) u`` and each output vector by ``lr · (y − σ(s)) v`` —
        exactly word2vec's update, applied to many pairs at once with ``index_add_``.
        It equals autograd's gradient of ``B · forward(...)`` (a unit test checks),
        but skips building the graph, which makes it about twice as fast on a CPU.

        Returns:
            The batch's mean loss before the step.
        """
        outputs_ids = torch.cat([context[:, None], negatives], dim=1)  # (B, K+1)
        v = self.center.weight.index_select(0, center)  # (B, D)
        u = self.context.weight.index_select(0, outputs_ids.reshape(-1)).view(
            *outputs_ids.shape, -1
        )
        scores = (u * v[:, None, :]).sum(-1)  # (B, K+1)
        labels = torch.zeros_like(scores)
        labels[:, 0] = 1.0
        g = (labels - torch.sigmoid(scores)) * lr  # (B, K+1)
        self.center.weight.index_add_(0, center, (g[..., None] * u).sum(1))
        self.context.weight.index_add_(
            0, outputs_ids.reshape(-1), (g[..., None] * v[:, None, :]).reshape(-1, v.shape[1])
        )
        signs = labels * 2 - 1
        return float(-nn.functional.logsigmoid(scores * signs).sum(1).mean())


def keep_probability(counts: np.ndarray, sample: float = 1e-3) -> np.ndarray:
    """word2vec's sub-sampling: the chance of keeping each occurrence of a frequent word.

    ``(sqrt(f / (s·N)) + 1) · s·N / f`` for a word seen ``f`` times in ``N`` tokens
    (the formula of the C tool and gensim), capped at 1. ``sample=0`` keeps everything.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1) * threshold / counts)


def skipgram_pairs(
    corpus: EncodedCorpus,
    window: int,
    rng: np.random.Generator,
    sample: float = 1e-3,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of (centre, context) id pairs, as word2vec makes them.

    Frequent words are sub-sampled (:func:`keep_probability`), then each centre
    looks at a random reduced window ``b ~ U{1..window}`` on each side, inside
    its sentence.

    Args:
        shuffle: shuffle the epoch's pairs (``True``), or keep them in text order, by their
            centre's place, as word2vec and gensim walk the text (``False``). The draws above
            do not depend on it, so both orders hold the same pairs.

    Returns:
        ``(centers, contexts)``, two ``(P,)`` int64 arrays.
    """
    keep = rng.random(len(corpus)) < keep_probability(corpus.counts, sample)[corpus.ids]
    ids, sentence = corpus.ids[keep], corpus.sentence[keep]
    reach = rng.integers(1, window + 1, size=len(ids))
    place = np.arange(len(ids))
    centers, contexts, where = [], [], []
    for d in range(1, window + 1):
        same = sentence[:-d] == sentence[d:]
        forward = same & (reach[:-d] >= d)  # centre on the left, context d to the right
        backward = same & (reach[d:] >= d)  # centre on the right, context d to the left
        centers += [ids[:-d][forward], ids[d:][backward]]
        contexts += [ids[d:][forward], ids[:-d][backward]]
        where += [place[:-d][forward], place[d:][backward]]
    centers, contexts = np.concatenate(centers), np.concatenate(contexts)
    if shuffle:
        order = rng.permutation(len(centers))
    else:
        order = np.argsort(np.concatenate(where), kind="stable")
    return centers[order], contexts[order]


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """word2vec's noise distribution for negatives: unigram counts to the power 3/4, normalised."""
    p = np.asarray(counts, dtype=np.float64) ** power
    return p / p.sum()


NOISE_TABLE_SIZE = 2_000_000  # word2vec's unigram table: sampling an index is cheap


def train_skipgram(
    model: SkipGram,
    corpus: EncodedCorpus,
    window: int = 5,
    negatives: int = 5,
    num_epochs: int = 5,
    batch_size: int = 4096,
    lr: float = 0.025,
    optimizer: str = "sgd",
    sample: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    shuffle: bool = True,
) -> History:
    """Train a :class:`SkipGram` on ``corpus`` with mini-batches and dense SGD or Adam.

    Each step takes ``batch_size`` (centre, context) pairs and draws ``negatives``
    noise words per pair from :func:`noise_distribution`; the learning rate
    decays linearly to zero, as in word2vec.

    Args:
        model: the skip-gram, one row per word of ``corpus``.
        corpus: the encoded corpus.
        window: largest context distance (each centre draws its own, 1..window).
        negatives: noise words per pair (K).
        num_epochs: passes over the corpus.
        batch_size: pairs per step.
        lr: the starting learning rate (word2vec's 0.025 for SGD; about 0.01 for Adam).
        optimizer: ``"sgd"`` (word2vec's rule: each pair's full gradient step, see
            :meth:`SkipGram.sgd_step`) or ``"adam"`` (autograd on the mean loss, adaptive steps).
        sample: sub-sampling threshold for frequent words (0 disables it).
        seed: seeds the pairs and the negatives (the model arrives initialised).
        device: where to train.
        progress: show a tqdm bar.
        shuffle: shuffle each epoch's pairs (the default), or keep them in text order as
            word2vec does (:func:`skipgram_pairs`); on chapter 02's corpus the shuffle is worth
            about 0.03 of WordSim-353 Spearman.

    Returns:
        The :class:`~cmlib.train.History`: the mean loss and seconds of each epoch, the loss of
        each step.
    """
    if not isinstance(model, SkipGram):
        raise TypeError(f"model must be a SkipGram, got {type(model).__name__}")
    if len(corpus) == 0:
        raise ValueError("the corpus is empty")
    if model.center.num_embeddings != corpus.vocab_size:
        raise ValueError(
            f"the model has {model.center.num_embeddings} words, the corpus {corpus.vocab_size}"
        )
    check_positive_ints(
        window=window, negatives=negatives, num_epochs=num_epochs, batch_size=batch_size
    )
    check_choice("optimizer", optimizer, ("sgd", "adam"))
    check_type("shuffle", shuffle, bool)
    rng = np.random.default_rng(seed)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)  # used when optimizer == "adam"
    table = torch.multinomial(
        torch.as_tensor(noise_distribution(corpus.counts)),
        NOISE_TABLE_SIZE,
        replacement=True,
        generator=generator,
    )
    epochs = [skipgram_pairs(corpus, window, rng, sample, shuffle) for _ in range(num_epochs)]
    total_steps = sum(math.ceil(len(c) / batch_size) for c, _ in epochs)
    history, step = History(), 0
    bar = progress_bar(total=total_steps, desc="skip-gram", disable=not progress)
    for centers, contexts in epochs:
        start_time = time.perf_counter()
        centers, contexts = torch.from_numpy(centers), torch.from_numpy(contexts)
        loss_sum, steps = 0.0, 0
        for start in range(0, len(centers), batch_size):
            center = centers[start : start + batch_size].to(device)
            context = contexts[start : start + batch_size].to(device)
            pick = torch.randint(NOISE_TABLE_SIZE, (len(center) * negatives,), generator=generator)
            noise_ids = table[pick].view(len(center), negatives).to(device)
            lr_now = lr * max(1.0 - step / total_steps, 1e-4)  # linear decay, as word2vec
            if optimizer == "sgd":  # word2vec: each pair's own gradient step (summed batch loss)
                loss = model.sgd_step(center, context, noise_ids, lr=lr_now)
            else:
                opt.param_groups[0]["lr"] = lr_now
                loss = model(center, context, noise_ids)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss = loss.item()
            history.log_step({"loss": loss})
            loss_sum, steps, step = loss_sum + loss, steps + 1, step + 1
            bar.update(1)
        history.train_loss.append(loss_sum / steps)
        history.metrics.append({})
        history.seconds.append(time.perf_counter() - start_time)
        bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}")
    bar.close()
    model.eval()
    return history
