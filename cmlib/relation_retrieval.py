"""Chapter 07 part 2: do dual encoders read word order? Relations and hard negatives.

Two-object ShapesWorld scenes ("a large purple triangle to the right of a large orange circle").
Swap the two objects and the caption describes another scene, the mirror image, with exactly
the same words. A model that reads captions as a bag of words cannot tell the two apart. This
module holds that test and one remedy:

* :func:`load_relation_split` — scenes, their five caption paraphrases, and each scene's
  *swapped* caption (the same words, the objects exchanged);
* :func:`swap_accuracy` — how often an image scores its own caption above its swapped one
  (chance 0.5), and :func:`relation_metrics`, with attribute R@1 beside it;
* :func:`hard_negative_clip_loss` and :func:`hard_negative_step` — CLIP's loss with each
  image's swapped caption added as one more wrong caption to reject, as NegCLIP does
  (Yuksekgonul et al., 2023, "When and why vision-language models behave like bags-of-words").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from .data.shapes import ShapesWorld
from .data.shapes.text import INVERSE_RELATION, canonical_caption, shapes_vocab
from .data.shapes.world import Scene
from .retrieval import DualEncoder, caption_tensors, clip_loss, retrieval_metrics
from .shapes_retrieval import CaptionedSplit, embed_split, make_dual_encoder
from .train import History, fit_steps
from .validate import check_choice, check_int, check_tensor


@dataclass
class RelationSplit(CaptionedSplit):
    """A :class:`~cmlib.shapes_retrieval.CaptionedSplit` of two-object scenes, plus:

    ``swapped_ids`` ``(N, T)`` and ``swapped_lengths`` ``(N,)``: each scene's canonical caption
    with its two objects exchanged; ``scene_ids`` ``(N,)``: equal for scenes that are the same
    scene (the same two objects in the same relation, however the caption orders them);
    ``symmetric`` ``(N,)``: True where swapping changes nothing (two identical objects);
    ``scene_keys``: each scene in one normal form (:func:`scene_key`).
    """

    swapped_ids: torch.Tensor = None
    swapped_lengths: torch.Tensor = None
    scene_ids: torch.Tensor = None
    symmetric: torch.Tensor = None
    swapped: list[str] = None
    scene_keys: list[tuple] = None


def swapped_caption(scene: Scene) -> str:
    """The canonical caption of ``scene`` with its two objects exchanged: the same words for
    the mirrored scene ("a red circle left of a blue square" → "a blue square left of a red
    circle")."""
    if not isinstance(scene, Scene) or len(scene.objects) != 2:
        raise ValueError(f"expected a two-object Scene, got {scene!r}")
    return canonical_caption(
        Scene(objects=scene.objects[::-1], style=scene.style, relation=scene.relation)
    )


def scene_key(scene: Scene) -> tuple:
    """What a two-object scene says, in one normal form: "B right of A" is "A left of B"."""
    first, second = scene.objects
    relation = scene.relation
    if relation in ("right of", "below"):
        first, second, relation = second, first, INVERSE_RELATION[relation]
    return (first.shape, first.color, first.size, relation, second.shape, second.color, second.size)


def load_relation_split(
    split: str, size: int, image_size: int = 32, seed: int = 0
) -> RelationSplit:
    """``size`` two-object scenes of ``split``, their paraphrases and their swapped captions."""
    check_int("size", size)
    data = ShapesWorld(split, size=size, num_objects=2, image_size=image_size, seed=seed)
    images, attrs = data.tensors()
    scenes = [data.scene(i) for i in range(size)]
    captions = [data.captions(i) for i in range(size)]
    vocab = shapes_vocab()
    ids, lengths = caption_tensors(vocab, captions)
    swapped = [swapped_caption(scene) for scene in scenes]
    swapped_ids, swapped_lengths = caption_tensors(vocab, [[text] for text in swapped])
    keys = [scene_key(scene) for scene in scenes]
    index = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    return RelationSplit(
        images,
        ids,
        lengths,
        attrs,
        captions,
        swapped_ids=swapped_ids[:, 0],
        swapped_lengths=swapped_lengths[:, 0],
        scene_ids=torch.tensor([index[key] for key in keys]),
        symmetric=torch.tensor([c[0] == s for c, s in zip(captions, swapped)]),
        swapped=swapped,
        scene_keys=keys,
    )


class CaptionsWithSwaps(Dataset):
    """Items ``(image, ids, length, swapped_ids, swapped_length)``: a random paraphrase of the
    scene's caption, and its swapped caption, for :func:`hard_negative_step`."""

    def __init__(self, split: RelationSplit):
        if not isinstance(split, RelationSplit):
            raise TypeError(f"expected a RelationSplit, got {type(split).__name__}")
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        s = self.split
        variant = int(torch.randint(s.ids.shape[1], ()))
        return (
            s.images[index],
            s.ids[index, variant],
            s.lengths[index, variant],
            s.swapped_ids[index],
            s.swapped_lengths[index],
        )


def hard_negative_clip_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    negative_features: torch.Tensor,
    logit_scale: torch.Tensor | float,
) -> torch.Tensor:
    """CLIP's symmetric loss, with one extra wrong caption per image in the image → text term.

    Image ``i`` must pick caption ``i`` among the batch's N captions *and* the N hard negatives
    (``2N`` logits); each caption still picks its image among the N images.

    Args:
        image_features, text_features, negative_features: ``(N, D)`` L2-normalised; row ``i``
            of ``negative_features`` is a caption image ``i`` must reject.
        logit_scale: the inverse temperature.
    """
    check_tensor("image_features", image_features, ("N", "D"), floating=True)
    shape = tuple(image_features.shape)
    check_tensor("text_features", text_features, shape, floating=True)
    check_tensor("negative_features", negative_features, shape, floating=True)
    if shape[0] < 2:
        raise ValueError("a contrastive batch needs at least 2 pairs")
    labels = torch.arange(shape[0], device=image_features.device)
    texts = torch.cat([text_features, negative_features])  # (2N, D): true captions first
    per_image = logit_scale * image_features @ texts.T  # (N, 2N)
    per_text = logit_scale * text_features @ image_features.T  # (N, N)
    return (F.cross_entropy(per_image, labels) + F.cross_entropy(per_text, labels)) / 2


