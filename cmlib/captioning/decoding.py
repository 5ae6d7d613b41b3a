"""Turning a captioner's next-token distributions into captions: greedy, beam, sampling.

All three decode a whole batch at once and stop a sequence at ``<eos>``. They are exact in
the sense the tests check: a beam of width 1 *is* greedy decoding, and a batch captions
exactly as its images do one by one.

Beam search keeps the ``beam_width`` best partial captions of each image. Its score is the
caption's total log-probability divided by ``length ** length_penalty``: with
``length_penalty=0`` (no normalisation) every extra word can only lower the score, so beams
that stop early win — unnormalised beam search prefers the shortest template; with ``1`` it
ranks by the mean log-probability per token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..backbone import grid_features
from ..data.shapes.captioning import style_index
from ..text import Vocab
from ..validate import check_int, check_number, check_tensor
from .models import Captioner


@dataclass
class Decoded:
    """Captions of a batch.

    Attributes:
        tokens: ``(B, T)`` the ids written, ``<pad>`` after ``<eos>`` (``<eos>`` included).
        log_prob: ``(B,)`` each caption's total log-probability.
        attention: ``(B, T, N)`` the attention over the N regions at each step (attention
            captioners, greedy decoding), else None.
        beams: ``(B, K, T)`` every beam at the end of a beam search, else None.
        beam_log_prob: ``(B, K)`` their total log-probabilities.
        beam_length: ``(B, K)`` their lengths in tokens (``<eos>`` included).
    """

    tokens: torch.Tensor
    log_prob: torch.Tensor
    attention: torch.Tensor | None = None
    beams: torch.Tensor | None = None
    beam_log_prob: torch.Tensor | None = None
    beam_length: torch.Tensor | None = None

    def texts(self, vocab: Vocab) -> list[str]:
        """The captions as strings."""
        return [vocab.decode(row.tolist()) for row in self.tokens]


def _prepare(model: Captioner, grids: torch.Tensor, style: torch.Tensor, max_len: int):
    if not isinstance(model, Captioner):
        raise TypeError(f"model must be a Captioner, got {type(model).__name__}")
    check_tensor("grids", grids, ("B", "C", "h", "w"), floating=True, nonempty=True)
    check_tensor("style", style, (len(grids),), floating=False)
    check_int("max_len", max_len)
    model.eval()
    device = next(model.parameters()).device
    memory = model.memory(grids.to(device))
    return memory, model.start(memory), style.to(device), device


def special_ids(vocab: Vocab) -> tuple[int, int, int]:
    """``(bos, eos, pad)`` ids of a vocabulary."""
    return vocab.bos_id, vocab.eos_id, vocab.pad_id


@torch.no_grad()
def _free_run(model, grids, style, vocab, max_len, pick) -> Decoded:
    """Decode step by step, choosing each token with ``pick(logits) -> (token, log_prob)``."""
    memory, state, style, device = _prepare(model, grids, style, max_len)
    bos, eos, pad = special_ids(vocab)
    token = torch.full((len(state),), bos, dtype=torch.long, device=device)
    done = torch.zeros(len(state), dtype=torch.bool, device=device)
    total = torch.zeros(len(state), device=device)
    tokens, weights = [], []
    for _ in range(max_len):
        logits, state, alpha = model.step(memory, state, token, style)
        token, log_prob = pick(logits)
        token = torch.where(done, torch.full_like(token, pad), token)
        total = total + torch.where(done, torch.zeros_like(log_prob), log_prob)
        tokens.append(token)
        if alpha is not None:
            weights.append(alpha)
        done = done | (token == eos)
        if done.all():
            break
    attention = torch.stack(weights, 1).cpu() if weights else None
    return Decoded(torch.stack(tokens, 1).cpu(), total.cpu(), attention)


def greedy_decode(
    model: Captioner, grids: torch.Tensor, style: torch.Tensor, vocab: Vocab, max_len: int = 20
) -> Decoded:
    """The most likely token at every step.

    Args:
        model: a trained captioner.
        grids: ``(B, C, h, w)`` region grids.
        style: ``(B,)`` style prompt ids.
        vocab: the captions' vocabulary (for ``<bos>``, ``<eos>``, ``<pad>``).
        max_len: tokens at most, ``<eos>`` included.
    """

    def pick(logits):
        log_probs = torch.log_softmax(logits, 1)
        best = log_probs.argmax(1)
        return best, log_probs.gather(1, best[:, None]).squeeze(1)

    return _free_run(model, grids, style, vocab, max_len, pick)


def sample_decode(
    model: Captioner,
    grids: torch.Tensor,
    style: torch.Tensor,
    vocab: Vocab,
    temperature: float = 1.0,
    max_len: int = 20,
    generator: torch.Generator | None = None,
) -> Decoded:
    """Draw each token from ``softmax(logits / temperature)``.

    Low temperatures approach greedy decoding; high ones approach uniform noise.

    Args:
        temperature: > 0.
        generator: the random draws, a CPU generator: the tokens are drawn on the CPU and moved
            to the model's device, so one seed gives the same captions on any device.
    """
    check_number("temperature", temperature, low=1e-6)

    def pick(logits):
        log_probs = torch.log_softmax(logits, 1)
        probs = torch.softmax(logits / temperature, 1)
        token = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1)
        token = token.to(logits.device)
        return token, log_probs.gather(1, token[:, None]).squeeze(1)

    return _free_run(model, grids, style, vocab, max_len, pick)


def normalised_score(
    log_prob: torch.Tensor, length: torch.Tensor, length_penalty: float
) -> torch.Tensor:
    """A beam's score: ``log_prob / length ** length_penalty`` (0 = the raw sum)."""
    return log_prob / length.float().clamp(min=1) ** length_penalty


