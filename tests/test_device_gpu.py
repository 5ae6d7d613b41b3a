"""tools/device_gpu.py, the gpu profile on a lent GPU machine: the parts the wheels travel in,
their manifest, joining them again there, the wheels rebuilt from a venv, and the table."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("device_gpu", ROOT / "tools" / "device_gpu.py")
device_gpu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(device_gpu)

KIB = 1024


def stage(tmp_path: Path, sizes: dict[str, int]) -> tuple[Path, dict[str, str]]:
    """Wheel-named files of random bytes; ``(folder, {file: source})``."""
    staged = tmp_path / "staged"
    staged.mkdir()
    for name, size in sizes.items():
        (staged / name).write_bytes(os.urandom(size))
    return staged, {name: "test" for name in sizes}


def test_split_plan_keeps_every_part_under_the_limit_and_covers_every_byte():
    limit = 100 * KIB
    files = {
        "a.whl": 250 * KIB,
        "b.whl": 99 * KIB,
        "c.whl": 100 * KIB,
        "d.whl": 3 * KIB,
        "e.whl": 0,
    }
    pieces = device_gpu.split_plan(files, limit)
    per_part: dict[str, int] = {}
    for p in pieces:
        per_part[p["part"]] = per_part.get(p["part"], 0) + p["size"]
    assert max(per_part.values()) <= limit
    for name, size in files.items():
        mine = sorted((p for p in pieces if p["file"] == name), key=lambda p: p["offset"])
        assert [p["offset"] for p in mine] == [
            sum(q["size"] for q in mine[:k]) for k in range(len(mine))
        ]
        assert sum(p["size"] for p in mine) == size
    big = [p["piece"] for p in pieces if p["file"] == "a.whl"]
    assert sorted(big) == ["a.whl.000", "a.whl.001", "a.whl.002"]
    assert [p["piece"] for p in pieces if p["file"] == "c.whl"] == ["c.whl"]  # exactly the limit


def test_a_big_wheel_is_cut_and_joined_again_byte_for_byte(tmp_path):
    limit = 64 * KIB
    sizes = {"big-1.0-py3-none-any.whl": 200 * KIB, "small-2.0-py3-none-any.whl": 5 * KIB}
    staged, sources = stage(tmp_path, sizes)
    out = tmp_path / "wheels"
    manifest = device_gpu.write_parts(staged, out, sources, limit, python="3.12", on_device={})
    for part in out.glob("part*"):
        assert sum(f.stat().st_size for f in part.iterdir()) <= limit
    assert len(list(out.glob("part*"))) == 4  # 200 KiB in 64 KiB pieces, and the small one
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["python"] == "3.12" and manifest["platform"] == "linux x86_64"
    big = next(f for f in manifest["files"] if f["name"].startswith("big-"))
    assert big["size"] == 200 * KIB and big["tag"] == "py3-none-any"
    assert len(big["pieces"]) == 4
    for p in big["pieces"]:
        data = (out / p["part"] / p["piece"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == p["sha256"] and len(data) == p["size"]

    got, wheels = device_gpu.assemble(out, tmp_path / "ready")
    assert got == manifest
    for wheel in wheels:
        data = wheel.read_bytes()
        assert data == (staged / wheel.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == next(
            f["sha256"] for f in manifest["files"] if f["name"] == wheel.name
        )


def test_a_corrupt_or_missing_piece_is_named(tmp_path):
    staged, sources = stage(tmp_path, {"big-1.0-py3-none-any.whl": 150 * KIB})
    out = tmp_path / "wheels"
    manifest = device_gpu.write_parts(staged, out, sources, 64 * KIB, python="3.12", on_device={})
    second = manifest["files"][0]["pieces"][1]
    path = out / second["part"] / second["piece"]
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(
        SystemExit, match=r"corrupt piece .*big-1\.0-py3-none-any\.whl\.001.*sha256"
    ):
        device_gpu.assemble(out, tmp_path / "ready")
    path.unlink()
    with pytest.raises(SystemExit, match=f"redo the device call that carries {second['part']}"):
        device_gpu.assemble(out, tmp_path / "ready")


def test_a_wheel_for_another_python_is_refused_by_name(tmp_path):
    staged, sources = stage(tmp_path, {"fast-1.0-cp399-cp399-manylinux_2_28_x86_64.whl": KIB})
    out = tmp_path / "wheels"
    device_gpu.write_parts(staged, out, sources, 64 * KIB, python="3.99", on_device={})
    with pytest.raises(SystemExit, match=r"packed for Python 3\.99.*fast-1\.0-cp399"):
        device_gpu.assemble(out, tmp_path / "ready")


@pytest.mark.parametrize(
    ("tag", "fits"),
    [
        ("py3-none-any", True),
        ("py2.py3-none-any", True),
        ("cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64", True),
        ("cp311-cp311-manylinux_2_28_x86_64", False),
        ("cp310-abi3-manylinux_2_28_x86_64", True),
        ("cp313-abi3-manylinux_2_28_x86_64", False),
        ("cp312-cp312-manylinux_2_28_aarch64", False),
        ("cp312-cp312-musllinux_1_2_x86_64", False),
        ("py3-none-manylinux_2_17_x86_64", True),
        ("cp312-cp312-win_amd64", False),
    ],
)
def test_tag_fits_python_312_on_x86_64(tag, fits):
    assert device_gpu.tag_fits(tag, (3, 12)) is fits


def fake_venv(tmp_path: Path) -> Path:
    """A venv's site-packages with one installed distribution, ``demo-pkg`` 1.0."""
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    files = {
        "demo_pkg/__init__.py": b"VALUE = 1\n",
        "demo_pkg/__pycache__/__init__.cpython-311.pyc": b"\0bytecode",
        "demo_pkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n",
        "demo_pkg-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nTag: py3-none-any\n",
        "demo_pkg-1.0.dist-info/INSTALLER": b"pip\n",
        "../../../share/demo/data.json": b"{}\n",
        "../../../bin/demo": b"#!python\n",
    }
    for rel, data in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
    record = [f"{rel},," for rel in files] + ["demo_pkg-1.0.dist-info/RECORD,,"]
    (site / "demo_pkg-1.0.dist-info" / "RECORD").write_text("\n".join(record) + "\n")
    return site


