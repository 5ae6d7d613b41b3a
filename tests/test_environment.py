"""The dependency lists of pyproject.toml and environment.yml must agree."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower().replace("_", "-")


def pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return {_normalise(r) for r in reqs}


def environment_requirements() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    reqs = []
    for line in lines[start + 1:]:
        match = re.match(r"^\s{6,}-\s+(\S.*)$", line)
        if not match:
            break
        reqs.append(match.group(1))
    return {_normalise(r) for r in reqs}


def test_pyproject_and_environment_agree():
    ours, conda = pyproject_requirements(), environment_requirements()
    assert ours == conda, (f"only in pyproject.toml: {sorted(ours - conda)}; "
                           f"only in environment.yml: {sorted(conda - ours)}")


def test_torch_pins():
    reqs = pyproject_requirements()
    assert "torch==2.14.1" in reqs and "torchvision==0.29.1" in reqs