@torch.no_grad()
def beam_search(
    model: Captioner,
    grids: torch.Tensor,
    style: torch.Tensor,
    vocab: Vocab,
    beam_width: int = 3,
    max_len: int = 20,
    length_penalty: float = 1.0,
) -> Decoded:
    """Keep the ``beam_width`` best partial captions of each image; return the best finished.

    A finished beam (one that wrote ``<eos>``) stays in the beam with its score frozen and
    competes with the growing ones; beams are ranked by :func:`normalised_score`.

    Args:
        beam_width: beams per image, ≥ 1 (1 is greedy decoding).
        length_penalty: the exponent of the length normalisation (0 = none).
    """
    check_int("beam_width", beam_width)
    check_number("length_penalty", length_penalty, low=0)
    memory, state, style, device = _prepare(model, grids, style, max_len)
    bos, eos, pad = special_ids(vocab)
    b, k, v = len(state), beam_width, model.vocab_size
    # The model's tensors below are (B·K, …), beam j of image i at row i·K + j; the beams'
    # scores are (B, K).
    memory = memory.repeat(k)
    state, style = state.repeat_interleave(k, 0), style.repeat_interleave(k)
    token = torch.full((b * k,), bos, dtype=torch.long, device=device)
    total = torch.zeros(b, k, device=device)
    total[:, 1:] = float("-inf")  # all beams start as the same empty caption: keep one
    length = torch.zeros(b, k, dtype=torch.long, device=device)
    done = torch.zeros(b, k, dtype=torch.bool, device=device)
    history = torch.empty(b, k, 0, dtype=torch.long, device=device)
    for _ in range(max_len):
        logits, state, _ = model.step(memory, state, token, style)
        log_probs = torch.log_softmax(logits, 1).view(b, k, v)
        # A finished beam has one continuation, <pad>, at no cost and no extra length.
        frozen = torch.full_like(log_probs, float("-inf"))
        frozen[:, :, pad] = 0.0
        log_probs = torch.where(done[:, :, None], frozen, log_probs)
        cand_total = (total[:, :, None] + log_probs).view(b, k * v)
        cand_length = (length + (~done).long())[:, :, None].expand(b, k, v).reshape(b, k * v)
        score = normalised_score(cand_total, cand_length, length_penalty)
        score = torch.where(torch.isfinite(cand_total), score, torch.full_like(score, -torch.inf))
        best = score.topk(k, dim=1).indices  # (B, K)
        beam, token = best // v, best % v  # integer division: which beam, which word
        total, length = cand_total.gather(1, best), cand_length.gather(1, best)
        done = done.gather(1, beam) | (token == eos)
        history = torch.cat(
            [history.gather(1, beam[:, :, None].expand_as(history)), token[:, :, None]], 2
        )
        rows = (beam + torch.arange(b, device=device)[:, None] * k).flatten()
        state, token = state[rows], token.flatten()
        if done.all():
            break
    final = normalised_score(total, length, length_penalty)
    final = torch.where(done, final, final - 1e9)  # an unfinished beam wins only if none ended
    winner = final.argmax(1)
    pick = torch.arange(b, device=device)
    return Decoded(
        history[pick, winner].cpu(),
        total[pick, winner].cpu(),
        beams=history.cpu(),
        beam_log_prob=total.cpu(),
        beam_length=length.cpu(),
    )


def decode(
    model: Captioner,
    grids: torch.Tensor,
    style: torch.Tensor,
    vocab: Vocab,
    method: str = "greedy",
    **options,
) -> Decoded:
    """``greedy_decode``, ``beam_search`` or ``sample_decode`` by name."""
    methods = {"greedy": greedy_decode, "beam": beam_search, "sample": sample_decode}
    if method not in methods:
        raise ValueError(f"method must be one of {sorted(methods)}, got {method!r}")
    return methods[method](model, grids, style, vocab, **options)


def caption_images(
    model: Captioner,
    encoder,
    images: torch.Tensor,
    vocab: Vocab,
    style_prompt: str = "",
    method: str = "greedy",
    **options,
) -> Decoded:
    """Images in, captions out: the frozen encoder's grids, then :func:`decode`.

    Args:
        model: a trained captioner.
        encoder: the frozen :class:`~cmlib.vision.ConvEncoder` whose grids it reads.
        images: ``(B, 3, S, S)`` in [0, 1], ``S`` the encoder's image size.
        vocab: the captions' vocabulary.
        style_prompt: ``""``, ``"briefly"`` or ``"in detail"``.
        method: ``"greedy"``, ``"beam"`` or ``"sample"``; ``options`` go to it.

    Raises:
        ValueError: for an empty batch, a wrong image size or an unknown style prompt.
    """
    style = style_index(style_prompt)
    check_tensor("images", images, ("B", 3, "S", "S"), floating=True, nonempty=True)
    device = next(model.parameters()).device
    grids = grid_features(encoder, images, device)
    return decode(model, grids, torch.full((len(images),), style), vocab, method, **options)