def hard_negative_step(
    model: DualEncoder,
    batch: Sequence[torch.Tensor],
    loss_fn: Callable[..., torch.Tensor] = hard_negative_clip_loss,
) -> torch.Tensor:
    """A ``step_fn`` for :func:`cmlib.train.fit` on :class:`CaptionsWithSwaps` batches.

    ``loss_fn`` takes :func:`hard_negative_clip_loss`'s arguments; a reader's own (exercise 7.7)
    goes in with ``functools.partial(hard_negative_step, loss_fn=...)``.
    """
    images, ids, lengths, swapped_ids, swapped_lengths = batch
    image_features, text_features, logit_scale = model(images, ids, lengths)
    negatives = model.encode_text(swapped_ids, swapped_lengths)  # normalised, like the captions
    return loss_fn(image_features, text_features, negatives, logit_scale)


def plain_step(model: DualEncoder, batch: Sequence[torch.Tensor]) -> torch.Tensor:
    """CLIP's loss on :class:`CaptionsWithSwaps` batches, ignoring the swapped captions."""
    images, ids, lengths, *_ = batch
    return clip_loss(*model(images, ids, lengths))


def _endless_epochs(
    make_dataset: Callable[[DualEncoder], Dataset], model: DualEncoder, batch_size: int
):
    """Batches without end: every epoch a fresh shuffle of ``make_dataset(model)``, built from
    the model as it stands when the epoch starts (mined negatives follow the model)."""
    while True:
        yield from DataLoader(
            make_dataset(model), batch_size=batch_size, shuffle=True, drop_last=True
        )


