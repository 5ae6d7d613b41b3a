"""CycleGAN's losses and its image pool.

* :func:`lsgan_discriminator_loss`, :func:`lsgan_generator_loss` — least-squares GAN losses
  (Mao et al., 2017). A sigmoid cross-entropy saturates once D is sure, and G's gradient
  vanishes; a squared error keeps pulling fakes towards the real target however far off they are.
* :func:`cycle_loss` — ‖F(G(x)) − x‖₁: whatever G does, F must be able to undo it. Without it
  G may map every photo to *some* good-looking sketch, not to *its* sketch.
* :func:`object_mask`, :func:`object_cycle_loss` — the cycle's error averaged over each image's
  object (and the pixels around it; roughly, on a textured photo) instead of the whole image.
  In a 16-px photo a small square and a small circle differ by a few corner pixels: the plain
  L1 loss barely charges for them, while the photo's background texture, which a true sketch
  does not carry, dominates it.
* :func:`identity_loss` — ‖G(y) − y‖₁ for y already in G's target domain: G should leave a
  sketch alone. Any colour permutation satisfies the cycle; this term rules them out.
* :func:`object_identity_loss` — the same error averaged over each image's object: on a
  mostly white sketch the plain average barely charges for a recoloured object.
* :class:`ImagePool` — D learns from a history of 50 past fakes, not only the latest, so G
  cannot win by hopping between modes that D has just forgotten (Shrivastava et al., 2017).
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from ..validate import check_int


def lsgan_discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """½[(D(real) − 1)² + D(fake)²], averaged over patches. Halved as in the reference, which
    slows D relative to G."""
    return 0.5 * (
        F.mse_loss(d_real, torch.ones_like(d_real)) + F.mse_loss(d_fake, torch.zeros_like(d_fake))
    )


def lsgan_generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """(D(G(x)) − 1)², averaged over patches: G wants its fakes scored as real."""
    return F.mse_loss(d_fake, torch.ones_like(d_fake))


def _check_pair(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise TypeError(f"{what} needs two tensors, got {type(a).__name__} and {type(b).__name__}")
    if a.shape != b.shape:
        raise ValueError(
            f"{what} needs tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between F(G(x)) and x (an L1 loss, which blurs less than L2)."""
    _check_pair(reconstructed, original, "cycle_loss")
    return (reconstructed - original).abs().mean()


def object_mask(images: torch.Tensor, threshold: float = 0.15, grow: int = 1) -> torch.Tensor:
    """Roughly where each image's object is: pixels far from the image's median colour, grown.

    The background fills most of a ShapesWorld image, so the per-channel median is a
    background colour; a pixel counts as object when some channel differs from it by more than
    ``threshold``. On a sketch's flat background that is the object; on a photo's textured one
    it also takes in the background patches that stray as far from the median. The mask is
    then grown by ``grow`` pixels (a max-pool), so that it also covers the pixels just outside
    the object, where a circle drawn for a square goes wrong.

    Args:
        images: ``(B, C, H, W)`` in [0, 1].
        threshold: colour distance from the median that counts as object.
        grow: pixels to grow the mask by (0: none).

    Returns:
        ``(B, 1, H, W)``, 1.0 on the object, 0.0 elsewhere (no gradient).
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(
            f"object_mask needs images (B, C, H, W), got {getattr(images, 'shape', type(images))}"
        )
    check_int("grow", grow, minimum=0)
    images = images.detach()
    median = images.flatten(2).median(dim=2).values[:, :, None, None]
    mask = ((images - median).abs().amax(dim=1, keepdim=True) > threshold).float()
    if grow:
        mask = F.max_pool2d(mask, 2 * grow + 1, stride=1, padding=grow)
    return mask


def _object_l1(output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The L1 error averaged over each reference image's object mask, then over the batch."""
    mask = object_mask(reference)
    error = ((output - reference).abs().mean(dim=1, keepdim=True) * mask).sum((1, 2, 3))
    return (error / mask.sum((1, 2, 3)).clamp(min=1.0)).mean()


def object_cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """The cycle's L1 error averaged over each original's object mask, then over the batch.

    Every image's object counts the same, however small it is. An image with no object pixels
    adds nothing (its mask sum is clamped to 1)."""
    _check_pair(reconstructed, original, "object_cycle_loss")
    return _object_l1(reconstructed, original)


def object_identity_loss(same: torch.Tensor, target_domain: torch.Tensor) -> torch.Tensor:
    """The identity error ‖G(y) − y‖₁ averaged over each y's object mask, then over the batch.

    A sketch's object is a pale tint on a white page that fills most of it: the plain identity
    loss is almost all background, and G can recolour the object for a few hundredths of it.
    Averaged over the object (and the pixel around it), a recoloured object costs several
    times more. On a photo (F's identity) the mask also takes in background patches whose
    texture strays far from the median (:func:`object_mask`), so there the term also asks F
    to leave those alone.

    Args:
        same: the generator's output for images already in its target domain ``(B, C, H, W)``.
        target_domain: those images ``(B, C, H, W)``.

    Returns:
        A scalar tensor.
    """
    _check_pair(same, target_domain, "object_identity_loss")
    return _object_l1(same, target_domain)


def identity_loss(same: torch.Tensor, target_domain: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between G(y) and y, for y from G's own output domain."""
    _check_pair(same, target_domain, "identity_loss")
    return (same - target_domain).abs().mean()


class ImagePool:
    """A buffer of past fakes that D trains on (the reference's ``ImagePool``).

    Until it holds ``size`` images, each new fake is stored and returned. After that, each fake
    is, with probability ½, swapped for a random stored one (which is returned, the new fake
    taking its place); otherwise it is returned as is. ``size=0`` disables the pool.

    Args:
        size: how many past fakes to keep.
        seed: seeds the pool's own random choices.
    """

    def __init__(self, size: int = 50, seed: int = 0):
        check_int("size", size, minimum=0)
        self.size = size
        self.images: list[torch.Tensor] = []
        self._rng = random.Random(seed)

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        """The batch D should see in place of ``fakes`` ``(B, ...)``; detached from G's graph."""
        fakes = fakes.detach()
        if self.size == 0:
            return fakes
        out = []
        for image in fakes:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self._rng.random() < 0.5:
                k = self._rng.randrange(self.size)
                out.append(self.images[k])
                self.images[k] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)
