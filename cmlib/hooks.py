"""Looking inside a network with forward hooks: feature maps, layer shapes, first filters.

* :func:`capture_features` — run a model once and keep the outputs of named layers (the
  feature maps of chapter 01);
* :func:`trace_shapes` — every leaf layer's output shape, and where a forward pass fails (how
  chapter 01 shows the article's CNN listing breaking);
* :func:`first_layer_filters` — the weights of the first convolution, to plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


def named_layer(model: nn.Module, name: str) -> nn.Module:
    """The sub-module called ``name`` (as in ``model.named_modules()``), with a helpful error."""
    modules = dict(model.named_modules())
    if name not in modules:
        sample = [n for n in modules if n][:12]
        raise ValueError(f"{type(model).__name__} has no layer {name!r}; some layers: {sample}")
    return modules[name]


@torch.no_grad()
def capture_features(
    model: nn.Module, x: torch.Tensor, layers, call=None
) -> dict[str, torch.Tensor]:
    """Run ``model`` once and return the outputs of the named ``layers``, caught by forward hooks.

    Args:
        model: any module; it is not changed (hooks are removed afterwards, even on error).
        x: the input batch, already on the model's device.
        layers: layer names from ``model.named_modules()``, e.g. ``["features.conv1"]``.
        call: what to run instead of ``model(x)``, e.g. ``model.extract_features``.

    Returns:
        ``{name: output tensor on the CPU}`` in the order of ``layers``.
    """
    if isinstance(layers, str):
        layers = [layers]
    captured: dict[str, torch.Tensor] = {}
    handles = []

    def hook_for(name: str):
        def hook(module, inputs, output):
            captured[name] = output.detach().cpu()

        return hook

    try:
        for name in layers:
            handles.append(named_layer(model, name).register_forward_hook(hook_for(name)))
        (call or model)(x)
    finally:
        for handle in handles:
            handle.remove()
    missing = [n for n in layers if n not in captured]
    if missing:
        raise ValueError(f"layers {missing} were never called in the forward pass")
    return {name: captured[name] for name in layers}


@dataclass
class ShapeTrace:
    """Output shape of each leaf layer in call order; ``error`` if the forward pass failed."""

    rows: list[tuple[str, str, tuple[int, ...]]] = field(default_factory=list)
    error: str | None = None

    def __str__(self) -> str:
        lines = [f"{'layer':<16}{'type':<18}output shape"]
        lines += [f"{name:<16}{kind:<18}{tuple(shape)}" for name, kind, shape in self.rows]
        if self.error is not None:
            lines.append(f"✗ then the forward pass failed: {self.error}")
        return "\n".join(lines)


@torch.no_grad()
def trace_shapes(model: nn.Module, x: torch.Tensor) -> ShapeTrace:
    """Feed ``x`` through ``model`` and record every leaf layer's output shape (forward hooks).

    A failure is recorded in ``error`` rather than raised, so the trace shows how far it got.
    """
    trace = ShapeTrace()
    handles = []
    for name, module in model.named_modules():
        if name and not list(module.children()):

            def hook(module, inputs, output, name=name):
                trace.rows.append((name, type(module).__name__, tuple(output.shape)))

            handles.append(module.register_forward_hook(hook))
    try:
        out = model(x)
        outputs = out if isinstance(out, tuple) else (out,)
        trace.rows.append(("(output)", "", tuple(outputs[0].shape)))
    except (RuntimeError, ValueError) as err:
        trace.error = f"{type(err).__name__}: {str(err).splitlines()[0]}"
    finally:
        for handle in handles:
            handle.remove()
    return trace


def first_layer_filters(model: nn.Module) -> torch.Tensor:
    """The weights of the first ``Conv2d`` in ``model``: ``(out_channels, in_channels, k, k)``."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.weight.detach().cpu().clone()
    raise ValueError(f"{type(model).__name__} has no Conv2d layer")
