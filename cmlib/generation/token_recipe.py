"""Chapter 05 part 4's token model, written once: its data, vocabulary, training and registry entry.

Part 4 (``05_text_to_image``) builds the pieces in front of the reader and trains the model;
part 5 (``05_text_to_image_fidelity``) scores it. Both go through :class:`TokenPriorRecipe`, so
that part 5 gets exactly part 4's model: from the model registry where part 4 has run on this
machine, and otherwise trained here with the same recipe and seed (about two minutes on two
cores in the cpu profile).

The registry entry, ``ch05-token-prior-<profile>-seed<seed>``, holds three modules: the patch
codebook (k-means centres), the PixelCNN and its bag-of-words prompt encoder. It is reused only
while the recipe and the code that trains it (this module, the PixelCNN, the codebook, the
prompt encoder and ShapesWorld) are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .. import registry, runtime, text
from .. import train as train_module
from ..data import shapes
from ..data.cache import random_state_kept
from ..data.shapes.prompt_text import prompt_sampler
from ..data.shapes.tasks import one_object_photos
from ..data.shapes.text import shapes_vocab
from ..train import History
from ..validate import check_choice, check_int, check_number
from . import autoregressive, codebook, prompts
from .autoregressive import PromptPixelCNN, TokenImageGenerator, train_prompt_pixelcnn
from .codebook import PatchCodebook

#: ``ch05-token-prior-<profile>-seed<seed>``
STEM = "ch05-token-prior"


@dataclass(frozen=True)
class TokenPriorRecipe:
    """Chapter 05 part 4's text → image-token model. The defaults are the cpu profile's.

    Attributes:
        num_train: one-object photo-style training images.
        image_size: their side in pixels.
        num_codes: the codebook's size (k-means centres).
        patch: the side of a patch, in pixels; an image is a grid of ``image_size / patch``
            tokens per side.
        channels, depth: the PixelCNN's width and number of gated layers.
        num_epochs: passes over the training images.
        cond_dim: size of the prompt vector.
        prompt_dropout: share of images trained without their prompt (for guidance).

    Shapes:
        :meth:`build` gives a :class:`PromptPixelCNN` over ``(B, grid, grid)`` tokens and a
        prompt encoder of ``B`` strings → ``(B, cond_dim)``.
    """

    num_train: int = 6000
    image_size: int = 16
    num_codes: int = 512
    patch: int = 2
    channels: int = 32
    depth: int = 5
    num_epochs: int = 10
    cond_dim: int = 32
    prompt_dropout: float = 0.15

    def __post_init__(self):
        for name in ("num_train", "image_size", "num_codes", "patch", "channels", "depth"):
            check_int(name, getattr(self, name))
        check_int("num_epochs", self.num_epochs)
        check_int("cond_dim", self.cond_dim)
        if self.image_size % self.patch:
            raise ValueError(
                f"patch must divide image_size, got patch {self.patch} and size {self.image_size}"
            )
        check_number("prompt_dropout", self.prompt_dropout, low=0.0, high=1.0)

    @classmethod
    def for_profile(cls, profile: str) -> TokenPriorRecipe:
        """The recipe of run profile ``"cpu"`` or ``"gpu"`` (3× the width and the epochs,
        more layers, more than three times the images)."""
        check_choice("profile", profile, ("cpu", "gpu"))
        if profile == "cpu":
            return cls()
        return cls(num_train=20000, channels=96, depth=8, num_epochs=30)

    @property
    def grid(self) -> int:
        """Tokens per side."""
        return self.image_size // self.patch

    def data(self, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], Callable]:
        """The training images, their labels, and a prompt sampler over them.

        Returns:
            ``(images (N, 3, S, S), attrs, prompt_fn)``; ``prompt_fn(indices)`` gives fresh
            prompts for those images at every call (its random state is the sampler's own,
            seeded with ``seed``).
        """
        check_int("seed", seed, minimum=0)
        images, attrs = one_object_photos("train", self.num_train, self.image_size, seed)
        return images, attrs, prompt_sampler(attrs, np.random.default_rng(seed))

    def fit_codebook(self, images: torch.Tensor, seed: int) -> PatchCodebook:
        """k-means over the images' patches: the vocabulary the model writes in."""
        return PatchCodebook.fit(images, self.num_codes, self.patch, seed=seed)

    def build(self) -> tuple[PromptPixelCNN, prompts.BagOfWordsEncoder]:
        """A new, untrained prompt encoder and PixelCNN, made in that order (so a run seeded
        the same way gets the same initial weights)."""
        text_encoder = prompts.BagOfWordsEncoder(shapes_vocab(), self.cond_dim)
        prior = PromptPixelCNN(
            self.num_codes, self.grid, self.cond_dim, channels=self.channels, depth=self.depth
        )
        return prior, text_encoder

    def train(
        self,
        prior: PromptPixelCNN,
        text_encoder: nn.Module,
        tokens: torch.Tensor,
        prompt_fn: Callable[[torch.Tensor], list[str]],
        device: torch.device,
        seed: int = 0,
        progress: bool = True,
        eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    ) -> History:
        """:func:`~cmlib.generation.autoregressive.train_prompt_pixelcnn` with this recipe's
        settings; arguments as there."""
        return train_prompt_pixelcnn(
            prior,
            text_encoder,
            tokens,
            prompt_fn,
            self.num_epochs,
            device,
            prompt_dropout=self.prompt_dropout,
            seed=seed,
            progress=progress,
            eval_fn=eval_fn,
        )


def token_prior_name(seed: int) -> str:
    """The registry entry of part 4's model for this run profile and ``seed``."""
    check_int("seed", seed, minimum=0)
    return f"{STEM}-{runtime.profile()}-seed{seed}"


