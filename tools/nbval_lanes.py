"""A pytest plugin for ``make nbval``: the notebooks in lanes, and each one's wall time.

CI has two cores. One notebook at a time with two torch threads leaves part of the second core
idle (data generation, plotting, kernel start-up and Python between the tensor ops are
single-threaded), so ``make nbval`` runs two notebooks at a time, one per core, each with
``CMLIB_THREADS=1`` (every checkpoint must hold with one thread too: ``make seeds``).

Notebooks are not independent: a later part loads the model an earlier part saved in the
registry (chapter 06's CycleGAN for parts 3–5, chapter 04's CVAE for chapter 05 part 5 and the
studio, chapter 05 part 4's token model for part 5), and trains it itself when it is not there
yet. So the notebooks go in fixed *lanes*, each in the order below: a chapter's parts stay in
one lane, in order, and a chapter that loads another's model comes after it.

* The ``solo`` lane runs first, one notebook at a time with the default threads, before the
  other lanes start (``--lane-stage solo``). It holds the notebooks with a checkpoint that does
  not yet hold with one thread: chapter 04 part 3's cGAN (``cgan-held-out`` was 0.156 < 0.167
  for seed 0 with one thread, ``chapters/notes/checkpoints.md``; its repair is the optimisation
  chapter's, 09, to come). Given two threads *beside* a one-thread lane, three threads on two
  cores slowed its training cell past nbval's 600-s cell timeout, so it runs alone. Part 1 goes
  with it, first, because part 3 loads part 1's CVAE; chapter 05 part 5 loads both, and the studio
  part 1's CVAE and judge. Part 2 (the digits) loads neither, so it runs in lane ``a``.
  Two more notebooks run there because they want both cores for their own reasons, and took
  150 s or more beside another notebook (stop 41's fresh-clone run: 154 s and 149 s):
  chapter 10, whose ``torchrun`` jobs start two processes of one thread each, and chapter 06
  part 1, the course's longest live training (about 100 s of its 150). Chapter 06 part 3 joined
  them at stop 48: it trains the CycleGAN without its cycle and two paired generators, and took
  146 s and 150 s in lane b of stops 47's fresh-clone runs. Parts 4 and 5 of chapter 06 load
  part 1's CycleGAN, and the solo stage ends before they start. Chapter 09 part 1 joined at stop
  53: it trains four dual encoders (about 95 s of two-thread time in all), and chapter 07 part
  2, which trains two of them, took 112 s in lane b against 68 s alone. Its parts 3–6 followed
  (part 4 trains a cGAN live for 1,500 steps).
* Lanes ``a`` and ``b`` then run side by side, one per pytest-xdist worker
  (``--lane-stage lanes``), balanced by the times this plugin reports. (A lane is an xdist
  *scope*, set by the scheduler below; xdist's own ``--dist loadgroup`` marks do not take with
  pytest 9, whose node ids xdist 3.8 can no longer rename.)

A lane lists chapters by number (``"05"``: all its notebooks) or single notebooks by name
(``"04_prompt_generation_digits"``), which is how one chapter's independent parts go to
different lanes. A notebook named on its own is in that lane only, whatever lane its chapter is
in. The lanes were balanced by the notebook times of a fresh-clone CI run (stop 38: lane a
948 s, lane b 972 s of notebook time after this move, from 1,053 s and 867 s). Stop 47 split
chapter 06 part 2 (158 s in lane b) in two and put the new part 6 in lane a, beside chapter
08's new part 3 in lane b; stop 48 moved part 3 of chapter 06 from lane b to the solo stage and
part 6 back to lane b (lane a 903 s, lane b 864 s by stop 47's times). Chapter 09's parts 5 and
6 joined the solo stage after its parts 1-3 (about 100 s each on two cores); part 6's closing
table reads what the earlier parts recorded. Stop 59 moved chapter 03 part 2 (it loads nothing)
to the end of lane b: stop 58's fresh-clone run had lane a at 1,057 s and lane b at 987 s, and
the move leaves about 1,030 s and 1,014 s.

Loaded with ``-p nbval_lanes`` (``tools/`` on ``PYTHONPATH``); without xdist and without
``--lane-stage`` every lane runs in one process, in the order above. It writes
``_build/timings/notebooks.json`` (the lanes stage adds its rows to the solo stage's), which
``tools/timings.py report`` turns into the table printed at the end of ``make test``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: where the timing table goes (NBVAL_LANES_OUTPUT overrides it, for the plugin's own tests)
OUTPUT = Path(
    os.environ.get("NBVAL_LANES_OUTPUT") or ROOT / "_build" / "timings" / "notebooks.json"
)

#: Each lane's chapters (by number) and single notebooks (by name), in the order they run; the
#: lanes in the order they start. Within a chapter its notebooks run in name order (part 1 is
#: ``NN_name``, later parts ``NN_name_suffix``, which sort after it).
LANES: dict[str, tuple[str, ...]] = {
    # alone, default threads: the cGAN (part 3) and the CVAE it loads (part 1); then the
    # notebooks whose training wants both cores (two torchrun ranks; the CycleGAN and its
    # ablations, which train three more models)
    "solo": (
        "04_prompt_generation",
        "04_prompt_generation_gan",
        "06_cyclegan",
        "06_cyclegan_ablations",
        "09_optimisation",
        "09_optimisation_negatives",
        "09_optimisation_imbalance",
        "09_optimisation_gans",
        "09_optimisation_schedules",
        "09_optimisation_gradients",
        "10_scaling_out",
    ),
    "a": ("04_prompt_generation_digits", "05", "03", "00", "01", "02"),
    # 06 parts 3-5 load part 1; 11 loads 04's and 06's
    "b": ("06", "07_retrieval", "08", "11", "07_retrieval_relations", "03_fusion_models"),
}
SOLO = "solo"
STAGES = ("all", SOLO, "lanes")

_CHAPTER = re.compile(r"^(\d\d)_")


def lane_of(notebook: str) -> tuple[str, int]:
    """``(lane, position of its entry in the lane)`` for a notebook's file name.

    A lane entry that names the notebook itself wins over one that names its chapter.

    Raises:
        ValueError: for a notebook in no lane.
    """
    stem = Path(notebook).stem
    match = _CHAPTER.match(Path(notebook).name)
    chapter = match.group(1) if match else None
    for key in (stem, chapter):
        for lane, entries in LANES.items():
            if key in entries:
                return lane, entries.index(key)
    raise ValueError(
        f"{notebook} is in no nbval lane: add chapter {chapter} or {stem} to LANES in "
        "tools/nbval_lanes.py"
    )


def _notebook(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_addoption(parser):
    parser.addoption(
        "--lane-stage",
        choices=STAGES,
        default="all",
        help="nbval_lanes: run every lane (all), only the solo lane, or only the other lanes",
    )


def _in_stage(lane: str, stage: str) -> bool:
    return stage == "all" or (lane == SOLO) == (stage == SOLO)


def stage_notebooks(stage: str, paths: list[str]) -> list[str]:
    """The notebooks among ``paths`` that ``stage`` runs (``make nbval`` skips an empty stage).

    A notebook in no lane goes to every stage but the solo one, whose pytest run then stops
    with :func:`lane_of`'s message instead of leaving it out in silence.
    """
    kept = []
    for path in (p for p in paths if p.endswith(".ipynb")):
        try:
            lane = lane_of(path)[0]
        except ValueError:
            lane = None
        if (lane is None and stage != SOLO) or (lane is not None and _in_stage(lane, stage)):
            kept.append(path)
    return kept


def pytest_collection_modifyitems(session, config, items):
    """Keep the cells of this stage's lanes, sorted into lane order: lane by lane, chapter by
    chapter, notebook by notebook."""
    stage, order = config.getoption("lane_stage"), list(LANES)
    keys, deselected = {}, []
    for index, item in enumerate(items):
        path = _notebook(item.nodeid)
        if not path.endswith(".ipynb"):
            continue
        try:
            lane, position = lane_of(path)
        except ValueError as err:
            raise pytest.UsageError(str(err)) from None
        if not _in_stage(lane, stage):
            deselected.append(item)
        keys[id(item)] = (order.index(lane), position, Path(path).name, index)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        kept = {id(item) for item in deselected}
        items[:] = [item for item in items if id(item) not in kept]
    items.sort(key=lambda item: keys.get(id(item), (len(order), 0, "", 0)))


@pytest.hookimpl(optionalhook=True)  # xdist's hook: unknown when xdist is off (one at a time)
def pytest_xdist_make_scheduler(config, log):
    """With xdist: one work unit per lane, its cells in collection (lane) order."""
    from xdist.scheduler import LoadScopeScheduling

    class LaneScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = _notebook(nodeid)
            return f"lane-{lane_of(path)[0]}" if path.endswith(".ipynb") else nodeid

    return LaneScheduling(config, log)


class _Clock:
    """Gathers every cell report (on the controller when xdist runs the workers)."""

    def __init__(self):
        self.start: dict[str, float] = {}
        self.stop: dict[str, float] = {}
        self.failed: set[str] = set()

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report):
        path = _notebook(report.nodeid)
        if not path.endswith(".ipynb"):
            return
        start, stop = getattr(report, "start", None), getattr(report, "stop", None)
        if start is not None:
            self.start[path] = min(self.start.get(path, start), start)
        if stop is not None:
            self.stop[path] = max(self.stop.get(path, stop), stop)
        if report.failed:
            self.failed.add(path)

    def table(self, mode: str) -> dict:
        rows, lanes = [], defaultdict(float)
        for path in sorted(self.start, key=lambda p: self.start[p]):
            seconds = self.stop.get(path, self.start[path]) - self.start[path]
            lane = lane_of(path)[0]
            lanes[lane] += seconds
            rows.append(
                {
                    "name": Path(path).stem,
                    "lane": lane,
                    "seconds": round(seconds, 1),
                    "passed": path not in self.failed,
                }
            )
        rows.sort(key=lambda r: r["name"])
        return {
            "mode": mode,
            "lanes": {k: round(v, 1) for k, v in lanes.items()},
            "notebooks": rows,
        }


def pytest_configure(config):
    worker = hasattr(config, "workerinput")
    if getattr(config.option, "numprocesses", None) and config.getoption("lane_stage") == "all":
        raise pytest.UsageError(
            "nbval_lanes: with xdist workers, run --lane-stage=solo (no workers) first, then "
            "--lane-stage=lanes; all lanes at once would run the solo lane beside the others"
        )
    if worker or not getattr(config.option, "numprocesses", None):
        # This process starts the kernels: they run as a reader's would, without tools/ (put
        # on PYTHONPATH only so that pytest finds this plugin) on their path.
        if os.environ.get("PYTHONPATH", "").rstrip("/") in ("tools", str(ROOT / "tools")):
            del os.environ["PYTHONPATH"]
    if worker:  # an xdist worker: its reports go to the controller
        return
    config.pluginmanager.register(_Clock(), "nbval_lanes_clock")


def merge_tables(earlier: dict, later: dict) -> dict:
    """The solo stage's table and the lanes stage's as one (a notebook in both: the later row)."""
    rows = {row["name"]: row for row in earlier.get("notebooks", [])}
    rows.update({row["name"]: row for row in later["notebooks"]})
    return {
        "mode": f"{earlier['mode']}; then {later['mode']}",
        "lanes": {**earlier.get("lanes", {}), **later["lanes"]},
        "notebooks": sorted(rows.values(), key=lambda r: r["name"]),
    }


def pytest_sessionstart(session):
    """The solo stage starts a new table: the lanes stage must not merge an older run's."""
    config = session.config
    if config.getoption("lane_stage") == SOLO and not hasattr(config, "workerinput"):
        OUTPUT.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """``python tools/nbval_lanes.py STAGE NOTEBOOK...``: print the notebooks STAGE runs."""
    import sys

    stage, *paths = sys.argv[1:] if argv is None else argv
    if stage not in STAGES:
        raise SystemExit(f"stage must be one of {STAGES}, got {stage!r}")
    print(" ".join(stage_notebooks(stage, paths)))
    return 0


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    stage = config.getoption("lane_stage")
    clock = config.pluginmanager.get_plugin("nbval_lanes_clock")
    if clock is None or not clock.start:
        return
    workers = getattr(config.option, "numprocesses", None) or 0
    threads = os.environ.get("CMLIB_THREADS") or "default"
    mode = f"{workers or 1} at a time, CMLIB_THREADS={threads}"
    if stage != "all":
        mode = f"{stage}: {mode}"
    table = {**clock.table(mode), "stage": stage}
    if stage == "lanes" and OUTPUT.exists():
        earlier = json.loads(OUTPUT.read_text())
        if earlier.get("stage") == SOLO:  # this make nbval's first stage
            table = {**merge_tables(earlier, table), "stage": "both"}
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=OUTPUT.parent, prefix=".notebooks.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(table, f, indent=2)
    os.replace(tmp, OUTPUT)


if __name__ == "__main__":
    raise SystemExit(main())
