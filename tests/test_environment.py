"""pyproject.toml, requirements.lock and environment.yml must agree."""

import importlib.util
import re
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("lock_tool", ROOT / "tools" / "lock.py")
lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock)


def environment_pins() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    pins = {}
    for line in lines[start + 1 :]:
        match = re.match(r"^\s{6,}-\s+(\S+)==(\S+)\s*$", line)
        if not match:
            break
        pins[lock.canonical(match.group(1))] = match.group(2)
    return pins


def test_lock_pins_every_direct_dependency_once():
    pins = lock.read_lock()
    direct = {lock.requirement_name(r) for r in lock.direct_requirements()}
    assert direct <= set(pins), f"missing from requirements.lock: {sorted(direct - set(pins))}"
    lines = [
        line
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9.-]*==[^\s=]+", line) for line in lines), (
        "every lock line is name==version in canonical form"
    )
    assert len(lines) == len(pins), "a package is locked twice"


def test_lock_satisfies_pyproject():
    pins = lock.read_lock()
    for text in lock.direct_requirements():
        requirement = Requirement(text)
        version = pins[lock.canonical(requirement.name)]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"pyproject.toml asks for {text}, requirements.lock has {version}: run make lock"
        )


def test_environment_pins_the_locked_versions_of_the_direct_dependencies():
    conda, pins = environment_pins(), lock.read_lock()
    direct = {lock.requirement_name(r) for r in lock.direct_requirements()}
    assert set(conda) == direct, (
        f"only in pyproject.toml: {sorted(direct - set(conda))}; "
        f"only in environment.yml: {sorted(set(conda) - direct)}"
    )
    wrong = {
        name: (version, pins[name]) for name, version in conda.items() if pins[name] != version
    }
    assert not wrong, f"environment.yml vs requirements.lock: {wrong}"


def test_torch_pins():
    pins = lock.read_lock()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert "torch==2.14.1" in lock.direct_requirements()


def test_venv_stamp_depends_on_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^\$\(STAMP\):.*requirements\.lock", makefile, re.M)
    assert "-c requirements.lock" in makefile
