"""The studio itself: a prompt in; found, drawn, described and translated images out, each with
its round-trip verdict.

Five steps, each one of the course's models (:mod:`.models` says which chapter each comes from):

1. **understand** the prompt (:func:`.understand.understand`), or say what the studio knows;
2. **find** the gallery's best matches with the dual encoder (chapter 07);
3. **draw** new images with the CVAE (chapter 04);
4. **describe** every image with the captioner (chapter 05);
5. **translate** photos to sketches with the CycleGAN (chapter 06);

and then **check**: each caption is read back and compared with the prompt (:mod:`.verdict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..captioning import caption_images
from ..data.shapes import POSITIONS, SIZES
from ..data.shapes.captioning import caption_vocab
from ..data.shapes.parse import Parsed
from ..data.shapes.prompt_text import make_prompt
from ..data.shapes.text import shapes_vocab
from ..generation.generative import generate
from ..retrieval import DualEncoder
from ..shapes_retrieval import load_split
from ..validate import check_int, check_tensor
from .models import IMAGE_SIZE, Describer, Drawer, load_role, upsample_for_captions
from .understand import PromptNotUnderstood, Request, understand, what_it_understands
from .verdict import Verdict, round_trip_verdict

#: The CVAE's sampling temperature (chapter 04: lower trades variety for fidelity).
TEMPERATURE = 0.3


@dataclass(frozen=True)
class Shown:
    """One image the studio shows, with what it says about it.

    Attributes:
        kind: ``"found"``, ``"drawn"`` or ``"sketch"`` (a translation of a found or drawn photo).
        image: ``(3, 16, 16)`` in [0, 1].
        caption: the describer's caption.
        verdict: the caption read back and compared with the prompt.
        score: the finder's cosine similarity for found images, else ``None``.
    """

    kind: str
    image: torch.Tensor
    caption: str
    verdict: Verdict
    score: float | None = None


@dataclass
class Answer:
    """The studio's answer to one prompt: the request and every image shown, by kind."""

    request: Request
    shown: list[Shown] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Shown]:
        """The images of one kind, in the order shown."""
        return [s for s in self.shown if s.kind == kind]


def _the_object(scene: Parsed) -> tuple[str | None, str, str]:
    """The ``(size, colour, shape)`` of a one-object scene."""
    if not isinstance(scene, Parsed):
        raise TypeError(f"scene must be a Parsed scene, got {type(scene).__name__}")
    if len(scene.objects) != 1:
        raise ValueError(f"the studio works with one object, got {len(scene.objects)}")
    return scene.objects[0]


def completions(scene: Parsed) -> list[str]:
    """The prompt with what it leaves unsaid filled in every way, in canonical words.

    The finder learned from captions that name size, colour, shape and position; "a red
    circle" says less than any of them. So the studio asks with every completion ("a small red
    circle on the left", …) and scores an image by its best one.
    """
    size, color, shape = _the_object(scene)
    sizes = [size] if size is not None else list(SIZES)
    positions = [scene.position] if scene.position is not None else list(POSITIONS)
    return [make_prompt(color, shape, s, p) for s in sizes for p in positions]


def model_text(scene: Parsed) -> str:
    """The prompt in the models' own words: canonical, one object ("a small red circle on the
    left"), so that synonyms and verbs reach the finder and the drawer as their training
    captions say it."""
    size, color, shape = _the_object(scene)
    return make_prompt(color, shape, size, scene.position)