def train_relation_model(
    train: RelationSplit,
    device: torch.device,
    *,
    pool: str = "mean",
    step_fn: Callable[[DualEncoder, Sequence[torch.Tensor]], torch.Tensor] = plain_step,
    num_epochs: int = 4,
    num_steps: int | None = None,
    batch_size: int = 128,
    temperature: float = 0.07,
    learnable_temperature: bool = True,
    temperature_decay: bool = True,
    dataset: Callable[[DualEncoder], Dataset] | None = None,
    seed: int | None = 0,
    desc: str = "train",
) -> tuple[DualEncoder, History]:
    """Chapter 07 part 2's recipe, the one both it and chapter 09 train with.

    :func:`~cmlib.shapes_retrieval.make_dual_encoder` (width 16, 128-d space) on
    :class:`CaptionsWithSwaps` batches; AdamW (lr 3e-3, weight decay 0.01 on every parameter)
    with a one-cycle schedule (20 % warm-up). The temperature τ starts at ``temperature``
    (CLIP's 0.07) and is learned unless ``learnable_temperature`` is False.

    Args:
        temperature_decay: whether weight decay also pulls a learned temperature's log
            towards 0 (τ towards 1), as chapter 07's recipe does; False leaves it out, as
            open_clip does.
        num_epochs: passes over the data, ``len(train) // batch_size`` steps each.
        num_steps: train this many steps instead (the data cycles through as many epochs as it
            takes): runs with different batch sizes can then take the same number of steps.
        dataset: ``dataset(model)`` → the epoch's items, called at the start of every epoch
            with the model as it stands (e.g. negatives mined by the current model); default
            :class:`CaptionsWithSwaps` of ``train``.
        seed: seeds torch's global generator first, as a chapter does before each model: the
            weights, the shuffles and the paraphrases drawn all follow from it (``None``: the
            generator as the caller left it).

    Returns:
        the trained model (in eval mode) and its :class:`~cmlib.train.History` (one entry for
        the whole run), whose ``steps["temperature"]`` holds τ at every step.
    """
    if not isinstance(train, RelationSplit):
        raise TypeError(f"expected a RelationSplit, got {type(train).__name__}")
    check_choice("pool", pool, ("mean", "flatten"))
    check_int("batch_size", batch_size, minimum=2)
    if batch_size > len(train):
        raise ValueError(f"batch_size {batch_size} is larger than the {len(train)} scenes")
    if num_steps is None:
        num_steps = check_int("num_epochs", num_epochs) * (len(train) // batch_size)
    check_int("num_steps", num_steps)
    if dataset is not None and not callable(dataset):
        raise TypeError(f"dataset must be a function of the model, got {type(dataset).__name__}")
    if seed is not None:
        torch.manual_seed(check_int("seed", seed, minimum=0))
    model = make_dual_encoder(cnn_width=16, embed_dim=128, pool=pool).to(device)
    model.set_temperature(temperature, learnable=learnable_temperature)
    batches = _endless_epochs(dataset or (lambda _: CaptionsWithSwaps(train)), model, batch_size)
    # A frozen temperature has no gradient, so AdamW leaves it alone, its weight decay included.
    others = [p for p in model.parameters() if p is not model.log_logit_scale]
    groups = [
        {"params": others},
        {"params": [model.log_logit_scale], "weight_decay": 0.01 if temperature_decay else 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=3e-3, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=3e-3, pct_start=0.2, total_steps=num_steps
    )

    def logged_step(model: DualEncoder, batch: Sequence[torch.Tensor]) -> dict:
        loss = step_fn(model, batch)
        return {"loss": loss, "temperature": 1.0 / model.logit_scale.detach()}

    history = fit_steps(
        model,
        batches,
        optimizer,
        num_steps,
        device,
        step_fn=logged_step,
        scheduler=scheduler,
        desc=desc,
    )
    return model, history


@torch.no_grad()
def swap_accuracy(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    swapped_embeddings: torch.Tensor,
    symmetric: torch.Tensor,
) -> float:
    """Share of scenes whose image scores its own caption above its swapped caption.

    Scenes whose swap changes nothing (``symmetric``) are left out. Chance is 0.5; a model that
    reads only which words occur scores 0.5 whatever it learned.
    """
    check_tensor("image_embeddings", image_embeddings, ("N", "D"), floating=True)
    shape = tuple(image_embeddings.shape)
    check_tensor("text_embeddings", text_embeddings, shape, floating=True)
    check_tensor("swapped_embeddings", swapped_embeddings, shape, floating=True)
    check_tensor("symmetric", symmetric, (shape[0],))
    if bool(symmetric.all()):
        raise ValueError("every scene is symmetric: no swap to test")
    own = (image_embeddings * text_embeddings).sum(dim=1)
    swapped = (image_embeddings * swapped_embeddings).sum(dim=1)
    return (own > swapped)[~symmetric.bool()].float().mean().item()


@torch.no_grad()
def relation_metrics(
    model: DualEncoder, split: RelationSplit, device: torch.device, batch_size: int = 500
) -> dict[str, float]:
    """Swap accuracy, and text → image attribute R@1, R@5 and median rank on ``split``.

    A retrieved image is relevant when it shows the same scene as the caption, in either order.
    """
    if not isinstance(split, RelationSplit):
        raise TypeError(f"expected a RelationSplit, got {type(split).__name__}")
    images, texts = embed_split(model, split, device, batch_size=batch_size)
    was_training = model.training
    model.eval()
    swapped = torch.cat(
        [
            model.encode_text(ids.to(device), lengths.to(device)).cpu()
            for ids, lengths in zip(
                split.swapped_ids.split(batch_size), split.swapped_lengths.split(batch_size)
            )
        ]
    )
    model.train(was_training)
    relevant = split.scene_ids[:, None] == split.scene_ids[None, :]
    ranks = retrieval_metrics(texts.float() @ images.float().T, relevant)
    return {
        "swap accuracy": swap_accuracy(images, texts, swapped, split.symmetric),
        "t2i R@1": ranks["R@1"],
        "t2i R@5": ranks["R@5"],
        "median rank": ranks["median_rank"],
    }
