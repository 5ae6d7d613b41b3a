"""Random draws and devices: a CPU test for a bug that only shows on a GPU.

``torch.multinomial(probs_on_cuda, generator=cpu_generator)`` and ``torch.randn(...,
generator=cpu_generator, device="cuda")`` both raise on CUDA, and never on a CPU-only machine.
cmlib's convention avoids the whole class: **a draw with an explicit generator happens on the
CPU** (the generators are CPU generators), and its result is moved to the model's device
afterwards. This test reads cmlib's source and checks every such draw:

* it passes no ``device=`` (the draw would happen on that device);
* a draw from a tensor (``multinomial``, ``bernoulli``, ``normal``, ``poisson``, ``*_like``) takes
  a tensor that is visibly on the CPU: ``x.cpu()``, a fresh ``torch.as_tensor``/``torch.tensor``,
  or one named below with the reason it is a CPU tensor.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SIZE_DRAWS = {"randn", "rand", "randint", "randperm"}
TENSOR_DRAWS = {"multinomial", "bernoulli", "normal", "poisson", "rand_like", "randn_like",
                "randint_like", "bernoulli_", "normal_", "uniform_", "random_", "exponential_",
                "geometric_", "cauchy_", "log_normal_"}  # fmt: skip
CPU = ("'cpu'", '"cpu"', "torch.device('cpu')")

#: (file, the tensor's source) -> why it is on the CPU
CPU_BY_CONSTRUCTION = {
    ("cmlib/captioning/training.py", "self.style_mix"): "a CPU tensor built in __init__",
    ("cmlib/generation/autoregressive.py", "probs"): "assigned from .cpu() just above",
    ("cmlib/generation/codebook.py", "nearest / nearest.sum()"): "k-means++ runs on CPU patches",
}


def random_draws(source: str) -> list[tuple[int, str, ast.Call]]:
    """``(line, function name, call)`` of every torch draw given a ``generator=``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in SIZE_DRAWS | TENSOR_DRAWS and any(k.arg == "generator" for k in node.keywords):
            out.append((node.lineno, name, node))
    return out


def drawn_from(call: ast.Call) -> ast.expr | None:
    """The tensor a draw reads: the first argument of ``torch.f(x, ...)``, the receiver of
    ``x.f(...)``."""
    func = call.func
    if isinstance(func, ast.Attribute) and not (
        isinstance(func.value, ast.Name) and func.value.id == "torch"
    ):
        return func.value
    given = [k.value for k in call.keywords if k.arg == "input"]
    return call.args[0] if call.args else (given[0] if given else None)


def problems(path: str, source: str) -> list[str]:
    found = []
    for line, name, call in random_draws(source):
        where = f"{path}:{line}: {ast.unparse(call)[:90]}"
        device = [k for k in call.keywords if k.arg == "device"]
        if device and ast.unparse(device[0].value) not in CPU:
            found.append(f"{where} (draws on `device`: draw on the CPU, then move the result)")
        tensor = drawn_from(call)
        if name in TENSOR_DRAWS and tensor is not None and not isinstance(tensor, ast.Constant):
            text = ast.unparse(tensor)
            on_cpu = (
                isinstance(tensor, ast.Call)
                and isinstance(tensor.func, ast.Attribute)
                and (
                    tensor.func.attr == "cpu"
                    or (tensor.func.attr == "to" and bool(tensor.args)
                        and ast.unparse(tensor.args[0]) in CPU)
                    or (tensor.func.attr in ("as_tensor", "tensor")
                        and not any(k.arg == "device" for k in tensor.keywords))
                )
            )  # fmt: skip
            if not on_cpu and (path, text) not in CPU_BY_CONSTRUCTION:
                found.append(f"{where} (draws from `{text}`, which may be on a GPU: use .cpu())")
    return found


def test_every_draw_with_a_generator_happens_on_the_cpu():
    found = []
    for file in sorted((ROOT / "cmlib").rglob("*.py")):
        path = file.relative_to(ROOT).as_posix()
        found += problems(path, file.read_text(encoding="utf-8"))
    assert not found, "\n".join(found)


def test_the_allowances_still_exist():
    """An allowance whose draw is gone must go too."""
    for path, text in CPU_BY_CONSTRUCTION:
        source = (ROOT / path).read_text(encoding="utf-8")
        tensors = [ast.unparse(t) for _, _, c in random_draws(source) if (t := drawn_from(c))]
        assert text in tensors, f"{path} no longer draws from {text}: drop its allowance"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("torch.multinomial(probs, 1, generator=g)", "may be on a GPU"),  # the 05 crash
        ("torch.randn(3, 4, generator=g, device=device)", "draws on `device`"),
        ("x.bernoulli(generator=g)", "from `x`"),  # a method: the tensor is its receiver
        ("torch.rand(5, generator=g).to(device)", None),  # drawn on the CPU, then moved
        ("x.normal_(generator=g)", "from `x`"),  # an in-place draw on x's device
        ("torch.multinomial(input=p, num_samples=1, generator=g)", "from `p`"),
        ("torch.multinomial(torch.as_tensor(p, device=d), 1, generator=g)", "may be on a GPU"),
        ("torch.normal(0.0, 1.0, size=(3,), generator=g)", None),  # numbers, not a tensor
        ("torch.multinomial(p.to('cpu'), 1, generator=g)", None),
    ],
)
def test_the_check_catches_the_bug(source, message):
    found = problems("cmlib/example.py", source)
    if message is None:
        assert found == []
    else:
        assert len(found) == 1 and message in found[0]
    assert problems("cmlib/example.py", "torch.multinomial(probs.cpu(), 1, generator=g)") == []
