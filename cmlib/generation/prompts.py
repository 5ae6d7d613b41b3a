"""Prompt encoders (提示词编码器): the text of a prompt becomes a generator's condition vector.

Article §3.1 提示词的概念与应用 (the concept and uses of prompts). The prompts themselves —
"a small red circle on the left", their synonyms and the evaluation sets — are written by
:mod:`cmlib.data.shapes.prompt_text`. Here:

* prompt encoders — :class:`BagOfWordsEncoder` (learned, over a fixed
  vocabulary) and :class:`SentencePromptEncoder` (a frozen sentence encoder
  such as all-MiniLM-L6-v2 plus a linear head aligned to a learned encoder);
* grounding colour words — :func:`ground_color_word` reads what a colour word
  *looks like* from the xkcd colour survey, and :class:`GroundedPromptEncoder`
  rewrites unknown colour words ("crimson" → "red") before any encoder.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.shapes.world import COLORS, RGB
from ..text import SPECIALS, Vocab, tokenize


# ---------------------------------------------------------------- checks
def check_prompts(prompts: str | Sequence[str]) -> list[str]:
    """Return ``prompts`` as a list of strings; raise ValueError on an empty list or an empty
    prompt."""
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, Sequence) or not all(isinstance(p, str) for p in prompts):
        raise TypeError(f"expected a prompt string or a list of them, got {type(prompts).__name__}")
    if len(prompts) == 0:
        raise ValueError("expected at least one prompt, got an empty list")
    for p in prompts:
        if not p.strip():
            raise ValueError("the prompt is empty: write what to draw, e.g. 'a red circle'")
    return list(prompts)


# ---------------------------------------------------------------- prompt encoders
class BagOfWordsEncoder(nn.Module):
    """A learned prompt encoder: word counts over a fixed vocabulary → linear map.

    Word order is ignored, so "a red circle" and "circle red a" give the same
    condition. Words outside the vocabulary are ignored; a prompt with no known
    word at all raises ValueError (there is nothing to condition on).

    Args:
        vocab: the vocabulary (e.g. :func:`cmlib.data.shapes.text.shapes_vocab`).
        cond_dim: size of the condition vector.

    Shapes:
        ``forward(prompts)``: ``B`` strings → ``(B, cond_dim)``.
    """

    def __init__(self, vocab: Vocab, cond_dim: int = 32):
        super().__init__()
        if not isinstance(vocab, Vocab):
            raise TypeError(f"vocab must be a cmlib.text.Vocab, got {type(vocab).__name__}")
        self.vocab, self.cond_dim = vocab, cond_dim
        self._memo: dict[str, torch.Tensor] = {}  # prompt -> its word counts
        self.linear = nn.Linear(len(vocab), cond_dim)
        nn.init.normal_(
            self.linear.weight, std=0.5
        )  # a prompt of a few words gives c of unit scale

    def bag(self, prompts: str | Sequence[str]) -> torch.Tensor:
        """Word counts ``(B, len(vocab))`` (special tokens and unknown words not counted)."""
        prompts = check_prompts(prompts)
        for prompt in set(prompts) - self._memo.keys():
            ids = [
                self.vocab.stoi[w]
                for w in tokenize(prompt)
                if w in self.vocab.stoi and w not in SPECIALS
            ]
            if not ids:
                raise ValueError(
                    f"no word of {prompt!r} is in the vocabulary, so it says nothing "
                    f"to draw; try e.g. 'a red circle'"
                )
            self._memo[prompt] = torch.zeros(len(self.vocab)).index_add_(
                0, torch.tensor(ids), torch.ones(len(ids))
            )
        return torch.stack([self._memo[p] for p in prompts])

    def forward(self, prompts: str | Sequence[str]) -> torch.Tensor:
        return self.linear(self.bag(prompts).to(self.linear.weight.device))


class SentenceEmbeddings:
    """A frozen sentence encoder with a memo: ``embeddings(prompts)`` → ``(B, dim)``, each prompt
    encoded once.

    Args:
        sentence_encoder: anything with ``encode(texts) -> (N, dim)``
            (``cmlib.pretrained.load_minilm``).
        dim: the embedding size to check the encoder's output against; ``None`` accepts any.
    """

    def __init__(self, sentence_encoder, dim: int | None = None):
        if not hasattr(sentence_encoder, "encode"):
            raise TypeError("sentence_encoder needs an encode(texts) method")
        self.sentence_encoder, self.dim = sentence_encoder, dim
        self._memo: dict[str, torch.Tensor] = {}

    def __call__(self, prompts: str | Sequence[str]) -> torch.Tensor:
        prompts = check_prompts(prompts)
        todo = sorted({p for p in prompts if p not in self._memo})
        if todo:
            vectors = torch.as_tensor(self.sentence_encoder.encode(todo))
            if vectors.ndim != 2 or (self.dim is not None and vectors.shape[1] != self.dim):
                raise ValueError(
                    f"the sentence encoder returned {tuple(vectors.shape)}, "
                    f"expected (N, {self.dim if self.dim is not None else 'dim'})"
                )
            self._memo.update(zip(todo, vectors.float().cpu()))
        return torch.stack([self._memo[p] for p in prompts])


class SentencePromptEncoder(nn.Module):
    """A frozen sentence encoder (all-MiniLM-L6-v2) plus a linear head into a model's condition
    space.

    The head is fitted in closed form (ridge regression) so that the sentence
    embedding of a training prompt lands on the condition a learned encoder
    gives the same prompt (:meth:`fit`). Then a prompt with words the
    generator never saw ("a crimson disc") still gets a condition vector:
    whatever MiniLM thinks it is close to.

    Args:
        sentence_encoder: anything with ``encode(texts) -> (N, dim)``
            (``cmlib.pretrained.load_minilm``).
        cond_dim: size of the condition vector.

    Shapes:
        ``forward(prompts)``: ``B`` strings → ``(B, cond_dim)``.
    """

    def __init__(self, sentence_encoder, cond_dim: int = 32):
        super().__init__()
        self.embed_dim = int(getattr(sentence_encoder, "dim", 384))
        self.embeddings = SentenceEmbeddings(sentence_encoder, self.embed_dim)
        self.cond_dim = cond_dim
        self.head = nn.Linear(self.embed_dim, cond_dim)

    def embed(self, prompts: str | Sequence[str]) -> torch.Tensor:
        """Frozen sentence embeddings ``(B, embed_dim)``, each prompt encoded once."""
        return self.embeddings(prompts)

    @torch.no_grad()
    def fit(self, prompts: Sequence[str], targets: torch.Tensor, ridge: float = 0.1) -> float:
        """Fit the head by ridge regression onto ``targets`` ``(N, cond_dim)``; return the R².

        Args:
            prompts: training prompts.
            targets: the condition a learned encoder gives each prompt.
            ridge: the L2 penalty; larger trusts the sentence encoder's neighbourhoods more.
        """
        x = self.embed(prompts)
        if targets.shape != (len(x), self.cond_dim):
            raise ValueError(
                f"targets must be ({len(x)}, {self.cond_dim}), got {tuple(targets.shape)}"
            )
        y = targets.detach().float().cpu()
        x_mean, y_mean = x.mean(0), y.mean(0)
        xc, yc = x - x_mean, y - y_mean
        weight = torch.linalg.solve(xc.T @ xc + ridge * torch.eye(self.embed_dim), xc.T @ yc)
        self.head.weight.copy_(weight.T)
        self.head.bias.copy_(y_mean - x_mean @ weight)
        residual = ((self.head(x) - y) ** 2).sum()
        return float(1 - residual / (yc**2).sum().clamp_min(1e-12))

    def forward(self, prompts: str | Sequence[str]) -> torch.Tensor:
        return self.head(self.embed(prompts).to(self.head.weight.device))


class NearestPromptEncoder(nn.Module):
    """Read any prompt as the nearest prompt a model knows, by sentence-embedding similarity.

    ``NearestPromptEncoder(minilm, all_prompts(), bow)("a red disc")`` finds the known prompt whose
    MiniLM embedding has the highest cosine similarity ("a red circle") and returns ``bow`` of it.
    The
    condition is always one the generator was trained on, so a prompt it half understands gives a
    clean
    image of the nearest thing it knows, instead of a blend (retrieval, as in chapter 07, used as a
    prompt encoder).

    Args:
        sentence_encoder: anything with ``encode(texts) -> (N, dim)``
            (``cmlib.pretrained.load_minilm``).
        known_prompts: the prompts to choose from (e.g.
            :func:`cmlib.data.shapes.prompt_text.all_prompts`).
        encoder: the generator's own prompt encoder, applied to the chosen prompt.
        min_similarity: a prompt whose best cosine similarity is lower is refused with ValueError
            rather than drawn as something arbitrary. With MiniLM, paraphrases such as "a red disc"
            score
            0.6–0.9 against :func:`all_prompts`, and "draw a cat" or "xyzzy" 0.2–0.4.

    Shapes:
        ``forward(prompts)``: ``B`` strings → ``(B, cond_dim)``.
    """

    def __init__(
        self,
        sentence_encoder,
        known_prompts: Sequence[str],
        encoder: nn.Module,
        min_similarity: float = 0.5,
    ):
        super().__init__()
        if not hasattr(encoder, "cond_dim"):
            raise TypeError("encoder must be a prompt encoder with a cond_dim attribute")
        self.embeddings = SentenceEmbeddings(sentence_encoder)
        self.encoder, self.cond_dim = encoder, encoder.cond_dim
        self.known, self.min_similarity = check_prompts(list(known_prompts)), float(min_similarity)
        self.keys = F.normalize(self.embeddings(self.known), dim=1)

    def nearest(self, prompts: str | Sequence[str]) -> list[str]:
        """The known prompt nearest to each prompt.

        Raises:
            ValueError: if a prompt is not within ``min_similarity`` of any known prompt.
        """
        prompts = check_prompts(prompts)
        best, index = (F.normalize(self.embeddings(prompts), dim=1) @ self.keys.T).max(dim=1)
        for prompt, similarity, i in zip(prompts, best.tolist(), index.tolist()):
            if similarity < self.min_similarity:
                raise ValueError(
                    f"{prompt!r} is not close to any prompt the model knows (nearest: "
                    f"{self.known[i]!r}, cosine {similarity:.2f} < {self.min_similarity}); "
                    f"try e.g. 'a red circle'"
                )
        return [self.known[i] for i in index.tolist()]

    def forward(self, prompts: str | Sequence[str]) -> torch.Tensor:
        return self.encoder(self.nearest(prompts))


# ---------------------------------------------------------------- grounding colour words
@functools.lru_cache(maxsize=1)
def color_survey() -> Mapping[str, tuple[float, float, float]]:
    """The xkcd colour survey: 949 colour names → sRGB in [0, 1].

    The names crowds of people gave to colours they were shown (R. Munroe, 2010; public domain),
    shipped offline with matplotlib as ``matplotlib.colors.XKCD_COLORS``. It is a tiny *grounded*
    lexicon: it says what "crimson" looks like, which no amount of text statistics does well.
    """
    from matplotlib.colors import XKCD_COLORS, to_rgb

    return MappingProxyType(
        {name.removeprefix("xkcd:"): to_rgb(code) for name, code in XKCD_COLORS.items()}
    )


def _hue_and_chroma(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CIELAB hue angle (radians) and chroma of sRGB colours ``(N, 3)`` in [0, 1]."""
    from skimage.color import rgb2lab

    lab = rgb2lab(np.asarray(rgb, dtype=float).reshape(-1, 1, 3))[:, 0]
    return np.arctan2(lab[:, 2], lab[:, 1]), np.hypot(lab[:, 1], lab[:, 2])


