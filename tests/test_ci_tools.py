"""The CI budget's tools: the nbval lanes (tools/nbval_lanes.py) and the timing report
(tools/timings.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lanes = load_tool("nbval_lanes")
timings = load_tool("timings")


def lane_order() -> dict[str, list[str]]:
    """Each lane's notebooks in the order nbval runs them."""
    order: dict[str, list[tuple]] = {}
    for nb in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")):
        lane, position = lanes.lane_of(nb.name)
        order.setdefault(lane, []).append((position, nb.stem))
    return {lane: [stem for _, stem in sorted(items)] for lane, items in order.items()}


def test_every_chapter_is_in_exactly_one_lane():
    chapters = [c for lane in lanes.LANES.values() for c in lane]
    assert len(chapters) == len(set(chapters)), "a chapter is in two lanes"
    numbers = {p.name[:2] for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")}
    assert numbers == set(chapters)
    with pytest.raises(ValueError, match="no nbval lane.*LANES"):
        lanes.lane_of("99_future_chapter.ipynb")


def test_a_notebook_runs_after_the_notebooks_whose_models_it_loads():
    order = lane_order()
    where = {stem: (lane, i) for lane, stems in order.items() for i, stem in enumerate(stems)}

    def before(first: str, then: str) -> bool:
        return where[first][0] == where[then][0] and where[first][1] < where[then][1]

    assert before("04_prompt_generation", "04_prompt_generation_gan")
    assert before("04_prompt_generation_gan", "05_text_to_image")  # the CVAE and the cGAN
    for part in ("ablations", "identity", "one_direction"):
        assert before("06_cyclegan", f"06_cyclegan_{part}")  # part 1's CycleGAN
    assert before("06_cyclegan", "08_capstone_studio")  # the studio's translator
    # the studio's drawer is chapter 04's CVAE, trained in the other lane: first there, and
    # early enough in this one
    drawer_lane = order[where["04_prompt_generation"][0]]
    assert drawer_lane[0] == "04_prompt_generation"
    assert where["08_capstone_studio"][1] >= len(order[where["08_capstone_studio"][0]]) - 2


def test_timings_record_each_stage_and_report_one_table(tmp_path, monkeypatch, capsys):
    records = tmp_path / "timings"
    monkeypatch.setattr(timings, "RECORDS", records)
    monkeypatch.setattr(timings, "STAGES", records / "stages")
    monkeypatch.setattr(timings, "NOTEBOOKS", records / "notebooks.json")
    monkeypatch.setattr(timings, "REPORT", tmp_path / "timings.json")
    assert timings.main(["begin"]) == 0
    assert timings.main(["run", "quick", "--", sys.executable, "-c", "pass"]) == 0
    assert timings.main(["run", "broken", "--", sys.executable, "-c", "raise SystemExit(3)"]) == 3
    timings.write_json(
        records / "notebooks.json",
        {
            "mode": "2 at a time, CMLIB_THREADS=1",
            "lanes": {"a": 160.0, "b": 20.0},
            "notebooks": [
                {"name": "04_slow", "lane": "a", "seconds": 160.0, "passed": True},
                {"name": "06_fine", "lane": "b", "seconds": 20.0, "passed": False},
            ],
        },
    )
    assert timings.main(["report"]) == 0
    table = json.loads((tmp_path / "timings.json").read_text())
    assert [s["stage"] for s in table["stages"]] == ["quick", "broken"]
    assert [s["exit_code"] for s in table["stages"]] == [0, 3]
    assert table["total_seconds"] == pytest.approx(sum(s["seconds"] for s in table["stages"]))
    assert [nb["name"] for nb in table["notebooks"]] == ["04_slow", "06_fine"]
    printed = capsys.readouterr().out
    assert "04_slow" in printed and "over 150 s" in printed and "FAILED" in printed
    assert "exit 3" in printed and "lane a 160 s" in printed
    assert timings.main(["begin"]) == 0 and not records.exists()
    with pytest.raises(SystemExit, match="no command"):
        timings.main(["run", "nothing"])


def test_the_lane_plugin_loads_with_and_without_xdist(tmp_path):
    import subprocess

    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("1 + 1")]
    nbformat.write(notebook, tmp_path / "04_tiny.ipynb")
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT / "tools")
    for xdist in (["-p", "no:xdist"], ["-n", "2"]):
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "nbval_lanes",
             *xdist, "--nbval-lax", "--collect-only", str(tmp_path / "04_tiny.ipynb")],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
