"""Learning checkpoints: the assertion, the printed line, the record, and the seeds summary."""

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from cmlib import runtime
from cmlib.claims import Checkpoints, margin, read_records

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("checkpoints_tool", ROOT / "tools" / "checkpoints.py")
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def test_passing_checkpoint_prints_and_records(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CMLIB_SEED", "3")
    checkpoint = Checkpoints("03_fusion", directory=tmp_path)
    assert checkpoint("best-fusion", 0.965, ">=", 0.95, baseline=0.46) == 0.965
    line = capsys.readouterr().out.strip()
    assert line.startswith("checkpoint 03_fusion/best-fusion: 0.965 >= 0.95 (margin +0.015) ✓")
    assert "baseline 0.46" in line
    (record,) = read_records(tmp_path / "03_fusion.jsonl")
    assert {
        k: record[k]
        for k in ("notebook", "name", "value", "op", "threshold", "seed", "passed", "baseline")
    } == {
        "notebook": "03_fusion",
        "name": "best-fusion",
        "value": 0.965,
        "op": ">=",
        "threshold": 0.95,
        "seed": 3,
        "passed": True,
        "baseline": 0.46,
    }
    assert record["threads"] == torch.get_num_threads() and record["profile"] == runtime.profile()
    assert "chance" not in record


def test_failing_checkpoint_is_recorded_then_raises(tmp_path):
    checkpoint = Checkpoints("07_retrieval", directory=tmp_path, quiet=True)
    with pytest.raises(AssertionError, match=r"0\.19 >= 0\.2 .*✗"):
        checkpoint("emoji", torch.tensor(0.19), ">=", 0.20, chance=0.001)
    (record,) = read_records(tmp_path / "07_retrieval.jsonl")
    assert record["passed"] is False and record["chance"] == 0.001
    checkpoint("upper", 0.4, "<=", 0.48)
    with pytest.raises(AssertionError):
        checkpoint("strict", 0.5, ">", 0.5)
    assert [r["name"] for r in read_records(checkpoint.path)] == ["emoji", "upper", "strict"]


def test_bad_checkpoint_calls(tmp_path):
    checkpoint = Checkpoints("x", directory=tmp_path)
    with pytest.raises(ValueError, match="op must be one of"):
        checkpoint("a", 1.0, "=>", 0.5)
    with pytest.raises(TypeError, match="number"):
        checkpoint("a", "high", ">=", 0.5)
    with pytest.raises(ValueError, match="finite"):
        checkpoint("a", float("nan"), ">=", 0.5)
    with pytest.raises(ValueError, match="single number"):
        checkpoint("a", torch.ones(2), ">=", 0.5)
    with pytest.raises(ValueError, match="name"):
        checkpoint("", 1.0, ">=", 0.5)
    with pytest.raises(ValueError, match="stem"):
        Checkpoints("chapters/03_fusion")
    assert not (tmp_path / "x.jsonl").exists()


def test_margin_direction():
    assert margin(0.97, ">=", 0.95) == pytest.approx(0.02)
    assert margin(0.47, "<=", 0.48) == pytest.approx(0.01)
    assert margin(0.5, "<", 0.4) == pytest.approx(-0.1)


def test_torn_lines_are_skipped(tmp_path):
    path = tmp_path / "n.jsonl"
    good = {"notebook": "n", "name": "a", "value": 1.0, "op": ">=", "threshold": 0.5}
    path.write_text(json.dumps(good) + "\n" + '{"notebook": "n", "na')
    assert read_records(path) == [good]


def _write_run(directory, stem, name, values, threshold=0.9, op=">=", failed_runs=()):
    records, runs = [], []
    for seed, value in enumerate(values):
        threads = 1 if seed == len(values) - 1 else 2
        records.append(
            {
                "notebook": stem,
                "name": name,
                "value": value,
                "op": op,
                "threshold": threshold,
                "seed": 0 if threads == 1 else seed,
                "threads": threads,
                "profile": "cpu",
                "passed": value >= threshold,
            }
        )
        runs.append(
            {"seed": seed, "threads": threads, "rc": 1 if seed in failed_runs else 0, "seconds": 10}
        )
    with (directory / f"{stem}.jsonl").open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    (directory / f"{stem}.runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in runs))


def test_summary_flags_fragile_checkpoints(tmp_path):
    _write_run(tmp_path, "a", "robust", [0.97, 0.975, 0.98, 0.972, 0.978, 0.974])
    _write_run(tmp_path, "b", "thin", [0.95, 0.91, 0.99, 0.905, 0.93, 0.96])  # mean margin < 2 std
    _write_run(tmp_path, "c", "fails", [0.95, 0.95, 0.95, 0.95, 0.95, 0.89])
    rows = {r["name"]: r for r in tool.summarise(tmp_path)["rows"]}
    assert not rows["robust"]["fragile"] and rows["robust"]["runs"] == 6
    assert rows["robust"]["min"] == 0.97 and rows["robust"]["max"] == 0.98
    assert rows["thin"]["fragile"] and rows["thin"]["why"] == ["mean margin < 2 std"]
    assert rows["fails"]["fragile"] and "a run fails it" in rows["fails"]["why"]
    assert rows["fails"]["worst_margin"] == pytest.approx(-0.01)
    assert tool.write_summary(tmp_path, tmp_path / "copy.md") == 1
    text = (tmp_path / "copy.md").read_text()
    assert "| a | robust | >= 0.9 | 6 |" in text and "3 checkpoints, 2 fragile" in text


def test_a_bar_that_moves_with_the_baseline_is_judged_by_the_spread_of_its_margins(tmp_path):
    # DANN's gain: the bar is each run's own source-only accuracy + 0.15. The values barely vary,
    # the bars do, and one run passes by 0.01: the margins' spread makes this fragile.
    values = [0.92, 0.90, 0.91, 0.90, 0.93, 0.92]
    bars = [0.50, 0.70, 0.60, 0.89, 0.55, 0.52]
    _write_run(tmp_path, "e", "gain", values)
    path = tmp_path / "e.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record, bar in zip(records, bars):
        record["threshold"] = bar
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    (row,) = tool.summarise(tmp_path)["rows"]
    assert row["margin_std"] > 5 * row["std"]  # by the values alone it would look robust
    assert row["fragile"] and row["why"] == ["mean margin < 2 std"]


def test_summary_counts_runs_that_never_reached_a_checkpoint(tmp_path):
    _write_run(tmp_path, "d", "late", [0.99, 0.99, 0.99])
    runs = (tmp_path / "d.runs.jsonl").read_text()
    (tmp_path / "d.runs.jsonl").write_text(
        runs + json.dumps({"seed": 9, "threads": 2, "rc": 1, "seconds": 3}) + "\n"
    )
    (row,) = tool.summarise(tmp_path)["rows"]
    assert row["fragile"] and row["why"] == ["1 run(s) never reached it"]


def test_a_rerun_of_the_same_config_replaces_its_record(tmp_path):
    _write_run(tmp_path, "e", "x", [0.5, 0.96, 0.97])  # first seed-0 record fails...
    with (tmp_path / "e.jsonl").open("a") as f:  # ...and a later run of seed 0 passes
        f.write(
            json.dumps(
                {
                    "notebook": "e",
                    "name": "x",
                    "value": 0.975,
                    "op": ">=",
                    "threshold": 0.9,
                    "seed": 0,
                    "threads": 2,
                    "profile": "cpu",
                    "passed": True,
                }
            )
            + "\n"
        )
    (row,) = tool.summarise(tmp_path)["rows"]
    assert row["min"] == 0.96 and row["runs"] == 3


def test_threads_from_environment(monkeypatch):
    monkeypatch.setenv("CMLIB_THREADS", "0")
    with pytest.raises(ValueError, match="CMLIB_THREADS"):
        runtime.threads_from_env()
    monkeypatch.setenv("CMLIB_THREADS", "x")
    with pytest.raises(ValueError, match="CMLIB_THREADS"):
        runtime.threads_from_env()
    before = torch.get_num_threads()
    monkeypatch.setenv("CMLIB_THREADS", "1")
    try:
        assert runtime.apply_threads() == 1 and runtime.describe()["threads"] == "1"
        assert runtime.describe()["CMLIB_THREADS"] == "1"
    finally:
        torch.set_num_threads(before)
    monkeypatch.delenv("CMLIB_THREADS")
    assert runtime.threads_from_env() is None


def test_a_claim_asserted_in_another_profile_is_measured_not_asserted(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("CMLIB_PROFILE", "cpu")
    checkpoint = Checkpoints("05_text_to_image", directory=tmp_path)
    assert checkpoint("seen", 0.6, ">=", 0.8, asserted_in=("gpu",)) == 0.6  # no AssertionError
    line = capsys.readouterr().out
    assert "✗" in line and "not asserted in the cpu profile; asserted in gpu" in line
    (record,) = read_records(checkpoint.path)
    assert record["asserted"] is False and record["passed"] is False
    with pytest.raises(AssertionError):
        checkpoint("seen-too", 0.6, ">=", 0.8, asserted_in=("cpu", "gpu"))
    with pytest.raises(ValueError, match="asserted_in"):
        checkpoint("bad", 0.6, ">=", 0.8, asserted_in="gpu")
    with pytest.raises(ValueError, match="asserted_in"):
        checkpoint("bad", 0.6, ">=", 0.8, asserted_in=("tpu",))
    # the seeds summary shows it as measured only, not as fragile
    path = checkpoint.path
    path.write_text(json.dumps(record) + "\n")
    (row,) = tool.summarise(tmp_path)["rows"]
    assert not row["fragile"] and row["asserted"] is False
    assert "Measured but not asserted" in tool.to_markdown(tool.summarise(tmp_path))


def test_summary_keeps_committed_rows_of_notebooks_not_rerun(tmp_path):
    records, notes = tmp_path / "records", tmp_path / "notes"
    records.mkdir()
    notes.mkdir()
    _write_run(records, "a", "old", [0.5, 0.5, 0.5])  # a fails in the committed summary...
    _write_run(records, "b", "kept", [0.97, 0.975, 0.98])
    tool.write_summary(records, notes / "checkpoints.md")
    committed = json.loads((notes / "checkpoints.json").read_text())
    assert {r["notebook"] for r in committed["rows"]} == {"a", "b"}
    fresh = tmp_path / "fresh"  # ...a fresh clone reruns only a, which now passes
    fresh.mkdir()
    _write_run(fresh, "a", "new", [0.97, 0.98, 0.99])
    assert tool.write_summary(fresh, notes / "checkpoints.md") == 0
    rows = {
        (r["notebook"], r["name"])
        for r in json.loads((notes / "checkpoints.json").read_text())["rows"]
    }
    assert rows == {("a", "new"), ("b", "kept")}  # a's old row is replaced, b's is carried over
    text = (notes / "checkpoints.md").read_text()
    assert (
        "| b | kept |" in text and "| a | old |" not in text and "2 checkpoints, 0 fragile" in text
    )


def test_seeds_runs_write_into_the_checkout_that_runs_them(tmp_path, monkeypatch):
    """The records go to the tool's own checkout (or a resolved $CMLIB_CHECKPOINT_DIR), not to
    the one the installed cmlib lives in, and each notebook run is told so and imports that
    checkout's cmlib."""
    checkout = tmp_path / "checkout"
    (checkout / "chapters").mkdir(parents=True)
    (checkout / "chapters" / "08_x.ipynb").write_text("{}", encoding="utf-8")
    monkeypatch.setattr(tool, "ROOT", checkout)
    monkeypatch.delenv("CMLIB_CHECKPOINT_DIR", raising=False)
    told = []

    def fake_run(command, env, cwd):  # a notebook run, without running it
        told.append((env["CMLIB_CHECKPOINT_DIR"], env["PYTHONPATH"].split(os.pathsep)[0]))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(tool.subprocess, "run", fake_run)
    assert tool.run_seeds(["08_x"], [0]) == 0
    records = checkout / "_build" / "checkpoints"
    assert told and set(told) == {(str(records), str(checkout))}
    assert (records / "08_x.runs.jsonl").exists()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CMLIB_CHECKPOINT_DIR", "elsewhere")
    assert tool.records_dir() == tmp_path / "elsewhere"
