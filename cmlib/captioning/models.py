"""Encoder–decoder captioners: an image's regions in, one token at a time out.

The image arrives as a grid of region features ``(B, C, h, w)`` — a frozen
:class:`~cmlib.vision.ConvEncoder`'s feature map, each cell with its (x, y) appended — and a
GRU writes the caption, one token per step, conditioned on a style prompt (none, "briefly", "in
detail"). Two decoders share everything but how they read the image:

* :class:`BottleneckCaptioner` — Sutskever-style: the whole grid is squeezed into one vector
  (a learned linear map of all regions, which keeps *where* — a plain average would not) that
  starts the GRU and is fed again at every step;
* :class:`AttentionCaptioner` — Show, Attend and Tell: at every step, additive (Bahdanau)
  attention scores each region against the GRU's state and the step reads their weighted sum.

``forward`` is teacher forcing (with optional scheduled sampling, whose rule is
:func:`scheduled_sampling_inputs`); :meth:`Captioner.step` is one step of free-running decoding,
for :mod:`cmlib.captioning.decoding`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from ..validate import check_int, check_number, check_positive_ints, check_tensor
from ..vision import coordinate_grid


def additive_attention(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, w_query: nn.Linear, v: nn.Linear
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bahdanau attention: ``e_i = v·tanh(W_q q + k_i)``, ``α = softmax(e)``, ``Σ α_i values_i``.

    Args:
        query: ``(B, H)`` the decoder state.
        keys: ``(B, N, A)`` the regions already through their key map ``W_k`` (they do not
            change from step to step, so the models project them once per image).
        values: ``(B, N, C)`` what each region gives when attended.
        w_query: the query map ``H → A``.
        v: the scoring vector ``A → 1``.

    Returns:
        ``(context (B, C), alpha (B, N))``.
    """
    check_tensor("query", query, ("B", "H"), floating=True)
    check_tensor("keys", keys, (len(query), "N", "A"), floating=True)
    check_tensor("values", values, (len(query), keys.shape[1], "C"), floating=True)
    scores = v(torch.tanh(w_query(query)[:, None, :] + keys)).squeeze(2)
    alpha = torch.softmax(scores, dim=1)
    return (alpha[:, :, None] * values).sum(1), alpha


def scheduled_sampling_inputs(
    gold: torch.Tensor, predicted: torch.Tensor, sample_prob: float, generator: torch.Generator
) -> torch.Tensor:
    """Scheduled sampling's inputs (Bengio et al., 2015): the gold tokens, some of them replaced
    by the model's own previous predictions.

    Position 0 (``<bos>``) is always the gold token. For the later positions one coin per
    position is drawn, ``torch.rand(B, T - 1, generator=generator) < sample_prob`` (in that
    shape, on the CPU): where it is true, position ``t`` is fed the prediction of the step
    before, ``predicted[:, t - 1]``; where it is false, the gold ``gold[:, t]``.

    Args:
        gold: ``(B, T)`` the teacher-forced inputs ``<bos> w1 … w(T-1)``.
        predicted: ``(B, T)`` the model's argmax at each step: ``predicted[:, t]`` is its guess
            for the token after ``gold[:, t]`` (so the last column is never fed).
        sample_prob: the chance of feeding a prediction, in [0, 1].
        generator: a CPU generator; it draws the coins.

    Returns:
        ``(B, T)`` the tokens to feed.
    """
    check_tensor("gold", gold, ("B", "T"), floating=False)
    check_tensor("predicted", predicted, tuple(gold.shape), floating=False)
    check_number("sample_prob", sample_prob, 0.0, 1.0)
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        raise TypeError(f"generator must be a CPU torch.Generator, got {generator!r}")
    b, t = gold.shape
    if t < 1:
        raise ValueError(f"gold needs at least the <bos> column, got shape {tuple(gold.shape)}")
    coin = torch.rand(b, t - 1, generator=generator) < sample_prob
    fed = torch.where(coin.to(gold.device), predicted[:, :-1], gold[:, 1:])
    return torch.cat([gold[:, :1], fed], dim=1)


