"""ShapesWorld as a torch ``Dataset``: rendered on the fly, a batch at a time.

``ShapesWorld(split, size, image_size, style, num_objects, seed)[i]`` is ``(image, caption,
attributes)``. A ``DataLoader`` fetches a whole batch through :meth:`ShapesWorld.__getitems__`,
which renders it with one vectorised call (``benchmarks/bench_shapes.py``), and
:meth:`ShapesWorld.tensors` renders a whole split once and caches it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ...validate import check_choice, check_int
from ..cache import cached_array
from .render import Paint, check_image_size, paint_from_uniforms, render, render_batch
from .text import NUM_CAPTIONS, QA, caption_variant, captions, questions
from .world import (
    ATTRIBUTE_KEYS,
    DEFAULT_SPLIT_SIZES,
    SPLITS,
    STYLES,
    Scene,
    attributes,
    choose,
    item_rng,
    item_seeds,
    item_uniforms,
    scene_from_uniforms,
)


class ShapesWorld(Dataset):
    """ShapesWorld as a torch ``Dataset`` (torchvision conventions).

    Each item is ``(image, caption, attributes)``: a float tensor of shape
    ``(3, image_size, image_size)`` in [0, 1] (after ``transform``), one caption
    string, and a dict of integer labels (see :func:`attributes`; after
    ``target_transform``). :meth:`captions` and :meth:`questions` give all the
    captions and question–answer pairs of an item.

    Args:
        split: ``"train"``, ``"val"``, ``"test"`` or ``"heldout"``.
        size: number of items (default: 10,000 for train, 1,000 otherwise).
        image_size: height and width in pixels (at least 16).
        style: ``"photo"``, ``"sketch"`` or ``"mixed"`` (each item picks one).
        num_objects: 1, 2, or ``(1, 2)`` for a mix (half and half).
        seed: the dataset seed; with ``split`` and the index it fixes each item.
        transform: applied to the image tensor.
        target_transform: applied to the attribute dict.
    """

    def __init__(
        self,
        split: str = "train",
        size: int | None = None,
        image_size: int = 32,
        style: str = "photo",
        num_objects: int | tuple[int, ...] = (1, 2),
        seed: int = 0,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
    ):
        check_choice("split", split, SPLITS)
        check_choice("style", style, STYLES + ("mixed",))
        size = DEFAULT_SPLIT_SIZES[split] if size is None else size
        check_int("size", size)
        check_image_size(image_size)
        counts = (num_objects,) if isinstance(num_objects, int) else tuple(num_objects)
        if not counts or any(n not in (1, 2) for n in counts):
            raise ValueError(f"num_objects must be 1, 2 or (1, 2), got {num_objects!r}")
        self.split, self.size, self.image_size, self.style = split, int(size), image_size, style
        self.num_objects, self.seed = counts, seed
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return self.size

    def _index(self, index: int) -> int:
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not -self.size <= index < self.size:
            raise IndexError(f"index {index} out of range for a split of {self.size}")
        return int(index) % self.size

    def _items(self, indices) -> list[tuple[Scene, Paint]]:
        """Scene and look of each index, from one vectorised draw of their uniforms."""
        rows = item_uniforms(self.seed, self.split, indices).tolist()
        out = []
        for index, u in zip(indices, rows):
            style = self.style if self.style != "mixed" else choose(STYLES, u[0])
            num_objects = self.num_objects[index % len(self.num_objects)]
            out.append(
                (
                    scene_from_uniforms(u[1:13], self.split, style, num_objects),
                    paint_from_uniforms(u[13:25], style),
                )
            )
        return out

    def _scene_and_paint(self, index: int) -> tuple[Scene, Paint]:
        return self._items([self._index(index)])[0]

    def scene(self, index: int) -> Scene:
        """The scene of item ``index``."""
        return self._scene_and_paint(index)[0]

    def image_array(self, index: int) -> np.ndarray:
        """Item ``index`` as an ``(H, W, 3)`` float32 array, before ``transform``."""
        scene, paint = self._scene_and_paint(index)
        return render(scene, self.image_size, paint=paint)

    def captions(self, index: int) -> list[str]:
        """All caption variants of item ``index`` (the first is the canonical one)."""
        index = self._index(index)
        return captions(self.scene(index), item_rng(self.seed, self.split, index, stream=1))

    def caption(self, index: int) -> str:
        """The caption ``__getitem__`` returns: variant ``index % 5`` of :meth:`captions`."""
        return self.captions(index)[self._index(index) % NUM_CAPTIONS]

    def questions(self, index: int) -> list[QA]:
        """One question of each kind about item ``index`` (see
        :func:`cmlib.data.shapes.text.questions`)."""
        index = self._index(index)
        return questions(self.scene(index), item_rng(self.seed, self.split, index, stream=1))

    def _item(self, index: int, scene: Scene, image: np.ndarray, rng_seed: int):
        """The ``(image, caption, attributes)`` of a rendered item, transforms applied."""
        caption = caption_variant(scene, np.random.default_rng(rng_seed), index % NUM_CAPTIONS)
        tensor = torch.from_numpy(image).permute(2, 0, 1)
        target = attributes(scene)
        if self.transform is not None:
            tensor = self.transform(tensor)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return tensor, caption, target

    def __getitem__(self, index: int):
        index = self._index(index)
        scene, paint = self._scene_and_paint(index)
        rng_seed = item_seeds(self.seed, self.split, [index])[0]
        return self._item(index, scene, render(scene, self.image_size, paint=paint), rng_seed)

    def __getitems__(self, indices: Sequence[int]) -> list:
        """Many items at once, rendered in one vectorised batch (what a ``DataLoader`` calls).

        Equal to ``[self[i] for i in indices]``.
        """
        indices = [self._index(i) for i in indices]
        if not indices:
            return []
        items = self._items(indices)
        images = render_batch([s for s, _ in items], [p for _, p in items], self.image_size)
        seeds = item_seeds(self.seed, self.split, indices)
        return [
            self._item(i, scene, image, rng_seed)
            for i, (scene, _), image, rng_seed in zip(indices, items, images, seeds)
        ]

    def render_all(self, batch_size: int = 256) -> np.ndarray:
        """Every image of the split, rendered in vectorised batches: ``(N, H, W, 3)`` uint8."""
        out = np.empty((self.size, self.image_size, self.image_size, 3), np.uint8)
        for start in range(0, self.size, batch_size):
            items = self._items(range(start, min(start + batch_size, self.size)))
            images = render_batch([s for s, _ in items], [p for _, p in items], self.image_size)
            out[start : start + len(items)] = np.round(images * 255.0)
        return out

    def tensors(self, cache: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The whole split at once: images ``(N, 3, H, W)`` float32 and attribute tensors ``(N,)``.

        Images are stored as 8-bit, so they differ from ``self[i][0]`` by at
        most 1/510. With ``cache=True`` they are kept under ``data/cache``
        (written atomically, verified on load, rebuilt when corrupt).
        """
        key = (
            f"shapes-v2-{self.split}-{self.size}-{self.image_size}-{self.style}-"
            f"{'-'.join(map(str, self.num_objects))}-{self.seed}"
        )
        pixels = cached_array(key, self.render_all) if cache else self.render_all()
        images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0)
        labels = [attributes(scene) for scene, _ in self._items(range(self.size))]
        attrs = {k: torch.tensor([row[k] for row in labels]) for k in ATTRIBUTE_KEYS}
        return images, attrs
