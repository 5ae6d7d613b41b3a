"""Tokenizer and vocabulary: turning text into integer ids and back.

Unknown words map to ``<unk>`` (id 1) by default; pass ``strict=True`` to
:meth:`Vocab.encode` to get a ``KeyError`` naming the word instead.

Example:
    >>> vocab = Vocab.build(["a red circle", "a blue square"])
    >>> vocab.encode("a red square")
    [4, 5, 8]
    >>> vocab.decode([4, 5, 8])
    'a red square'
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[?!.,]")


def tokenize(text: str, keep_punctuation: bool = False) -> list[str]:
    """Lower-case word tokens of ``text``.

    Args:
        text: any string.
        keep_punctuation: keep ``? ! . ,`` as tokens of their own.

    Raises:
        TypeError: if ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects a str, got {type(text).__name__}")
    tokens = _TOKEN.findall(text.lower())
    if keep_punctuation:
        return tokens
    return [t for t in tokens if t not in "?!.,"]


class Vocab:
    """A word <-> id mapping with the four special tokens first.

    Args:
        tokens: the non-special tokens, in id order.
    """

    def __init__(self, tokens: Sequence[str]):
        self.itos: list[str] = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        if len(set(self.itos)) != len(self.itos):
            raise ValueError("Vocab tokens must be unique")
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1, max_size: int | None = None) -> Vocab:
        """Build a vocabulary from texts, most frequent first (ties alphabetical).

        Args:
            texts: the corpus, one string per sentence or document.
            min_freq: drop tokens seen fewer times than this.
            max_size: keep at most this many non-special tokens.

        Raises:
            ValueError: if the corpus has no tokens, or the limits are not positive.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < 1:
            raise ValueError(f"max_size must be >= 1 or None, got {max_size}")
        counts = Counter(tok for text in texts for tok in tokenize(text))
        if not counts:
            raise ValueError("cannot build a vocabulary from an empty corpus")
        kept = sorted(
            (t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t)
        )
        return cls(kept[:max_size] if max_size else kept)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token, self.unk_id)

    @property
    def pad_id(self) -> int:
        return self.stoi[PAD]

    @property
    def unk_id(self) -> int:
        return self.stoi[UNK]

    @property
    def bos_id(self) -> int:
        return self.stoi[BOS]

    @property
    def eos_id(self) -> int:
        return self.stoi[EOS]

    def encode(self, text: str, add_bos_eos: bool = False, strict: bool = False) -> list[int]:
        """Token ids of ``text``.

        Args:
            text: the sentence.
            add_bos_eos: wrap the ids in ``<bos>`` ... ``<eos>``.
            strict: raise ``KeyError`` on an unknown word instead of using ``<unk>``.
        """
        ids = []
        for tok in tokenize(text):
            if strict and tok not in self.stoi:
                raise KeyError(f"word {tok!r} is not in the vocabulary ({len(self)} tokens)")
            ids.append(self[tok])
        return [self.bos_id, *ids, self.eos_id] if add_bos_eos else ids

    def decode(self, ids: Iterable[int], skip_specials: bool = True) -> str:
        """The text of ``ids``; stops at ``<eos>`` when skipping specials."""
        words = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise ValueError(f"id {i} is outside the vocabulary (0..{len(self.itos) - 1})")
            tok = self.itos[i]
            if skip_specials:
                if tok == EOS:
                    break
                if tok in SPECIALS:
                    continue
            words.append(tok)
        return " ".join(words)

    def encode_batch(
        self, texts: Sequence[str], add_bos_eos: bool = False, max_len: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode and pad a batch.

        Returns:
            ``(ids, lengths)``: ids of shape ``(B, T)`` padded with ``<pad>``,
            and the true lengths of shape ``(B,)``.
        """
        if isinstance(texts, str):
            raise TypeError("encode_batch expects a sequence of strings, not one string")
        seqs = [self.encode(t, add_bos_eos=add_bos_eos) for t in texts]
        return pad_sequences(seqs, self.pad_id, max_len=max_len)


def pad_sequences(
    seqs: Sequence[Sequence[int]], pad_id: int = 0, max_len: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad integer sequences into a ``(B, T)`` LongTensor.

    Args:
        seqs: B sequences of token ids.
        pad_id: the padding id.
        max_len: truncate to this length (default: the longest sequence).

    Returns:
        ``(ids, lengths)`` with shapes ``(B, T)`` and ``(B,)``.
    """
    if len(seqs) == 0:
        raise ValueError("pad_sequences needs at least one sequence")
    lengths = [len(s) if max_len is None else min(len(s), max_len) for s in seqs]
    width = max(max(lengths), 1)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    for row, (seq, n) in enumerate(zip(seqs, lengths)):
        if n:
            ids[row, :n] = torch.as_tensor(list(seq[:n]), dtype=torch.long)
    return ids, torch.tensor(lengths, dtype=torch.long)
