"""Feature maps of a CNN, as a static grid and as an explorer (chapter 01)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import torch

from ..validate import check_tensor
from ..viz import show, to_hwc
from .base import interactive_view


def _check_maps(maps: Mapping[str, torch.Tensor]) -> None:
    if not maps:
        raise ValueError("feature maps: expected at least one layer")
    for name, m in maps.items():
        check_tensor(f"feature map {name!r}", m, ("B", "C", "h", "w"), nonempty=True)


def plot_feature_maps(
    maps: Mapping[str, torch.Tensor], num_channels: int = 6, title: str = "Feature maps", image=None
):
    """A static grid: one row per layer, its first ``num_channels`` channels (image 0 of the batch).

    Args:
        maps: ``{layer name: (B, C, h, w) tensor}``, e.g. from :func:`cmlib.hooks.capture_features`.
        num_channels: channels shown per layer.
        title: the figure title.
        image: the input image (HWC array or CHW tensor), drawn in the first column.
    """
    _check_maps(maps)
    offset = 1 if image is not None else 0
    ncols = num_channels + offset
    fig, axes = plt.subplots(
        len(maps), ncols, figsize=(1.3 * ncols, 1.4 * len(maps)), squeeze=False
    )
    for row, (name, m) in enumerate(maps.items()):
        for ax in axes[row]:
            ax.axis("off")
        if image is not None and row == 0:
            axes[row, 0].imshow(to_hwc(image))
            axes[row, 0].set_title("input", fontsize=7)
        for c in range(min(num_channels, m.shape[1])):
            ax = axes[row, c + offset]
            ax.imshow(m[0, c].numpy(), cmap="viridis")
            ax.set_title(f"{name} · ch {c}\n{m.shape[2]}×{m.shape[3]}", fontsize=6)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def draw_feature_map(maps: Mapping[str, torch.Tensor], layer: str, channel: int, image=None):
    """One layer's channel (image 0 of the batch) beside the input image, with a colour bar.

    Raises:
        ValueError: for an unknown layer or a channel the layer does not have.
    """
    _check_maps(maps)
    if layer not in maps:
        raise ValueError(f"unknown layer {layer!r}; the layers are {list(maps)}")
    m = maps[layer]
    if not 0 <= channel < m.shape[1]:
        raise ValueError(
            f"layer {layer} has {m.shape[1]} channels (0–{m.shape[1] - 1}); "
            f"channel {channel} does not exist"
        )
    fig, axes = plt.subplots(1, 2 if image is not None else 1, figsize=(7, 3.4), squeeze=False)
    if image is not None:
        axes[0, 0].imshow(to_hwc(image))
        axes[0, 0].set(title="input image", xlabel="x (pixels)", ylabel="y (pixels)")
    ax = axes[0, -1]
    shown = ax.imshow(m[0, channel].numpy(), cmap="viridis")
    ax.set(
        title=f"{layer} · channel {channel} of {m.shape[1]} ({m.shape[2]}×{m.shape[3]})",
        xlabel="x (grid cells)",
        ylabel="y (grid cells)",
    )
    fig.colorbar(shown, ax=ax, label="activation")
    fig.tight_layout()
    return fig


def feature_map_explorer(
    maps: Mapping[str, torch.Tensor], image=None, title: str = "Feature maps", num_channels: int = 6
):
    """Pick a layer and a channel and see its feature map beside the input image.

    Draws :func:`plot_feature_maps` first (static, always there), then the interactive view: a
    layer drop-down and a channel slider above the chosen map.

    Args:
        maps: ``{layer name: (B, C, h, w) tensor}`` for one image (index 0 is shown).
        image: the input image, shown beside the map.
        title: the static figure's title.
        num_channels: channels per layer in the static figure.

    Returns:
        The widget, or ``None`` without ipywidgets.
    """
    _check_maps(maps)
    fig = plot_feature_maps(maps, num_channels, title, image)
    every = all(m.shape[1] >= num_channels for m in maps.values())
    channels = f"the first {num_channels}" if every else f"up to {num_channels}"
    show(fig, f"{' '.join(title.split())}: {channels} channels of each of the layers {list(maps)}.")
    try:
        import ipywidgets
    except ImportError:
        print("ipywidgets is not installed: showing the static figure only.")
        return None
    names = list(maps)
    most_channels = max(m.shape[1] for m in maps.values())
    return interactive_view(
        lambda layer, channel: draw_feature_map(maps, layer, channel, image),
        static=False,
        layer=ipywidgets.Dropdown(options=names, value=names[0], description="layer"),
        channel=ipywidgets.IntSlider(min=0, max=most_channels - 1, value=0, description="channel"),
    )