class Memory(NamedTuple):
    """What a captioner keeps of an image while it writes, computed once per caption.

    Attributes:
        regions: ``(B, N, C + 2)`` the grid cells with their (x, y).
        summary: ``(B, C + 2)`` one vector of the whole image.
        keys: ``(B, N, A)`` the regions through the attention's key map (attention only).
    """

    regions: torch.Tensor
    summary: torch.Tensor
    keys: torch.Tensor | None = None

    def repeat(self, k: int) -> Memory:
        """Each image's memory ``k`` times in a row (for ``k`` beams)."""
        return Memory(*(None if t is None else t.repeat_interleave(k, 0) for t in self))

    def select(self, rows: torch.Tensor) -> Memory:
        """The memories of ``rows``."""
        return Memory(*(None if t is None else t[rows] for t in self))


class Captioner(nn.Module):
    """A GRU caption decoder over image regions; subclasses decide how it reads them.

    Args:
        vocab_size: tokens it writes.
        grid_channels: channels ``C`` of the region grid.
        grid_size: ``h`` (= ``w``) of the grid.
        embed_dim: size of the word embeddings.
        hidden_dim: size of the GRU state.
        num_styles: style prompts (:data:`cmlib.data.shapes.captioning.STYLE_PROMPTS`).
        pad_id: the padding token (never predicted from).

    Shapes:
        ``forward(grids (B, C, h, w), inputs (B, T), style (B,))`` → logits ``(B, T, vocab)``.
    """

    attends = False

    def __init__(
        self,
        vocab_size: int,
        grid_channels: int,
        grid_size: int = 4,
        embed_dim: int = 32,
        hidden_dim: int = 128,
        num_styles: int = 3,
        pad_id: int = 0,
    ):
        super().__init__()
        check_positive_ints(
            vocab_size=vocab_size,
            grid_channels=grid_channels,
            grid_size=grid_size,
            embed_dim=embed_dim,
            hidden_dim=hidden_dim,
            num_styles=num_styles,
        )
        self.vocab_size, self.grid_channels, self.grid_size = vocab_size, grid_channels, grid_size
        self.hidden_dim, self.num_styles, self.pad_id = hidden_dim, num_styles, pad_id
        self.region_dim = grid_channels + 2  # each region carries its x, y
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.style = nn.Embedding(num_styles, embed_dim)
        self.init_h = nn.Linear(self.region_dim, hidden_dim)
        self.cell = nn.GRUCell(2 * embed_dim + self.region_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim + self.region_dim, vocab_size)

    # ------------------------------------------------------------ the image side
    def regions(self, grids: torch.Tensor) -> torch.Tensor:
        """``(B, N, C + 2)``: one row per grid cell, its coordinates appended."""
        check_tensor(
            "grids",
            grids,
            ("B", self.grid_channels, self.grid_size, self.grid_size),
            floating=True,
            nonempty=True,
        )
        b, _, h, w = grids.shape
        with_xy = torch.cat([grids, coordinate_grid(b, h, w, grids.device)], dim=1)
        return with_xy.flatten(2).transpose(1, 2)

    def memory(self, grids: torch.Tensor) -> Memory:
        """Everything the decoder reads of the images, computed once: a :class:`Memory`."""
        regions = self.regions(grids)
        return Memory(regions, regions.mean(1))

    def start(self, memory: Memory) -> torch.Tensor:
        """The first decoder state ``(B, hidden_dim + C + 2)``: the GRU's, from the image
        summary, and the summary as the "previous context"."""
        return torch.cat([torch.tanh(self.init_h(memory.summary)), memory.summary], dim=1)

    def context(self, memory: Memory, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What a step reads of the image: ``(B, C + 2)``, and its weights ``(B, N)`` or None."""
        raise NotImplementedError

    # ------------------------------------------------------------ one step and many
    def step(
        self, memory: Memory, state: torch.Tensor, token: torch.Tensor, style: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One decoding step: the previous token in, next-token logits out.

        The GRU first reads the previous word (with the style and the previous step's
        context, Luong et al.'s "input feeding"); *then* the new state chooses where to look.
        The order matters with two objects: the state that attends already knows which
        object the last word named, so the next word describes the same one.

        Args:
            memory: from :meth:`memory`.
            state: ``(B, hidden_dim + C + 2)`` the GRU state and the previous context
                (:meth:`start` gives the first).
            token: ``(B,)`` the previous token.
            style: ``(B,)`` style prompt ids.

        Returns:
            ``(logits (B, vocab), new state, attention (B, N) or None)``.
        """
        h, previous = state.split([self.hidden_dim, self.region_dim], dim=1)
        h = self.cell(torch.cat([self.embed(token), self.style(style), previous], dim=1), h)
        context, alpha = self.context(memory, h)
        return self.readout(h, context), torch.cat([h, context], dim=1), alpha

    def readout(self, h: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(B, vocab)`` from the new state and what the step read."""
        return self.out(torch.cat([h, context], dim=1))

    def forward(
        self,
        grids: torch.Tensor,
        inputs: torch.Tensor,
        style: torch.Tensor,
        sample_prob: float = 0.0,
        generator: torch.Generator | None = None,
        return_attention: bool = False,
        sampling_rule: Callable[..., torch.Tensor] | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher forcing: logits for every position of ``inputs`` (``<bos> w1 … wn``).

        Args:
            grids: ``(B, C, h, w)`` region grids.
            inputs: ``(B, T)`` the tokens fed in (the targets shifted right).
            style: ``(B,)`` style prompt ids.
            sample_prob: scheduled sampling (Bengio et al., 2015): at each step, each sequence
                feeds its own previous prediction instead of the true token with this chance.
            generator: draws the coin flips (on the CPU); None: the global generator.
            return_attention: also return the attention of every step, ``(B, T, N)`` (None
                for a captioner that does not attend).
            sampling_rule: builds the tokens fed, ``rule(gold, predicted, sample_prob,
                generator)`` as :func:`scheduled_sampling_inputs` (the default) does. At each
                step it is given two columns, on the CPU: the token just read and the next one,
                with the prediction just made (and a ``<pad>`` column, never fed).
        """
        check_tensor("inputs", inputs, (len(grids), "T"), floating=False)
        check_tensor("style", style, (len(grids),), floating=False)
        check_number("sample_prob", sample_prob, 0.0, 1.0)
        if sampling_rule is not None and not callable(sampling_rule):
            raise TypeError(f"sampling_rule must be callable, got {type(sampling_rule).__name__}")
        rule = scheduled_sampling_inputs if sampling_rule is None else sampling_rule
        generator = torch.default_generator if generator is None else generator
        memory = self.memory(grids)
        state = self.start(memory)
        logits, weights, token = [], [], inputs[:, 0]
        for t in range(inputs.shape[1]):
            step_logits, state, alpha = self.step(memory, state, token, style)
            logits.append(step_logits)
            weights.append(alpha)
            if t + 1 < inputs.shape[1]:
                token = inputs[:, t + 1]
                if sample_prob > 0:
                    # The rule's view of this step: two columns, so one coin per caption.
                    own = step_logits.argmax(1).detach().cpu()
                    guesses = torch.stack([own, torch.full_like(own, self.pad_id)], dim=1)
                    gold = inputs[:, t : t + 2].to("cpu", copy=True)
                    fed = check_tensor(
                        "the sampling rule's tokens",
                        rule(gold, guesses, sample_prob, generator),
                        (len(token), 2),
                        floating=False,
                    )
                    token = fed[:, 1].to(token.device)
        logits = torch.stack(logits, dim=1)
        if not return_attention:
            return logits
        return logits, torch.stack(weights, dim=1) if self.attends else None


class BottleneckCaptioner(Captioner):
    """The whole image as one vector: a learned map of all regions, read at every step.

    Sutskever et al.'s encoder–decoder: the decoder never sees the regions, only their
    summary. A plain average of the regions would lose *where*; a learned linear map of all of
    them keeps it, at the price of more parameters than attention needs.
    """

    def __init__(self, vocab_size: int, grid_channels: int, grid_size: int = 4, **kwargs):
        super().__init__(vocab_size, grid_channels, grid_size, **kwargs)
        self.squeeze = nn.Linear(grid_size * grid_size * self.region_dim, self.region_dim)

    def memory(self, grids: torch.Tensor) -> Memory:
        regions = self.regions(grids)
        return Memory(regions, torch.tanh(self.squeeze(regions.flatten(1))))

    def context(self, memory, h):
        return memory.summary, None


class AttentionCaptioner(Captioner):
    """Show, Attend and Tell: additive attention over the regions at every word.

    The first state comes from the mean region, as in Xu et al. (2015).

    Args:
        attention_dim: size of the attention's hidden layer.
    """

    attends = True

    def __init__(
        self,
        vocab_size: int,
        grid_channels: int,
        grid_size: int = 4,
        attention_dim: int = 64,
        **kwargs,
    ):
        super().__init__(vocab_size, grid_channels, grid_size, **kwargs)
        check_int("attention_dim", attention_dim)
        self.w_query = nn.Linear(self.hidden_dim, attention_dim)
        self.w_keys = nn.Linear(self.region_dim, attention_dim)
        self.v = nn.Linear(attention_dim, 1)

    def memory(self, grids: torch.Tensor) -> Memory:
        regions = self.regions(grids)
        # The keys do not change while the caption is written: project them once.
        return Memory(regions, regions.mean(1), self.w_keys(regions))

    def context(self, memory, h):
        return additive_attention(h, memory.keys, memory.regions, self.w_query, self.v)


class SlotCaptioner(AttentionCaptioner):
    """An attention captioner whose content words come from the image alone.

    A plain decoder learns the language's habits with the image's evidence: after "red" it has
    only ever written "circle" or "square", so it will not write "triangle" under a red
    triangle, however clearly the image shows one. This decoder splits the vocabulary in the
    manner of Neural Baby Talk (Lu et al., 2018):

    * *function* words ("a", "to", "the", "left"…) come from ``[state, context]`` as usual;
    * each *content* word ``w`` of slot ``k`` (colours, shapes, sizes) scores
      ``gate_k(state) + content_w(context)``: the state says only *that* a colour comes next,
      the attended region says *which* — the words said before cannot veto it.

    Args:
        content_slots: the content words of each slot, ``{"color": ["red", …], …}``.
        vocab_itos: the vocabulary's tokens, by id (to find the content words).
        The other arguments are :class:`AttentionCaptioner`'s.
    """

    def __init__(
        self,
        vocab_size: int,
        grid_channels: int,
        grid_size: int = 4,
        *,
        content_slots: dict[str, list[str]],
        vocab_itos: list[str],
        **kwargs,
    ):
        super().__init__(vocab_size, grid_channels, grid_size, **kwargs)
        if len(vocab_itos) != vocab_size:
            raise ValueError(f"vocab_itos has {len(vocab_itos)} tokens, vocab_size is {vocab_size}")
        slot_of = torch.full((vocab_size,), -1, dtype=torch.long)
        for k, words in enumerate(content_slots.values()):
            for word in words:
                if word not in vocab_itos:
                    raise ValueError(f"content word {word!r} is not in the vocabulary")
                slot_of[vocab_itos.index(word)] = k
        self.register_buffer("slot_of", slot_of)
        self.slot_names = list(content_slots)
        self.gate = nn.Linear(self.hidden_dim, len(content_slots))
        self.content = nn.Linear(self.region_dim, vocab_size)

    def readout(self, h, context):
        base = self.out(torch.cat([h, context], dim=1))
        is_content = self.slot_of >= 0
        gate = self.gate(h)[:, self.slot_of.clamp(min=0)]  # (B, vocab): each word's slot gate
        return torch.where(is_content, gate + self.content(context), base)


def attention_coverage_penalty(attention: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Show, Attend and Tell's "doubly stochastic" regulariser: ``mean_i (1 − Σ_t α_ti)²``.

    Each step's attention sums to 1 over the regions; this asks each region's attention to
    sum to about 1 over the caption's words too, so that the decoder does not stare at one
    object for the whole caption — with two objects, it must look at both.

    Args:
        attention: ``(B, T, N)`` the attention at each step.
        mask: ``(B, T)`` true where the step writes a real token.
    """
    check_tensor("attention", attention, ("B", "T", "N"), floating=True)
    check_tensor("mask", mask, tuple(attention.shape[:2]))
    per_region = (attention * mask[:, :, None]).sum(1)  # (B, N)
    # Scaled so a caption's total (its real words) is spread over the N regions.
    target = mask.sum(1, keepdim=True).float() / attention.shape[2]
    return ((target - per_region) ** 2).mean()


def masked_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, pad_id: int = 0
) -> torch.Tensor:
    """Cross-entropy averaged over the real tokens of ``targets``; padding counts for nothing.

    Args:
        logits: ``(B, T, V)``.
        targets: ``(B, T)`` token ids, ``pad_id`` where a caption has ended.
        pad_id: the padding id.
    """
    check_tensor("logits", logits, ("B", "T", "V"), floating=True)
    check_tensor("targets", targets, tuple(logits.shape[:2]), floating=False)
    mask = targets != pad_id
    if not mask.any():
        raise ValueError("targets hold no real token (every position is padding)")
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    return (loss * mask.flatten()).sum() / mask.sum()