def test_a_wheel_rebuilt_from_a_venv_installs_with_pip(tmp_path):
    site = fake_venv(tmp_path)
    (dist,) = md.distributions(path=[str(site)])
    name = device_gpu.repack(dist, tmp_path)
    assert name == "demo_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(tmp_path / name) as zf:
        names = set(zf.namelist())
        record = zf.read("demo_pkg-1.0.dist-info/RECORD").decode()
    assert (
        "demo_pkg/__init__.py" in names and "demo_pkg-1.0.data/data/share/demo/data.json" in names
    )
    assert not any(n.endswith((".pyc", "INSTALLER")) or "/bin/" in n for n in names)
    assert "demo_pkg/__init__.py,sha256=" in record
    target = tmp_path / "target"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    subprocess.run([*pip, "--target", str(target), str(tmp_path / name)], check=True)
    assert (target / "demo_pkg" / "__init__.py").read_bytes() == b"VALUE = 1\n"


def test_slim_keeps_only_the_data_cmlib_reads(tmp_path):
    folder, keep = device_gpu.SLIM["gensim"]
    wheel = tmp_path / "gensim-4.4.0-cp312-cp312-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name in ["gensim/__init__.py", f"{folder}{keep[0]}", f"{folder}big_model.bin"]:
            zf.writestr(name, b"x")
        zf.writestr("gensim-4.4.0.dist-info/RECORD", "stale")
    device_gpu.slim_wheel(wheel)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        record = zf.read("gensim-4.4.0.dist-info/RECORD").decode()
    assert names == {"gensim/__init__.py", f"{folder}{keep[0]}", "gensim-4.4.0.dist-info/RECORD"}
    assert "big_model" not in record and "gensim/__init__.py,sha256=" in record


