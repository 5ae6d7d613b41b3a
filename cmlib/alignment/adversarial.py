"""Adversarial alignment (对抗对齐): make image and text embeddings indistinguishable.

An image and a text encoder map into one space and share a classifier; a
:class:`ModalityDiscriminator` guesses which modality an embedding came from, and sees the
embeddings through :func:`grad_reverse`, so one backward pass trains it to tell them apart
and the encoders to make that impossible (Ganin & Lempitsky, 2015). Chapter 03, section 8:

* :class:`AdversarialAligner` — the two encoders, the shared :class:`CosineClassifier` and
  the discriminator;
* :func:`modality_loss` — the discriminator's loss and accuracy.

Training the game and checking its result are in :mod:`cmlib.alignment.training`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..validate import check_number, check_positive_ints, check_tensor


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, strength):
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.strength * grad, None


def grad_reverse(x: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """Gradient reversal (梯度反转, Ganin & Lempitsky, 2015): identity forward, ``−strength ×``
    gradient backward. Whatever minimises a loss *after* this layer, the layers *before* it
    maximise."""
    check_tensor("x", x)
    check_number("strength", strength, low=0)
    return _GradReverse.apply(x, float(strength))


def _check_embeddings(z: torch.Tensor, embed_dim: int, what: str = "embeddings") -> None:
    check_tensor(what, z, ("B", embed_dim))


class ModalityDiscriminator(nn.Module):
    """Tells image embeddings (label 1) from text embeddings (label 0): one logit per embedding.

    Args:
        embed_dim: size of the embeddings.
        hidden_dim: width of the hidden layer; ``None`` for a linear (logistic) discriminator.

    Shapes:
        ``(B, embed_dim)`` → ``(B,)`` logits.
    """

    def __init__(self, embed_dim: int, hidden_dim: int | None = 64):
        super().__init__()
        check_positive_ints(embed_dim=embed_dim)
        self.embed_dim, self.hidden_dim = embed_dim, hidden_dim
        if hidden_dim is None:
            self.net = nn.Sequential(nn.Linear(embed_dim, 1))
        else:
            check_positive_ints(hidden_dim=hidden_dim)
            self.net = nn.Sequential(
                nn.Linear(embed_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 1)
            )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_embeddings(z, self.embed_dim)
        return self.net(z).squeeze(1)


def modality_loss(
    discriminator: ModalityDiscriminator, z_image: torch.Tensor, z_text: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's loss and accuracy on a batch of each modality.

    Args:
        discriminator: scores an embedding; > 0 means "image".
        z_image: ``(B_i, embed_dim)`` image embeddings (label 1).
        z_text: ``(B_t, embed_dim)`` text embeddings (label 0).

    Returns:
        ``(loss, accuracy)``: binary cross-entropy over all ``B_i + B_t`` embeddings, and the
        share it labels correctly.
    """
    if not isinstance(discriminator, ModalityDiscriminator):
        raise TypeError(
            f"discriminator must be a ModalityDiscriminator, got {type(discriminator).__name__}"
        )
    for name, z in (("image", z_image), ("text", z_text)):
        _check_embeddings(z, discriminator.embed_dim, f"{name} embeddings")
    logits = discriminator(torch.cat([z_image, z_text]))
    modality = torch.cat([torch.ones(len(z_image)), torch.zeros(len(z_text))]).to(logits)
    loss = F.binary_cross_entropy_with_logits(logits, modality)
    return loss, ((logits > 0).to(modality) == modality).float().mean()


