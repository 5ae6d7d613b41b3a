"""``python -m cmlib.longrun [--names ...] [--seeds ...]``: what ``make models`` runs."""

from __future__ import annotations

import argparse
import sys

from .. import runtime
from .recipes import recipes, run_recipe


def main(argv: list[str] | None = None) -> int:
    known = recipes()
    parser = argparse.ArgumentParser(prog="make models", description=__doc__)
    parser.add_argument("--names", nargs="*", default=None, help=f"recipes (all: {list(known)})")
    parser.add_argument(
        "--seeds",
        nargs="*",
        type=int,
        default=None,
        help="seeds (default: each recipe's shipped seeds)",
    )
    args = parser.parse_args(argv)
    names = args.names or list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown recipes {unknown}; known: {list(known)}")
    device = runtime.device()
    print(runtime.describe(), flush=True)
    for name in names:
        seeds = args.seeds if args.seeds else known[name].seeds
        if not seeds:
            print(
                f"== {name}: no shipped seeds, nothing to train; to run it anyway: "
                f'make models NAMES="{name}" SEEDS="0"',
                flush=True,
            )
        for seed in seeds:
            print(f"== {name}, seed {seed}: {known[name].summary}", flush=True)
            _, manifest = run_recipe(name, seed, device)
            metrics = {k: round(v, 4) for k, v in manifest["metrics"].items()}
            print(
                f"   {manifest['wall_seconds']:.0f} s, {manifest['steps']} steps, "
                f"{manifest['tensors']['bytes'] / 1e6:.2f} MB: {metrics}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