class Studio:
    """The course's models behind one prompt box.

    Args:
        finder: the dual encoder (chapter 07).
        drawer: the CVAE and its prompt encoder (chapter 04).
        describer: the captioner and its grid encoder (chapter 05).
        translator: the CycleGAN (chapter 06); ``g`` maps photos to sketches.
        gallery: ``(N, 3, 16, 16)`` real photos the finder searches.
        device: where the models run.
        gallery_attrs: the gallery's true attributes (``{"color": (N,), ...}``), to evaluate.
    """

    def __init__(
        self,
        finder: DualEncoder,
        drawer: Drawer,
        describer: Describer,
        translator: torch.nn.Module,
        gallery: torch.Tensor,
        device: torch.device,
        gallery_attrs: dict[str, torch.Tensor] | None = None,
    ):
        if gallery.ndim != 4 or tuple(gallery.shape[1:]) != (3, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(
                f"gallery must be (N, 3, {IMAGE_SIZE}, {IMAGE_SIZE}) images, "
                f"got shape {tuple(gallery.shape)}"
            )
        self.finder, self.drawer, self.describer = finder, drawer, describer
        self.translator, self.gallery, self.device = translator, gallery, device
        self.gallery_attrs = gallery_attrs
        self.vocab = shapes_vocab()
        with torch.no_grad():  # the gallery is embedded once
            self.gallery_embeddings = torch.cat(
                [finder.encode_image(x.to(device)).cpu() for x in gallery.split(500)]
            )

    @classmethod
    def load(
        cls, seed: int, device: torch.device, gallery_size: int = 1000, progress: bool = True
    ) -> tuple[Studio, dict[str, str]]:
        """Load (or train) every role's model; the gallery is ``gallery_size`` test photos.

        Returns:
            ``(studio, status of each role)``.
        """
        check_int("gallery_size", gallery_size)
        models, statuses = {}, {}
        for role in ("finder", "drawer", "describer", "translator"):
            models[role], statuses[role] = load_role(role, seed, device, progress)
        test = load_split("test", gallery_size, IMAGE_SIZE)
        return cls(**models, gallery=test.images, device=device, gallery_attrs=test.attrs), statuses

    def with_gallery(
        self, images: torch.Tensor, attrs: dict[str, torch.Tensor] | None = None
    ) -> Studio:
        """The same models over another gallery (e.g. with held-out pairs added)."""
        return Studio(
            self.finder, self.drawer, self.describer, self.translator, images, self.device, attrs
        )

    # ------------------------------------------------------------ the steps
    def understand(self, prompt: str) -> Request:
        """The prompt as a one-object request, or :class:`PromptNotUnderstood`."""
        request = understand(prompt)
        if len(request.scene.objects) != 1:
            raise PromptNotUnderstood(
                f"The studio draws and finds one shape at a time; '{prompt}' asks for "
                f"{len(request.scene.objects)}. {what_it_understands()}"
            )
        return request

    @torch.no_grad()
    def find(
        self, texts: str | list[str], k: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ``k`` gallery images closest to ``texts`` (each image scored by its closest text):
        ``(images, cosine scores, indices)``."""
        check_int("k", k)
        texts = [texts] if isinstance(texts, str) else list(texts)
        ids, lengths = self.vocab.encode_batch(texts)  # no <bos>/<eos>, as chapter 07 trained
        queries = self.finder.encode_text(ids.to(self.device), lengths.to(self.device)).cpu()
        scores = (queries @ self.gallery_embeddings.T).max(dim=0).values
        top = scores.topk(min(k, len(scores)))
        return self.gallery[top.indices], top.values, top.indices

    def draw(
        self, text: str, n: int, seed: int = 0, temperature: float = TEMPERATURE
    ) -> torch.Tensor:
        """``n`` new images ``(n, 3, 16, 16)`` for ``text`` (``temperature``: the CVAE's)."""
        return generate(self.drawer.cvae, self.drawer.text, text, n, seed, temperature)

    def describe(self, images: torch.Tensor) -> list[str]:
        """A detailed caption (size, colour, shape, position) for each 16-pixel image.

        Chapter 05's style prompt "in detail" asks for every attribute, so the verdict can
        check whatever the prompt said; greedy decoding.
        """
        vocab = caption_vocab()
        decoded = caption_images(
            self.describer.captioner,
            self.describer.encoder,
            upsample_for_captions(images),
            vocab,
            style_prompt="in detail",
        )
        return decoded.texts(vocab)

    @torch.no_grad()
    def translate(self, photos: torch.Tensor) -> torch.Tensor:
        """Photos ``(B, 3, 16, 16)`` → sketches of the same scenes (the CycleGAN's G)."""
        check_tensor("photos", photos, ("B", 3, IMAGE_SIZE, IMAGE_SIZE), floating=True)
        return self.translator.g(photos.to(self.device)).clamp(0, 1).cpu()

    def check(self, request: Request, images: torch.Tensor) -> tuple[list[str], list[Verdict]]:
        """Describe ``images`` and compare each caption with the request."""
        captions = self.describe(images)
        return captions, [round_trip_verdict(request.scene, c) for c in captions]

    # ------------------------------------------------------------ all of it
    def serve(
        self, prompt: str, k: int = 3, n: int = 3, seed: int = 0, sketches: bool = True
    ) -> Answer:
        """Understand, find ``k``, draw ``n``, translate them, describe and check everything.

        Raises:
            PromptNotUnderstood: with a message naming what the studio understands.
        """
        request = self.understand(prompt)
        text = model_text(request.scene)
        found, scores, _ = self.find(completions(request.scene), k)
        drawn = self.draw(text, n, seed)
        groups = [("found", found, scores.tolist()), ("drawn", drawn, [None] * len(drawn))]
        if sketches:
            photos = torch.cat([found, drawn])
            groups.append(("sketch", self.translate(photos), [None] * len(photos)))
        answer = Answer(request)
        for kind, images, image_scores in groups:
            captions, verdicts = self.check(request, images)
            answer.shown += [
                Shown(kind, image, caption, verdict, score)
                for image, caption, verdict, score in zip(images, captions, verdicts, image_scores)
            ]
        return answer