@functools.lru_cache(maxsize=1)
def _reference_hues() -> np.ndarray:
    """CIELAB hue angles of the ShapesWorld colours, in the order of :data:`COLORS`."""
    return _hue_and_chroma(np.array([RGB[c] for c in COLORS]))[0]


@functools.lru_cache(maxsize=4096)
def ground_color_word(word: str, min_chroma: float = 15.0) -> str | None:
    """The ShapesWorld colour that a colour word looks like, or None.

    Looks ``word`` up in the :func:`color_survey` and returns the ShapesWorld colour
    (:data:`cmlib.data.shapes.world.COLORS`) whose CIELAB hue angle is nearest: "crimson" → "red",
    "navy" → "blue", "lemon" → "yellow". Hue, not RGB distance, so that a dark navy still counts as
    blue. Returns None for a word that names no colour, and for a greyish one (chroma below
    ``min_chroma``), whose hue means nothing.

    Raises:
        TypeError: if ``word`` is not a string.
    """
    if not isinstance(word, str):
        raise TypeError(f"word must be a string, got {type(word).__name__}")
    rgb = color_survey().get(word.strip().lower())
    if rgb is None:
        return None
    hue, chroma = _hue_and_chroma(np.array(rgb))
    if chroma[0] < min_chroma:
        return None
    distance = np.abs(np.angle(np.exp(1j * (_reference_hues() - hue[0]))))  # wrapped to [0, pi]
    return COLORS[int(distance.argmin())]