def _code() -> list:
    # the data, the model and its encoder, the vocabulary, and the loop, seeding and batches
    return [
        shapes,
        codebook,
        autoregressive,
        prompts,
        text,
        train_module,
        runtime,
        TokenPriorRecipe,
    ]


def _settings(recipe: TokenPriorRecipe, seed: int) -> dict:
    return {**asdict(recipe), "seed": seed}


def token_prior_bundle(
    recipe: TokenPriorRecipe, book: PatchCodebook | None = None
) -> nn.ModuleDict:
    """A new ``ModuleDict`` of ``"codebook"``, ``"prior"`` (untrained, from :meth:`build`) and
    ``"text"``; without ``book``, a codebook of zeros to load saved centres into."""
    prior, text_encoder = recipe.build()
    if book is None:  # a placeholder of the right shape, for loading saved centres into
        book = PatchCodebook(torch.zeros(recipe.num_codes, 3 * recipe.patch**2), 3, recipe.patch)
    return nn.ModuleDict({"codebook": book, "prior": prior, "text": text_encoder})


def save_token_prior(
    prior: PromptPixelCNN,
    text_encoder: prompts.BagOfWordsEncoder,
    book: PatchCodebook,
    recipe: TokenPriorRecipe,
    seed: int,
    metrics: dict[str, float] | None = None,
) -> registry.SavedModel:
    """Put part 4's trained model (codebook, PixelCNN, prompt encoder) in the model registry."""
    if not isinstance(recipe, TokenPriorRecipe):
        raise TypeError(f"recipe must be a TokenPriorRecipe, got {type(recipe).__name__}")
    for name, value, kind in (
        ("prior", prior, PromptPixelCNN),
        ("text_encoder", text_encoder, prompts.BagOfWordsEncoder),
        ("book", book, PatchCodebook),
    ):
        if not isinstance(value, kind):
            raise TypeError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
    if book.num_codes != recipe.num_codes or prior.num_codes != recipe.num_codes:
        raise ValueError(
            f"the recipe has {recipe.num_codes} codes, the codebook {book.num_codes} and the "
            f"PixelCNN {prior.num_codes}"
        )
    bundle = nn.ModuleDict({"codebook": book, "prior": prior, "text": text_encoder})
    return registry.save_model(
        token_prior_name(seed), bundle, _settings(recipe, seed), _code(), metrics
    )


def train_token_prior(
    recipe: TokenPriorRecipe, seed: int, device: torch.device, progress: bool = True
) -> tuple[nn.ModuleDict, History]:
    """Part 4's whole run in one call: data, codebook, initial weights, training.

    It seeds the global random generators with ``seed`` before it builds the model, as part 4
    does, and leaves them where training left them.

    Returns:
        ``(bundle, history)``: ``bundle`` holds ``"codebook"``, ``"prior"`` and ``"text"``, all
        on ``device``.
    """
    if not isinstance(recipe, TokenPriorRecipe):
        raise TypeError(f"recipe must be a TokenPriorRecipe, got {type(recipe).__name__}")
    if not isinstance(device, torch.device):
        raise TypeError(f"device must be a torch.device, got {type(device).__name__}")
    images, _, prompt_fn = recipe.data(seed)
    book = recipe.fit_codebook(images, seed)
    tokens = book.encode(images).view(-1, recipe.grid, recipe.grid)
    runtime.seed_everything(seed)  # the initial weights, as part 4 draws them
    bundle = token_prior_bundle(recipe, book)
    history = recipe.train(
        bundle["prior"], bundle["text"], tokens, prompt_fn, device, seed, progress
    )
    return bundle.to(device), history


def load_or_train_token_prior(
    seed: int,
    device: torch.device,
    guidance: float = 1.0,
    progress: bool = True,
    recipe: TokenPriorRecipe | None = None,
) -> tuple[TokenImageGenerator, prompts.BagOfWordsEncoder, str]:
    """Part 4's model: from the registry, or trained here exactly as part 4 trains it.

    Loading and training both leave the caller's global random state as it was (training
    seeds its own, as part 4 does before it builds the model), so the cells after this one draw
    the same numbers either way.

    Args:
        seed: the run's seed (part of the entry's name).
        device: where the model is put (and trained, if it must be).
        guidance: the generator's classifier-free guidance (1: none).
        progress: show a tqdm bar while training.
        recipe: the recipe; ``None`` (the chapters) is this run profile's. Another recipe
            replaces the entry of the same name (the tests use a tiny one).

    Returns:
        ``(generator, text_encoder, status)``, both in eval mode on ``device``; status is
        ``"loaded"`` or why the model was trained.
    """
    check_number("guidance", guidance, low=0.0)  # before minutes of training, not after
    if recipe is None:
        recipe = TokenPriorRecipe.for_profile(runtime.profile())
    if not isinstance(recipe, TokenPriorRecipe):
        raise TypeError(f"recipe must be a TokenPriorRecipe or None, got {type(recipe).__name__}")

    def train(bundle: nn.ModuleDict) -> dict[str, float]:
        trained, history = train_token_prior(recipe, seed, device, progress)
        bundle.load_state_dict(trained.state_dict())
        return {"final_loss": history.train_loss[-1]}

    with random_state_kept():
        bundle, status = registry.load_or_train(
            token_prior_name(seed),
            _settings(recipe, seed),
            lambda _: token_prior_bundle(recipe),
            train,
            _code(),
        )
    bundle = bundle.to(device).eval()
    generator = TokenImageGenerator(bundle["prior"], bundle["codebook"], guidance).eval()
    return generator, bundle["text"], status
