"""Real photographs that ship inside scikit-image (offline, no download).

Each name maps to a file bundled in ``skimage/data``; :func:`load_photo`
returns it as an RGB ``uint8`` array ``(H, W, 3)`` (grey images are repeated
over three channels, an alpha channel is dropped). :data:`PHOTOS` also says
what each picture shows, so a model's prediction can be checked by eye or in
a test.
"""

from __future__ import annotations

import numpy as np
import torch

from ..validate import check_int

#: name → what the photo shows (all are public-domain or CC0, see scikit-image's data README).
PHOTOS: dict[str, str] = {
    "chelsea": "Chelsea the cat, a tabby",
    "coffee": "a cup of coffee on a saucer",
    "astronaut": "astronaut Eileen Collins in a space suit",
    "rocket": "a Falcon 9 rocket on its launch pad",
    "camera": "a man with a camera on a tripod (greyscale)",
    "hubble_deep_field": "the Hubble deep field: galaxies",
}


def load_photo(name: str) -> np.ndarray:
    """The photo ``name`` as an RGB ``uint8`` array ``(H, W, 3)``.

    Raises:
        ValueError: if ``name`` is not one of :data:`PHOTOS`.
    """
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose one of {sorted(PHOTOS)}")
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = image[..., :3]
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def load_photos(names=None) -> dict[str, np.ndarray]:
    """Several photos by name (default: all of :data:`PHOTOS`), as ``uint8`` RGB arrays."""
    names = list(PHOTOS) if names is None else list(names)
    return {name: load_photo(name) for name in names}


def photo_tensor(name: str, image_size: int | None = None) -> torch.Tensor:
    """The photo as a float tensor ``(3, H, W)`` in [0, 1]; centre-cropped square and resized
    to ``image_size`` if given."""
    image = torch.from_numpy(load_photo(name)).permute(2, 0, 1).float().div_(255.0)
    if image_size is None:
        return image
    check_int("image_size", image_size, minimum=8)
    _, h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[:, top : top + side, left : left + side]
    resized = torch.nn.functional.interpolate(
        square[None],
        size=(image_size, image_size),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )
    return resized[0].clamp_(0.0, 1.0)
