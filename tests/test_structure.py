"""cmlib's structure: modules of at most 450 lines, and no import cycle (lazy imports included)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cmlib"
MAX_LINES = 450


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def internal_imports(path: Path) -> set[str]:
    """The cmlib modules ``path`` imports anywhere in it, resolved to module names."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        for candidate in candidates:
            if candidate.startswith("cmlib") and candidate in MODULES:
                found.add(candidate)
    # the module itself and its parent packages are imported before it anyway
    return {m for m in found if not (name == m or name.startswith(m + "."))}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_no_module_is_longer_than_450_lines():
    long = {
        name: len(p.read_text().splitlines())
        for name, p in MODULES.items()
        if len(p.read_text().splitlines()) > MAX_LINES
    }
    assert not long, f"split these modules (one concept each, <= {MAX_LINES} lines): {long}"


def test_there_is_no_import_cycle():
    graph = {name: internal_imports(path) for name, path in MODULES.items()}
    # a package's __init__ may re-export its own modules; its modules must not import it back
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + "."):
                continue  # a package importing its own modules is not a cycle
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    """The check above can fail: two modules that import each other are reported."""
    pkg = tmp_path / "cmlib"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from . import b\n")
    (pkg / "b.py").write_text("from .a import f\n")
    global ROOT, MODULES
    saved = ROOT, MODULES
    ROOT = tmp_path
    MODULES = {module_name(p): p for p in pkg.rglob("*.py")}
    try:
        assert internal_imports(pkg / "a.py") == {"cmlib.b"}
        try:
            test_there_is_no_import_cycle()
        except AssertionError as err:
            assert "cmlib.a" in str(err) and "cmlib.b" in str(err)
        else:
            raise AssertionError("a cycle went unnoticed")
    finally:
        ROOT, MODULES = saved


def test_lint_exemptions_for_the_listings_live_with_them():
    pyproject = (ROOT / "pyproject.toml").read_text()
    ignore_line = next(line for line in pyproject.splitlines() if line.startswith("ignore = "))
    for rule in ("E501", "F821", "UP008", "E402"):
        assert rule not in ignore_line, f"{rule} is ignored project-wide"
    noqa = [
        str(p.relative_to(ROOT))
        for p in PACKAGE.rglob("*.py")
        if "noqa: F821" in p.read_text() or "noqa: UP008" in p.read_text()
    ]
    assert not noqa, f"listing exemptions outside cmlib/errata.py: {noqa}"


def map_rows() -> list[str]:
    """The rows of cmlib/README.md's table of modules."""
    readme = (PACKAGE / "README.md").read_text(encoding="utf-8")
    return [line for line in readme.splitlines() if line.startswith("| ") and "`" in line]


def missing_from_map(modules: dict[str, Path], rows: list[str]) -> list[str]:
    """Modules that no row names: ``cmlib.x`` as `x`, ``cmlib.pkg.y`` as `pkg/y`, or as `y` in
    the row of `pkg/`; a chapter's exercises (``chNN``) as `chNN`."""
    missing = []
    for name, path in sorted(modules.items()):
        if path.name == "__init__.py":
            continue
        parts = name.split(".")[1:]
        leaf = "chNN" if re.fullmatch(r"ch\d\d", parts[-1]) else parts[-1]
        package = "/".join(parts[:-1]) + "/"
        named = any(
            f"`{'/'.join(parts)}`" in row
            or (len(parts) == 1 and f"`{leaf}`" in row.split("|")[2])
            or (len(parts) > 1 and f"`{package}`" in row and f"`{leaf}`" in row)
            for row in rows
        )
        if not named:
            missing.append(name)
    return missing


def test_every_module_is_in_the_readme_map():
    missing = missing_from_map(MODULES, map_rows())
    assert not missing, f"add these modules to cmlib/README.md's map: {missing}"


def test_the_map_check_finds_a_module_that_is_not_there():
    rows = ["| stage | `train`, `viz` | … | all |", "| | `pkg/` | `one`, `chNN` | 01 |"]
    modules = {
        name: Path(name.replace(".", "/") + ".py")
        for name in ("cmlib.train", "cmlib.viz", "cmlib.pkg.one", "cmlib.pkg.ch03")
    }
    assert missing_from_map(modules, rows) == []
    modules["cmlib.pkg.two"] = Path("cmlib/pkg/two.py")
    modules["cmlib.judge"] = Path("cmlib/judge.py")
    assert missing_from_map(modules, rows) == ["cmlib.judge", "cmlib.pkg.two"]


#: Public functions named like trainers that are not training loops.
NOT_TRAINERS = {
    "cmlib.probes.fit_lbfgs": "one L-BFGS solve of a closure (a probe's weights), no loop to log",
}


def trainers_without_history(module_names) -> list[str]:
    """Public ``train_*`` and ``fit*`` functions whose return annotation has no ``History``."""
    import importlib
    import inspect

    missing = []
    for name in sorted(module_names):
        module = importlib.import_module(name)
        for attr, fn in vars(module).items():
            if not inspect.isfunction(fn) or fn.__module__ != name:
                continue
            if not attr.startswith(("train_", "fit")) or f"{name}.{attr}" in NOT_TRAINERS:
                continue
            if "History" not in str(inspect.signature(fn).return_annotation):
                missing.append(f"{name}.{attr}")
    return sorted(missing)


def test_every_trainer_returns_a_history():
    missing = trainers_without_history(MODULES)
    assert not missing, f"these trainers should return a cmlib.train.History: {missing}"


def test_the_trainer_check_finds_one_that_returns_something_else(tmp_path, monkeypatch):
    (tmp_path / "fake_trainers.py").write_text(
        "from cmlib.train import History\n"
        "def train_good() -> History: ...\n"
        "def train_bad() -> dict: ...\n"
        "def fit_worse(): ...\n"
        "def helper() -> dict: ...\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert trainers_without_history(["fake_trainers"]) == [
        "fake_trainers.fit_worse",
        "fake_trainers.train_bad",
    ]
