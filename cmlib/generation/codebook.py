"""Images as token sequences: a k-means codebook of image patches (chapter 05, part 4).

To generate an image "one token at a time" (§3.2.2.2 跨模态序列生成), an image must first
*be* a sequence of tokens. DALL·E learns a discrete VAE for that; here the simplest tokenizer
that works: cut each image into ``patch × patch`` squares, cluster all training patches with
k-means, and replace each patch by the index of its nearest centre. An image of ``S × S``
pixels becomes ``(S / patch)²`` tokens in raster order, and any token sequence decodes back to
pixels by pasting the centres.

Example:
    >>> book = PatchCodebook.fit(images, num_codes=256, patch=4, seed=0)
    >>> tokens = book.encode(images)          # (N, 16) for 16×16 images
    >>> pictures = book.decode(tokens)        # (N, 3, 16, 16), each patch its centre
"""

from __future__ import annotations

import torch
from torch import nn

from ..validate import check_int, check_tensor


def to_patches(images: torch.Tensor, patch: int) -> torch.Tensor:
    """``(N, C, S, S)`` → ``(N, (S/patch)², C·patch²)``: the patches in raster order."""
    check_tensor("images", images, ("N", "C", "S", "S"), floating=True, nonempty=True)
    check_int("patch", patch)
    n, c, s, _ = images.shape
    if s % patch:
        raise ValueError(f"patch must divide the image size {s}, got {patch}")
    g = s // patch
    blocks = images.view(n, c, g, patch, g, patch).permute(0, 2, 4, 1, 3, 5)
    return blocks.reshape(n, g * g, c * patch * patch)


def from_patches(patches: torch.Tensor, channels: int, patch: int) -> torch.Tensor:
    """The inverse of :func:`to_patches`: ``(N, g², C·patch²)`` → ``(N, C, g·patch, g·patch)``."""
    n, count, _ = patches.shape
    g = int(round(count**0.5))
    if g * g != count:
        raise ValueError(f"expected a square number of patches, got {count}")
    blocks = patches.view(n, g, g, channels, patch, patch).permute(0, 3, 1, 4, 2, 5)
    return blocks.reshape(n, channels, g * patch, g * patch)


def kmeans(points: torch.Tensor, k: int, iterations: int = 25, seed: int = 0) -> torch.Tensor:
    """Lloyd's k-means with k-means++ initialisation; returns the ``(k, D)`` centres.

    Args:
        points: ``(M, D)`` the data.
        k: the number of centres (at most M).
        iterations: Lloyd steps (assign every point to its nearest centre, move each centre
            to the mean of its points). A centre left without points is moved to the point
            farthest from its centre.
        seed: the initialisation.
    """
    check_tensor("points", points, ("M", "D"), floating=True, nonempty=True)
    check_int("k", k, maximum=len(points))
    check_int("iterations", iterations, minimum=0)
    generator = torch.Generator().manual_seed(seed)
    centres = points[torch.randint(len(points), (1,), generator=generator)]
    nearest = torch.cdist(points, centres).squeeze(1) ** 2
    for _ in range(1, k):  # k-means++: far points are likelier next centres
        pick = torch.multinomial(nearest / nearest.sum(), 1, generator=generator)
        centres = torch.cat([centres, points[pick]])
        nearest = torch.minimum(nearest, ((points - points[pick]) ** 2).sum(1))
    for _ in range(iterations):
        distance = torch.cdist(points, centres)
        assign = distance.argmin(1)
        sums = torch.zeros_like(centres).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=k)
        empty = counts == 0
        centres = torch.where(empty[:, None], centres, sums / counts.clamp(min=1)[:, None])
        if empty.any():  # re-seed empty centres at the worst-served points
            worst = distance.gather(1, assign[:, None]).squeeze(1).topk(int(empty.sum())).indices
            centres[empty] = points[worst]
    return centres


class PatchCodebook(nn.Module):
    """A vocabulary of image patches: encode images to tokens and tokens back to images.

    Args:
        centres: ``(K, C·patch²)`` the codebook.
        channels: image channels.
        patch: patch side in pixels.
    """

    def __init__(self, centres: torch.Tensor, channels: int = 3, patch: int = 4):
        super().__init__()
        check_tensor(
            "centres", centres, ("K", channels * patch * patch), floating=True, nonempty=True
        )
        self.channels, self.patch = channels, patch
        self.register_buffer("centres", centres.clone())

    @property
    def num_codes(self) -> int:
        return len(self.centres)

    @classmethod
    def fit(
        cls,
        images: torch.Tensor,
        num_codes: int = 256,
        patch: int = 4,
        iterations: int = 25,
        max_patches: int = 60_000,
        seed: int = 0,
    ) -> PatchCodebook:
        """k-means over (at most ``max_patches`` randomly chosen) patches of ``images``."""
        patches = to_patches(images, patch).flatten(0, 1)
        if len(patches) > max_patches:
            keep = torch.randperm(len(patches), generator=torch.Generator().manual_seed(seed))
            patches = patches[keep[:max_patches]]
        return cls(kmeans(patches, num_codes, iterations, seed), images.shape[1], patch)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
        """``(N, C, S, S)`` → ``(N, (S/patch)²)`` long: each patch's nearest centre."""
        patches = to_patches(images, self.patch)
        out = [
            torch.cdist(patches[i : i + batch_size], self.centres[None]).argmin(2)
            for i in range(0, len(patches), batch_size)
        ]
        return torch.cat(out)

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(N, g²)`` tokens → ``(N, C, g·patch, g·patch)`` images."""
        check_tensor("tokens", tokens, ("N", "L"), floating=False, nonempty=True)
        if tokens.min() < 0 or tokens.max() >= self.num_codes:
            raise ValueError(
                f"tokens must be in [0, {self.num_codes}), got "
                f"[{int(tokens.min())}, {int(tokens.max())}]"
            )
        return from_patches(self.centres[tokens], self.channels, self.patch)
