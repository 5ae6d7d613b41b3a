"""Write requirements.lock: the exact version of everything ``pip install -e ".[dev]"`` installs.

Usage (``make lock``):
    python tools/lock.py            # resolve afresh and rewrite requirements.lock
    python tools/lock.py --check    # exit 1 when the lock lacks a direct dependency

pip resolves the project as it would for a clean virtual environment (``--dry-run
--ignore-installed --report``), so nothing already installed leaks in and nothing is
installed. The Makefile installs through the lock as a *constraints* file (``pip install -c
requirements.lock -e ".[dev]"``): every package gets exactly its locked version, and a
package that a platform does not need (the CUDA wheels on a Mac, say) is simply not installed.
environment.yml pins the direct dependencies to the same versions (``make lock`` rewrites it).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
ENVIRONMENT = ROOT / "environment.yml"
HEADER = """\
# Exact versions of everything `pip install -e ".[dev]"` installs, resolved for a clean venv.
# Written by `make lock` (tools/lock.py); do not edit by hand. The Makefile installs with
# `pip install -c requirements.lock -e ".[dev]"`, and tests/test_environment.py checks that
# pyproject.toml, this file and environment.yml agree.
"""


def canonical(name: str) -> str:
    """A distribution name in PEP 503 form: ``Jinja2`` → ``jinja2``, ``nest_asyncio2`` →
    ``nest-asyncio2``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """The distribution name at the start of a requirement string (``"torch==2.14.1"`` →
    ``torch``)."""
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return canonical(match.group(1))


def direct_requirements() -> list[str]:
    """Runtime plus every optional extra of pyproject.toml, as written there."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return requirements


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """``{canonical name: version}`` of a lock file."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonical(name)] = version.strip()
    return pins


def resolve() -> dict[str, str]:
    """What pip would install into an empty venv for ``-e ".[dev]"``: ``{name: version}``."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--dry-run",
                "--ignore-installed",
                "--quiet",
                "--report",
                str(report),
                "-e",
                ".[dev]",
            ],
            check=True,
            cwd=ROOT,
        )
        items = json.loads(report.read_text())["install"]
    pins = {canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in items}
    pins.pop("cmlib", None)
    return dict(sorted(pins.items()))


def environment_yml(pins: dict[str, str]) -> str:
    """environment.yml: conda's Python plus every direct dependency pinned to its locked version."""
    lines = [
        "# Conda users: `conda env create -f environment.yml && conda activate cmlib && "
        "pip install -e . --no-deps`.",
        "# Written by `make lock` from pyproject.toml and requirements.lock (the same versions);",
        "# tests/test_environment.py fails when the three disagree.",
        "name: cmlib",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
    ]
    for requirement in direct_requirements():
        name = requirement_name(requirement)
        lines.append(f"      - {name}=={pins[name]}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only check the lock covers pyproject")
    args = parser.parse_args(argv)
    if args.check:
        missing = sorted({requirement_name(r) for r in direct_requirements()} - set(read_lock()))
        if missing:
            print(f"requirements.lock lacks {missing}: run `make lock`")
        return 1 if missing else 0
    pins = resolve()
    LOCK.write_text(HEADER + "".join(f"{name}=={version}\n" for name, version in pins.items()))
    ENVIRONMENT.write_text(environment_yml(pins))
    print(
        f"requirements.lock: {len(pins)} packages; environment.yml: "
        f"{len(direct_requirements())} direct dependencies"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