def ground_prompt(prompt: str, vocab: Vocab) -> str:
    """Rewrite each word of ``prompt`` that ``vocab`` lacks but that names a colour.

    "a crimson disc on the left" → "a red disc on the left". Words the vocabulary knows, and words
    that name no colour ("disc"), are kept as they are, for the encoder to deal with.
    """
    if not isinstance(vocab, Vocab):
        raise TypeError(f"vocab must be a cmlib.text.Vocab, got {type(vocab).__name__}")
    (prompt,) = check_prompts(prompt)
    words = tokenize(prompt)
    return " ".join(w if w in vocab.stoi else (ground_color_word(w) or w) for w in words)


class GroundedPromptEncoder(nn.Module):
    """A prompt encoder behind :func:`ground_prompt`: unknown colour words are read by what they
    look like.

    ``GroundedPromptEncoder(minilm_encoder, vocab)("a crimson disc")`` is
    ``minilm_encoder(["a red disc"])``: the colour comes from the xkcd colour survey, everything
    else (here the shape word "disc") from the wrapped encoder.

    Args:
        encoder: any prompt encoder with ``cond_dim`` (e.g. :class:`SentencePromptEncoder`).
        vocab: the words the generator was trained with; they are never rewritten.

    Shapes:
        ``forward(prompts)``: ``B`` strings → ``(B, cond_dim)``.
    """

    def __init__(self, encoder: nn.Module, vocab: Vocab):
        super().__init__()
        if not hasattr(encoder, "cond_dim"):
            raise TypeError("encoder must be a prompt encoder with a cond_dim attribute")
        if not isinstance(vocab, Vocab):
            raise TypeError(f"vocab must be a cmlib.text.Vocab, got {type(vocab).__name__}")
        self.encoder, self.vocab, self.cond_dim = encoder, vocab, encoder.cond_dim

    def rewrite(self, prompts: str | Sequence[str]) -> list[str]:
        """The prompts as the wrapped encoder sees them."""
        return [ground_prompt(p, self.vocab) for p in check_prompts(prompts)]

    def forward(self, prompts: str | Sequence[str]) -> torch.Tensor:
        return self.encoder(self.rewrite(prompts))
