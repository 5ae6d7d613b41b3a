"""A prompt becomes an image, one token at a time (chapter 05, part 4; §3.2.2.2 跨模态序列生成).

The image is a grid of codebook tokens (:class:`~cmlib.generation.codebook.PatchCodebook`), read in
raster order; :class:`PromptPixelCNN` models ``p(token_i | tokens before i, prompt)`` and
draws the tokens one by one. It is a gated PixelCNN (van den Oord et al., 2016, *Conditional
Image Generation with PixelCNN Decoders*) over the token grid — the prior that VQ-VAE used
(van den Oord et al., 2017), and DALL·E's recipe in miniature: discrete image tokens, then an
autoregressive model of them conditioned on text.

Causality comes from the shapes of the convolutions. Two stacks run side by side:

* the **vertical** stack sees the rows above (its output is shifted down one row before the
  other stack reads it);
* the **horizontal** stack sees the tokens to the left in the same row — strictly left in the
  first layer, so a position never sees its own token.

Together they see every earlier token in raster order (no blind spot). The prompt's vector
becomes a map ``s = m(c)`` over the grid, added inside every gate,
``tanh(W_f x + V_f s) · σ(W_g x + V_g s)``: the model learns where a prompt's object goes.

What is missing next to DALL·E: a *learned* discrete VAE with 8192 codes instead of k-means,
a transformer of 12 billion parameters over text and image tokens in one stream instead of a
small PixelCNN beside a bag-of-words prompt encoder, and reranking of many samples with CLIP.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ..train import History, IndexBatches, fit
from ..validate import check_int, check_number, check_positive_ints, check_tensor
from .codebook import PatchCodebook


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """Move every row one down (the top row becomes zeros): row i then holds row i − 1."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def tempered_probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(logits / temperature)`` over the last dimension: the distribution a token is
    drawn from. Below 1 sharpens it towards the likeliest token (the limit 0 is greedy); above 1
    flattens it towards uniform.

    Shapes:
        ``logits (..., K)`` → probabilities ``(..., K)`` summing to 1 over the last dimension.
    """
    check_tensor("logits", logits, floating=True)
    if logits.ndim == 0 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have a non-empty last dimension, got {tuple(logits.shape)}")
    check_number("temperature", temperature, low=1e-6)
    return torch.softmax(logits / temperature, dim=-1)


class GatedLayer(nn.Module):
    """One layer of both stacks, with the prompt's map added inside the gates.

    Args:
        channels: feature channels of each stack.
        cond_dim: channels of the prompt's map ``(B, cond_dim, g, g)``.
        kernel: the (odd, ≥ 3) width of the convolutions.
        first: the first layer: its horizontal convolution excludes the current position, and
            it has no residual connection.
    """

    def __init__(self, channels: int, cond_dim: int, kernel: int = 3, first: bool = False):
        super().__init__()
        half = kernel // 2
        self.first, self.half = first, half
        # vertical: rows i − half … i, columns j − half … j + half (shifted before h reads it)
        self.vertical = nn.Conv2d(channels, 2 * channels, (half + 1, kernel))
        # horizontal: columns j − half … j; in the first layer j − half … j − 1
        self.horizontal = nn.Conv2d(channels, 2 * channels, (1, half if first else half + 1))
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)  # vertical → horizontal
        self.cond_v = nn.Conv2d(cond_dim, 2 * channels, 1)
        self.cond_h = nn.Conv2d(cond_dim, 2 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    @staticmethod
    def gate(x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(
        self, v: torch.Tensor, h: torch.Tensor, s: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        half, width = self.half, h.shape[3]
        v_pre = self.vertical(F.pad(v, (half, half, half, 0)))
        # padded on the left by `half`: each output sees the `half` (+1) columns ending at j;
        # the first layer's narrower kernel yields one extra column, dropped: strictly left
        h_pre = self.horizontal(F.pad(h, (half, 0)))[:, :, :, :width]
        h_pre = h_pre + self.link(shift_down(v_pre))
        v_out = self.gate(v_pre + self.cond_v(s))
        h_out = self.out(self.gate(h_pre + self.cond_h(s)))
        return v_out, h_out if self.first else h + h_out


class PromptPixelCNN(nn.Module):
    """``p(image tokens | prompt)``, one token at a time in raster order.

    Args:
        num_codes: the codebook's size.
        grid_size: tokens per side (8 for 16×16 images in 2×2 patches).
        cond_dim: size of the prompt vector (from a :mod:`cmlib.generation.prompts` encoder).
        channels: feature channels.
        depth: gated layers.
        kernel: the convolutions' width (odd).

    Shapes:
        ``forward(tokens (B, g, g), c (B, cond_dim))`` → logits ``(B, num_codes, g, g)``;
        position ``(i, j)`` predicts its token from the tokens before it and the prompt.
    """

    def __init__(
        self,
        num_codes: int,
        grid_size: int,
        cond_dim: int,
        channels: int = 64,
        depth: int = 6,
        kernel: int = 3,
    ):
        super().__init__()
        check_positive_ints(
            num_codes=num_codes,
            grid_size=grid_size,
            cond_dim=cond_dim,
            channels=channels,
            depth=depth,
        )
        if kernel % 2 != 1 or kernel < 3:
            raise ValueError(f"kernel must be odd and at least 3, got {kernel}")
        self.num_codes, self.grid_size, self.cond_dim = num_codes, grid_size, cond_dim
        self.embed = nn.Embedding(num_codes, channels)
        # location-dependent conditioning (van den Oord et al., 2016, §2.3): the prompt becomes
        # a map, so it can say *where* as well as *what* ("on the left", "a large circle")
        self.cond_map = nn.Linear(cond_dim, cond_dim * grid_size * grid_size)
        self.layers = nn.ModuleList(
            GatedLayer(channels, cond_dim, kernel, first=k == 0) for k in range(depth)
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, 4 * channels, 1),
            nn.ReLU(),
            nn.Conv2d(4 * channels, num_codes, 1),
        )

    def forward(self, tokens: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        g = self.grid_size
        check_tensor("tokens", tokens, ("B", g, g), floating=False, nonempty=True)
        check_tensor("c", c, (len(tokens), self.cond_dim), floating=True)
        v = h = self.embed(tokens).permute(0, 3, 1, 2)
        s = self.cond_map(c).view(len(c), self.cond_dim, g, g)  # the prompt's map: no tokens
        for layer in self.layers:
            v, h = layer(v, h, s)
        return self.head(h)

    @torch.no_grad()
    def sample(
        self,
        c: torch.Tensor,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        guidance: float = 1.0,
    ) -> torch.Tensor:
        """Draw ``(B, g, g)`` tokens for prompt vectors ``c (B, cond_dim)``, in raster order.

        Args:
            c: the prompts' vectors.
            temperature: divides the logits; below 1 sharpens every choice.
            generator: the random draws.
            guidance: classifier-free guidance (Ho & Salimans, 2022): the logits become
                ``l(∅) + guidance · (l(c) − l(∅))``, where ∅ is the zero vector the model was
                trained on for dropped prompts. 1 is plain conditional sampling; above 1 it
                pushes each token towards what *this* prompt makes likelier.
        """
        check_tensor("c", c, ("B", self.cond_dim), floating=True, nonempty=True)
        check_number("temperature", temperature, low=1e-6)
        check_number("guidance", guidance, low=0.0)
        self.eval()
        g, batch = self.grid_size, len(c)
        guided = guidance != 1.0
        cond = torch.cat([c, torch.zeros_like(c)]) if guided else c
        tokens = torch.zeros(batch, g, g, dtype=torch.long, device=c.device)
        for i in range(g):
            for j in range(g):
                both = tokens.repeat(2, 1, 1) if guided else tokens
                logits = self(both, cond)[:, :, i, j]
                if guided:
                    with_prompt, without = logits.chunk(2)
                    logits = without + guidance * (with_prompt - without)
                probs = tempered_probabilities(logits, temperature).cpu()
                tokens[:, i, j] = (
                    torch.multinomial(probs, 1, generator=generator).squeeze(1).to(c.device)
                )
        return tokens


class TokenImageGenerator(nn.Module):
    """A prompt vector → images: :class:`PromptPixelCNN` draws tokens, the codebook paints them.

    It has the interface :func:`cmlib.generation.generative.generate` expects of a generator
    (``cond_dim`` and :meth:`sample_images`), so chapter 04's fidelity tools score it as they
    score the CVAE and the cGAN.

    Args:
        prior: the token model.
        codebook: the patch vocabulary it was trained on.
        guidance: classifier-free guidance for :meth:`PromptPixelCNN.sample` (1: none).
    """

    def __init__(self, prior: PromptPixelCNN, codebook: PatchCodebook, guidance: float = 1.0):
        super().__init__()
        if codebook.num_codes != prior.num_codes:
            raise ValueError(
                f"the codebook has {codebook.num_codes} codes, the prior {prior.num_codes}"
            )
        check_number("guidance", guidance, low=0.0)
        self.prior, self.codebook, self.guidance = prior, codebook, guidance
        self.cond_dim = prior.cond_dim

    def sample_images(
        self, c: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``c (B, cond_dim)`` → ``(B, C, S, S)`` images in [0, 1]."""
        tokens = self.prior.sample(c, temperature, generator, self.guidance)
        return self.codebook.decode(tokens.flatten(1)).clamp(0, 1)


