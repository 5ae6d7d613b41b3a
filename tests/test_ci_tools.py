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


def test_every_notebook_is_in_exactly_one_lane():
    entries = [e for lane in lanes.LANES.values() for e in lane]
    assert len(entries) == len(set(entries)), "an entry is in two lanes"
    notebooks = sorted(p.stem for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    for entry in entries:  # no entry outlives the notebooks it names
        assert any(nb == entry or nb[:2] == entry for nb in notebooks), entry
    assert all(lanes.lane_of(f"{nb}.ipynb") for nb in notebooks)
    assert list(lanes.LANES)[0] == lanes.SOLO, "the solo lane runs before the others"
    with pytest.raises(ValueError, match="no nbval lane.*LANES"):
        lanes.lane_of("99_future_chapter.ipynb")


def test_a_lane_entry_that_names_a_notebook_wins_over_its_chapter(monkeypatch):
    monkeypatch.setattr(lanes, "LANES", {"solo": ("04_x_gan",), "a": ("03", "04"), "b": ("05",)})
    assert lanes.lane_of("04_x_gan.ipynb") == ("solo", 0)
    assert lanes.lane_of("chapters/04_x.ipynb") == ("a", 1)
    assert lanes.lane_of("05_y_z.ipynb") == ("b", 0)


def test_a_notebook_runs_after_the_notebooks_whose_models_it_loads():
    order = lane_order()
    where = {stem: (lane, i) for lane, stems in order.items() for i, stem in enumerate(stems)}

    def before(first: str, then: str) -> bool:
        """``first`` has finished when ``then`` starts: earlier in one lane, or in the solo
        lane, which finishes before the others start."""
        (lane, i), (then_lane, j) = where[first], where[then]
        return (lane == then_lane and i < j) or (lane == lanes.SOLO != then_lane)

    assert before("04_prompt_generation", "04_prompt_generation_gan")
    assert before("04_prompt_generation_gan", "05_text_to_image_fidelity")  # the CVAE, the cGAN
    assert before("05_text_to_image", "05_text_to_image_fidelity")  # part 4's token model
    for part in ("ablations", "identity", "one_direction"):
        assert before("06_cyclegan", f"06_cyclegan_{part}")  # part 1's CycleGAN
    assert before("06_cyclegan", "11_capstone_studio")  # the studio's translator
    assert before("04_prompt_generation", "11_capstone_studio")  # the studio's drawer
    assert not before("06_cyclegan_ablations", "06_cyclegan")
    assert where["04_prompt_generation_gan"][0] == lanes.SOLO  # fails with one thread today


def test_a_stage_keeps_its_lanes_and_the_tables_merge():
    assert lanes._in_stage("solo", "solo") and not lanes._in_stage("a", "solo")
    assert lanes._in_stage("a", "lanes") and not lanes._in_stage("solo", "lanes")
    assert all(lanes._in_stage(lane, "all") for lane in lanes.LANES)
    solo = {
        "mode": "solo: 1 at a time",
        "lanes": {"solo": 300.0},
        "notebooks": [{"name": "04_a", "lane": "solo", "seconds": 300.0, "passed": True}],
    }
    rest = {
        "mode": "lanes: 2 at a time",
        "lanes": {"a": 10.0},
        "notebooks": [{"name": "00_b", "lane": "a", "seconds": 10.0, "passed": False}],
    }
    merged = lanes.merge_tables(solo, rest)
    assert [nb["name"] for nb in merged["notebooks"]] == ["00_b", "04_a"]
    assert merged["lanes"] == {"solo": 300.0, "a": 10.0}
    assert merged["mode"] == "solo: 1 at a time; then lanes: 2 at a time"


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


def test_make_nbval_gives_each_stage_its_notebooks():
    solo = "chapters/04_prompt_generation_gan.ipynb"
    paths = [solo, "chapters/00_b.ipynb", "chapters/99_new.ipynb", "x.py"]
    assert lanes.stage_notebooks("solo", paths) == [solo]
    # a notebook in no lane is not left out: the lanes stage's pytest stops on it
    assert lanes.stage_notebooks("lanes", paths) == ["chapters/00_b.ipynb", "chapters/99_new.ipynb"]
    assert lanes.stage_notebooks("lanes", paths[:1]) == []  # make nbval skips an empty stage


def test_the_two_stages_run_with_and_without_xdist_and_share_one_table(tmp_path):
    """Real nbval runs of two one-cell notebooks: the solo stage in one process, the lanes stage
    under two xdist workers (the lane scheduler and the controller's table), as make nbval does."""
    import os
    import subprocess

    import nbformat

    solo_name = lanes.LANES[lanes.SOLO][-1]  # a one-cell notebook under a solo notebook's name
    for name in (solo_name, "05_tiny"):
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell("1 + 1")]
        nbformat.write(notebook, tmp_path / f"{name}.ipynb")
    output = tmp_path / "timings" / "notebooks.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(ROOT / "tools"), NBVAL_LANES_OUTPUT=str(output))

    def run(*options, notebook):
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "nbval_lanes",
             "--nbval-lax", "--nbval-current-env", *options, str(tmp_path / notebook)],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
        )  # fmt: skip

    solo = run("-p", "no:xdist", "--lane-stage=solo", notebook=f"{solo_name}.ipynb")
    assert solo.returncode == 0, solo.stdout + solo.stderr
    table = json.loads(output.read_text())
    assert table["stage"] == "solo" and [r["lane"] for r in table["notebooks"]] == ["solo"]
    both = run("-n", "2", "--lane-stage=lanes", notebook="05_tiny.ipynb")
    assert both.returncode == 0, both.stdout + both.stderr
    table = json.loads(output.read_text())
    assert table["stage"] == "both" and table["mode"].startswith("solo: 1 at a time")
    assert {(r["name"], r["lane"], r["passed"]) for r in table["notebooks"]} == {
        (solo_name, "solo", True),
        ("05_tiny", "a", True),
    }
    # a new solo stage starts a new table: an older run's rows are never merged in
    alone = run("-n", "2", "--lane-stage=lanes", notebook="05_tiny.ipynb")
    assert alone.returncode == 0 and json.loads(output.read_text())["stage"] == "lanes"
    together = run("-n", "2", "--lane-stage=all", notebook="05_tiny.ipynb")
    assert together.returncode != 0 and "--lane-stage=solo" in together.stdout + together.stderr