def test_select_stops_at_what_the_device_has():
    def dist(*requires):
        return SimpleNamespace(requires=list(requires))

    dists = {
        "nbval": dist("ipykernel", "pytest>=7", "coverage; extra == 'cov'"),
        "ipykernel": dist("jupyter-client>=8", "debugpy; python_version >= '3.8'"),
        "jupyter-client": dist(),
        "debugpy": dist(),
        "pytest": dist("pluggy"),
        "pluggy": dist(),
        "coverage": dist(),
        "torch": dist("nvidia-cublas"),
        "nvidia-cublas": dist(),
    }
    lock = {name: "1.0" for name in dists}
    names, on_device = device_gpu.select(dists, lock, False, {"pytest", "pluggy"})
    assert names == ["debugpy", "ipykernel", "jupyter-client", "nbval"]
    assert on_device == ["pytest"]  # pluggy is the device's pytest's business


def test_the_table_lists_notebook_times_and_every_checkpoint(tmp_path):
    checkpoints, timings = tmp_path / "checkpoints", tmp_path / "timings"
    (timings / "stages").mkdir(parents=True)
    checkpoints.mkdir()
    # the formats cmlib.claims.Checkpoints, tools/nbval_lanes.py and tools/timings.py write
    record = {"notebook": "03_fusion", "seed": 0, "threads": 16, "profile": "gpu", "time": "t"}
    lines = [
        {**record, "name": "best-fusion", "value": 0.97, "op": ">=", "threshold": 0.95,
         "passed": True, "asserted": True},
        {**record, "name": "late-loss", "value": 0.4, "op": "<", "threshold": 0.3,
         "passed": False, "asserted": False, "chance": 0.25},
    ]  # fmt: skip
    text = "\n".join(json.dumps(r) for r in lines) + '\n{"notebook": "03_fus'  # a torn line
    (checkpoints / "03_fusion.jsonl").write_text(text)
    (checkpoints / "03_fusion.runs.jsonl").write_text('{"seed": 0, "rc": 0, "seconds": 1}\n')
    rows = [
        {"name": "03_fusion", "lane": "a", "seconds": 42.4, "passed": True},
        {"name": "99_extra", "lane": "b", "seconds": 7.0, "passed": False},
    ]
    table = {"mode": "1 at a time", "lanes": {"a": 42.4}, "notebooks": rows, "stage": "all"}
    (timings / "notebooks.json").write_text(json.dumps(table))
    stage = {"stage": "nbval", "seconds": 540.2, "exit_code": 124, "order": 0}
    (timings / "stages" / "nbval.json").write_text(json.dumps(stage))
    out = tmp_path / "OUT" / "gpu_profile.md"
    args = [
        "table",
        "--checkpoints",
        str(checkpoints),
        "--timings",
        str(timings),
        "--out",
        str(out),
    ]
    assert device_gpu.main(args) == 0
    text = out.read_text()
    assert "- stage nbval: 540 s, exit 124 (stopped at the time limit;" in text
    assert "| 03_fusion | 42.4 | passed |" in text and "| 99_extra | 7.0 | FAILED |" in text
    first = min(p.stem for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    assert f"| {first} | – | not run |" in text  # a chapter nbval never reached
    assert "| 03_fusion | best-fusion | 0.97 | >= 0.95 | +0.02 | gpu | pass |" in text
    assert "| 03_fusion | late-loss | 0.4 | < 0.3 | -0.1 | gpu | FAIL (not asserted) |" in text
    assert "2 checkpoints, 1 failed." in text


def test_the_table_says_when_nbval_left_no_times(tmp_path):
    out = tmp_path / "gpu_profile.md"
    args = ["table", "--checkpoints", str(tmp_path / "none"), "--timings", str(tmp_path / "none")]
    assert device_gpu.main([*args, "--out", str(out)]) == 0
    assert "No notebook times" in out.read_text() and "0 checkpoints" in out.read_text()