class CosineClassifier(nn.Module):
    """Cosine classifier (余弦分类器): ``logits = scale · cos(z, w_c)`` for each class ``c``.

    Only directions count, so embeddings on the unit sphere suffice, and every class is a
    direction ``w_c`` that both modalities are pulled towards. ``scale`` is the inverse
    temperature: the logits lie in ``[−scale, scale]``.

    Args:
        embed_dim: size of the embeddings.
        num_classes: number of classes.
        scale: inverse temperature.

    Shapes:
        ``(B, embed_dim)`` → ``(B, num_classes)``.
    """

    def __init__(self, embed_dim: int, num_classes: int, scale: float = 20.0):
        super().__init__()
        check_positive_ints(embed_dim=embed_dim, num_classes=num_classes)
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        self.embed_dim, self.scale = embed_dim, float(scale)
        self.weight = nn.Parameter(torch.randn(num_classes, embed_dim) / math.sqrt(embed_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_embeddings(z, self.embed_dim)
        return self.scale * F.normalize(z, dim=1) @ F.normalize(self.weight, dim=1).T


class AdversarialAligner(nn.Module):
    """Adversarial alignment (对抗对齐) of an image and a text encoder in one embedding space.

    Both encoders feed one shared classifier (the task), and a
    :class:`ModalityDiscriminator` tries to tell which modality an embedding
    came from. The discriminator sees the embeddings through
    :func:`grad_reverse`, so one backward pass trains it to tell them apart and
    the encoders to make that impossible. Train it with
    :func:`train_adversarial_alignment`.

    With ``scale`` (the default) the embeddings are L2-normalised — both modalities live on
    the unit sphere, so neither can escape the discriminator by growing its norm — and the
    classifier is a :class:`CosineClassifier`. With ``scale=None`` they are raw and the
    classifier is linear.

    Args:
        image_encoder: image input → ``(B, embed_dim)``.
        text_encoder: text input → ``(B, embed_dim)``.
        embed_dim: the shared embedding size.
        num_classes: classes of the shared task.
        disc_hidden: hidden width of the discriminator (``None``: linear).
        scale: inverse temperature of the cosine classifier; ``None`` for raw embeddings and a
            linear classifier.
        reverse: the gradient reversal ``(z, strength) -> z``, :func:`grad_reverse` unless a
            reader's own is given (exercise 3.5).
    """

    def __init__(
        self,
        image_encoder: nn.Module,
        text_encoder: nn.Module,
        embed_dim: int,
        num_classes: int,
        disc_hidden: int | None = None,
        scale: float | None = 20.0,
        reverse: Callable[[torch.Tensor, float], torch.Tensor] = grad_reverse,
    ):
        super().__init__()
        check_positive_ints(embed_dim=embed_dim, num_classes=num_classes)
        if not callable(reverse):
            raise TypeError(f"reverse must be a function, got {type(reverse).__name__}")
        self.reverse = reverse
        for name, module in (("image_encoder", image_encoder), ("text_encoder", text_encoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"{name} must be an nn.Module, got {type(module).__name__}")
        self.image_encoder, self.text_encoder = image_encoder, text_encoder
        self.embed_dim, self.normalize = embed_dim, scale is not None
        self.classifier = (
            nn.Linear(embed_dim, num_classes)
            if scale is None
            else CosineClassifier(embed_dim, num_classes, scale)
        )
        self.discriminator = ModalityDiscriminator(embed_dim, disc_hidden)

    def embed(
        self, image_input: Sequence[torch.Tensor], text_input: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z_image, z_text)``, each ``(B, embed_dim)`` (unit length unless ``scale=None``).

        Args:
            image_input: tuple of the image encoder's arguments.
            text_input: tuple of the text encoder's arguments.
        """
        z_img = self.image_encoder(*image_input)
        z_txt = self.text_encoder(*text_input)
        for name, z in (("image", z_img), ("text", z_txt)):
            check_tensor(f"the {name} encoder's output", z, ("B", self.embed_dim))
        if self.normalize:
            z_img, z_txt = F.normalize(z_img, dim=1), F.normalize(z_txt, dim=1)
        return z_img, z_txt

    def embedding_losses(
        self,
        z_image: torch.Tensor,
        z_text: torch.Tensor,
        labels: torch.Tensor,
        strength: float = 1.0,
    ) -> dict[str, torch.Tensor]:
        """:meth:`losses` for embeddings already computed by :meth:`embed`."""
        check_tensor("labels", labels, (len(z_image),))
        if len(z_text) != len(z_image):
            raise ValueError(
                f"expected B images and B texts, got {len(z_image)} images and {len(z_text)} texts"
            )
        y = torch.cat([labels, labels])
        task_logits = self.classifier(torch.cat([z_image, z_text]))
        disc, disc_acc = modality_loss(
            self.discriminator, self.reverse(z_image, strength), self.reverse(z_text, strength)
        )
        return {
            "task": F.cross_entropy(task_logits, y),
            "disc": disc,
            "task_acc": (task_logits.argmax(1) == y).float().mean(),
            "disc_acc": disc_acc,
        }

    def losses(
        self,
        image_input: Sequence[torch.Tensor],
        text_input: Sequence[torch.Tensor],
        labels: torch.Tensor,
        strength: float = 1.0,
    ) -> dict[str, torch.Tensor]:
        """Task and discriminator losses and accuracies for one batch.

        Args:
            image_input: tuple of the image encoder's arguments.
            text_input: tuple of the text encoder's arguments.
            labels: ``(B,)`` task classes (the same for the image and its text).
            strength: gradient-reversal strength; 0 trains the discriminator without
                pushing back on the encoders.

        Returns:
            ``task``, ``disc`` (losses; minimise ``task + disc``), ``task_acc``, ``disc_acc``.
        """
        z_img, z_txt = self.embed(image_input, text_input)
        return self.embedding_losses(z_img, z_txt, labels, strength)
