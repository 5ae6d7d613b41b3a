"""Interactive views for the chapters, built on ipywidgets, that degrade to static figures.

Every widget here first draws a static figure (so a notebook read without a
kernel, on GitHub or in the HTML book, still shows something), then adds the
controls when ipywidgets and a kernel are there. A control's callback never
shows a traceback: :func:`safe_interact` catches the error and prints a
message instead, and :func:`feature_map_explorer` shows it in a text line.
The explorer redraws an ``Image`` widget in place rather than using an
``Output`` widget: headless runners (nbconvert, nbval) were seen stalling for
minutes after an ``interact`` cell.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import matplotlib.pyplot as plt
import torch

from .viz import to_hwc


def safe_interact(fn: Callable[..., object], **controls) -> object | None:
    """``ipywidgets.interact(fn, **controls)``, but errors become a one-line message.

    Returns the interactive widget, or ``None`` (with a printed note) when
    ipywidgets is not installed.
    """
    try:
        import ipywidgets
    except ImportError:
        print("ipywidgets is not installed: showing the static figure only "
              "(pip install ipywidgets for the interactive version).")
        return None

    def guarded(**kwargs):
        try:
            fn(**kwargs)
        except Exception as err:  # a widget shows a message, never a traceback
            print(f"⚠ could not draw this view: {type(err).__name__}: {err}")

    return ipywidgets.interact(guarded, **controls)


def _check_maps(maps: Mapping[str, torch.Tensor]) -> None:
    if not maps:
        raise ValueError("feature maps: expected at least one layer")
    for name, m in maps.items():
        if not isinstance(m, torch.Tensor) or m.ndim != 4 or m.shape[0] < 1:
            raise ValueError(f"feature map {name!r}: expected a tensor (B, C, h, w), got "
                             f"{tuple(getattr(m, 'shape', ()))}")


def plot_feature_maps(maps: Mapping[str, torch.Tensor], num_channels: int = 6,
                      title: str = "Feature maps", image=None):
    """A static grid: one row per layer, its first ``num_channels`` channels (image 0 of the batch).

    Args:
        maps: ``{layer name: (B, C, h, w) tensor}``, e.g. from :func:`cmlib.vision.capture_features`.
        num_channels: channels shown per layer.
        title: the figure title.
        image: the input image (HWC array or CHW tensor), drawn in the first column.
    """
    _check_maps(maps)
    offset = 1 if image is not None else 0
    ncols = num_channels + offset
    fig, axes = plt.subplots(len(maps), ncols, figsize=(1.3 * ncols, 1.4 * len(maps)),
                             squeeze=False)
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


def feature_map_explorer(maps: Mapping[str, torch.Tensor], image=None,
                         title: str = "Feature maps", num_channels: int = 6):
    """Pick a layer and a channel and see its feature map beside the input image.

    Draws :func:`plot_feature_maps` first (static, always there), then the
    interactive view: a layer drop-down and a channel slider.

    Args:
        maps: ``{layer name: (B, C, h, w) tensor}`` for one image (index 0 is shown).
        image: the input image, shown beside the map.
        title: the static figure's title.
        num_channels: channels per layer in the static figure.

    Returns:
        The static figure.
    """
    _check_maps(maps)
    static = plot_feature_maps(maps, num_channels, title, image)
    plt.show()
    names = list(maps)
    most_channels = max(m.shape[1] for m in maps.values())

    def render(layer: str, channel: int) -> bytes:
        """The chosen map (beside the input) as PNG bytes."""
        import io

        m = maps[layer]
        if not 0 <= channel < m.shape[1]:
            raise ValueError(f"layer {layer} has {m.shape[1]} channels (0–{m.shape[1] - 1}); "
                             f"channel {channel} does not exist")
        fig, axes = plt.subplots(1, 2 if image is not None else 1, figsize=(7, 3.4), squeeze=False)
        if image is not None:
            axes[0, 0].imshow(to_hwc(image))
            axes[0, 0].set(title="input image", xlabel="x (pixels)", ylabel="y (pixels)")
        ax = axes[0, -1]
        shown = ax.imshow(m[0, channel].numpy(), cmap="viridis")
        ax.set(title=f"{layer} · channel {channel} of {m.shape[1]} "
                     f"({m.shape[2]}×{m.shape[3]})", xlabel="x (grid cells)",
               ylabel="y (grid cells)")
        fig.colorbar(shown, ax=ax, label="activation")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=72)
        plt.close(fig)
        return buffer.getvalue()

    try:
        import ipywidgets
        from IPython.display import display
    except ImportError:
        print("ipywidgets is not installed: showing the static figure only "
              "(pip install ipywidgets for the interactive version).")
        return static
    # An Image widget updated in place (no Output widget), so headless runners never wait on it.
    layer = ipywidgets.Dropdown(options=names, value=names[0], description="layer")
    channel = ipywidgets.IntSlider(min=0, max=most_channels - 1, value=0, description="channel")
    picture = ipywidgets.Image(format="png")
    message = ipywidgets.HTML()

    def update(_change=None) -> None:
        try:
            picture.value = render(layer.value, channel.value)
            message.value = ""
        except Exception as err:  # a widget shows a message, never a traceback
            message.value = f"⚠ {type(err).__name__}: {err}"

    layer.observe(update, names="value")
    channel.observe(update, names="value")
    update()
    display(ipywidgets.VBox([ipywidgets.HBox([layer, channel]), message, picture]))
    return static