def train_prompt_pixelcnn(
    model: PromptPixelCNN,
    text_encoder: nn.Module,
    tokens: torch.Tensor,
    prompt_fn: Callable[[torch.Tensor], list[str]],
    num_epochs: int,
    device: torch.device,
    batch_size: int = 64,
    lr: float = 3e-3,
    prompt_dropout: float = 0.0,
    seed: int = 0,
    progress: bool = True,
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
) -> History:
    """Next-token cross-entropy over every position of the grid, a fresh prompt each time.

    The prompt encoder trains with the model. Teacher forcing is free here: one forward pass
    scores every position, since each only sees the true tokens before it.

    Args:
        model: the PixelCNN.
        text_encoder: prompts → ``(B, cond_dim)``.
        tokens: ``(N, g, g)`` the training images as codebook tokens.
        prompt_fn: ``indices (B,) -> B prompts`` for those images.
        num_epochs: passes over the images.
        device: where to train.
        batch_size: images per step.
        lr: Adam's peak learning rate (one-cycle).
        prompt_dropout: the share of images trained with the zero vector instead of their
            prompt, so that the model also learns ``p(tokens)`` without one — what
            classifier-free guidance needs.
        seed: the batch order and the dropped prompts.
        progress: show a tqdm bar.
        eval_fn: called after each epoch (eval mode, no gradients) with the ``ModuleDict`` of
            ``"model"`` and ``"text"``; returns metrics for :attr:`History.metrics` (an empty
            dict on epochs it skips). It must not draw from the global random generators.
    """
    g = model.grid_size
    check_tensor("tokens", tokens, ("N", g, g), floating=False, nonempty=True)
    check_int("num_epochs", num_epochs)
    check_number("prompt_dropout", prompt_dropout, low=0.0, high=1.0)
    batches = IndexBatches(len(tokens), batch_size, seed)
    drops = torch.Generator().manual_seed(seed)
    trainable = nn.ModuleDict({"model": model, "text": text_encoder})
    optimizer = torch.optim.Adam(trainable.parameters(), lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, lr, total_steps=num_epochs * len(batches)
    )

    def step(_, idx: torch.Tensor) -> torch.Tensor:
        target = tokens[idx.cpu()].to(device)
        c = text_encoder(prompt_fn(idx.cpu()))
        keep = torch.rand(len(idx), 1, generator=drops) >= prompt_dropout
        logits = model(target, c * keep.to(c.device))
        return F.cross_entropy(logits, target)

    return fit(
        trainable,
        batches,
        optimizer,
        num_epochs,
        device,
        step_fn=step,
        scheduler=schedule,
        grad_clip=1.0,
        eval_fn=eval_fn,
        progress=progress,
        desc="prompt → tokens",
    )
