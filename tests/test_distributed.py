"""cmlib.distributed: gloo runs of 2 processes on the CPU through torchrun, bounded in time."""

import json
import os
import time
from pathlib import Path

import pytest
import torch

from cmlib import distributed
from cmlib.distributed import DDPConfig, DistContext
from cmlib.retrieval import clip_loss
from cmlib.train import History

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_retrieval_ddp.py"
TINY = [
    "--num-train",
    "256",
    "--num-test",
    "100",
    "--global-batch-size",
    "64",
    "--cnn-width",
    "8",
    "--no-progress",
]
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    # Each test renders its own small splits; the jobs inherit this through the environment.
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path / "cache"))


def _run(args, nproc=2, timeout_s=180):
    return distributed.run_torchrun(SCRIPT, args, nproc, timeout_s).check()


# ---------------------------------------------------------------- in-process
def test_a_single_process_is_a_world_of_one(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    ctx = distributed.init_distributed(use_cuda=False)
    assert (ctx.rank, ctx.world_size, ctx.backend, ctx.is_main) == (0, 1, None, True)
    with pytest.raises(ValueError, match="NCCL only"):
        distributed.init_distributed(backend="nccl", use_cuda=False)
    with pytest.raises(ValueError, match="backend"):
        distributed.init_distributed(backend="mpi")


def test_misuse_gets_a_clear_error():
    with pytest.raises(ValueError, match="does not divide the global batch 33"):
        distributed.local_batch_size(33, 2)
    assert distributed.local_batch_size(64, 2) == 32
    with pytest.raises(RuntimeError, match="no process group"):
        distributed.gather_features(torch.randn(4, 3), torch.randn(4, 3))
    with pytest.raises(ValueError, match="does not divide"):
        distributed.train_retrieval(
            DDPConfig(global_batch_size=33), DistContext(0, 2, 0, CPU, "gloo")
        )
    with pytest.raises(ValueError, match="2 or more ranks"):
        distributed.compare_with_one_process(DDPConfig(), DistContext(0, 1, 0, CPU, None))
    with pytest.raises(ValueError, match="nproc_per_node"):
        distributed.torchrun_command(SCRIPT, [], 0)


def test_without_a_group_the_loss_is_clip_loss():
    image, text = torch.randn(2, 8, 5).unbind(0)
    image, text = (
        torch.nn.functional.normalize(image, dim=1),
        torch.nn.functional.normalize(text, dim=1),
    )
    assert torch.equal(
        distributed.distributed_clip_loss(image, text, 10.0), clip_loss(image, text, 10.0)
    )


def test_rank_seeds_differ_between_ranks_and_seeds():
    seeds = {distributed.rank_seed(s, r) for s in range(3) for r in range(4)}
    assert len(seeds) == 12


def test_only_rank_0_writes_and_a_bad_state_is_refused(tmp_path):
    tmp_path = tmp_path / "states"
    tmp_path.mkdir()
    payload = {"generator_states": [torch.Generator().get_state()], "epoch": 1}
    distributed.save_state(tmp_path / "other.pt", DistContext(1, 1, 0, CPU, None), payload)
    assert not (tmp_path / "other.pt").exists()
    distributed.save_state(tmp_path / "main.pt", DistContext(0, 1, 0, CPU, None), payload)
    assert distributed.load_state(tmp_path / "main.pt", world_size=1)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["main.pt"]  # no temp files
    with pytest.raises(ValueError, match="resume with as many"):
        distributed.load_state(tmp_path / "main.pt", world_size=2)
    (tmp_path / "main.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable training state"):
        distributed.load_state(tmp_path / "main.pt", world_size=1)


def test_a_job_past_its_time_limit_is_stopped_with_its_workers(tmp_path):
    # A "worker" that starts a grandchild and sleeps: both must be gone after the timeout.
    script = tmp_path / "sleeper.py"
    pid_file = tmp_path / "pids"
    script.write_text(
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"pid_file = {str(pid_file)!r} + os.environ['RANK']\n"
        "open(pid_file, 'w').write(f'{os.getpid()} {child.pid}')\n"
        "time.sleep(120)\n"
    )
    started = time.perf_counter()
    result = distributed.run_torchrun(script, [], nproc_per_node=2, timeout_s=15)
    assert result.timed_out and time.perf_counter() - started < 60
    with pytest.raises(RuntimeError, match="ran out of time"):
        result.check()
    pids = [int(p) for rank in (0, 1) for p in Path(f"{pid_file}{rank}").read_text().split()]
    time.sleep(0.5)
    for pid in pids:
        assert not _alive(pid), f"process {pid} outlived the job"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent has not read its status yet.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


# ---------------------------------------------------------------- 2 processes
def test_two_ranks_with_gathering_equal_one_process_on_the_whole_batch(tmp_path):
    out = tmp_path / "compare.json"
    _run(["--compare", "--global-batch-size", "32", "--cnn-width", "8", "--out", out])
    results = json.loads(out.read_text())
    assert results["backend"] == "gloo"
    exact = results["gather"]
    assert exact["loss_diff"] < 1e-5 and exact["grad_max_diff"] < 1e-5
    assert exact["grad_max"] > 1e-3  # a real gradient, not zeros on both sides
    # Each rank's own 15 negatives: another loss (log 16 vs log 32 at init), other gradients.
    assert results["none"]["loss_diff"] > 0.1 and results["none"]["grad_max_diff"] > 1e-4
    assert results["local grad"]["grad_max_diff"] > 1e-4


def test_resume_gives_the_weights_of_a_straight_run(tmp_path):
    straight, resumed = tmp_path / "straight.pt", tmp_path / "resumed.pt"
    state = tmp_path / "state.pt"
    common = [*TINY, "--num-epochs", "2"]
    _run([*common, "--save-weights", straight])
    _run([*common, "--checkpoint", state, "--stop-after-epochs", "1"])
    assert torch.load(state, weights_only=True)["epoch"] == 1
    _run(
        [
            *common,
            "--checkpoint",
            state,
            "--resume",
            "--save-weights",
            resumed,
            "--out",
            tmp_path / "run.json",
        ]
    )
    a, b = torch.load(straight, weights_only=True), torch.load(resumed, weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    history = json.loads((tmp_path / "run.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2] and history["world_size"] == 2
    # Only rank 0 wrote: the files asked for, and no leftovers of atomic writes.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cache",
        "resumed.pt",
        "run.json",
        "state.pt",
        "straight.pt",
    ]


def test_the_script_reports_a_batch_the_world_cannot_split(tmp_path):
    result = distributed.run_torchrun(SCRIPT, [*TINY, "--global-batch-size", "33"], 2, 120)
    assert result.returncode != 0 and "does not divide the global batch 33" in result.output


def test_gradient_accumulation_takes_one_step_per_k_micro_batches(tmp_path):
    out, state = tmp_path / "accumulated.json", tmp_path / "state.pt"
    _run(
        [*TINY, "--num-epochs", "1", "--grad-accum-steps", "2", "--checkpoint", state, "--out", out]
    )
    history = json.loads(out.read_text())
    assert history["config"]["grad_accum_steps"] == 2 and history["epochs"][0]["loss"] > 0
    # 256 scenes, 64 per micro-batch over 2 ranks: 4 micro-batches, so 2 optimiser steps.
    saved = torch.load(state, weights_only=True)
    assert saved["scheduler"]["last_epoch"] == 2
    assert all(s["step"].item() == 2 for s in saved["optimizer"]["state"].values())


def test_one_process_returns_the_model_and_a_history_the_report_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path / "cache"))
    config = DDPConfig(
        num_train=64, num_test=32, num_epochs=2, global_batch_size=32, cnn_width=4, embed_dim=8
    )
    model, history = distributed.train_retrieval(
        config, DistContext(0, 1, 0, CPU, None), progress=False
    )
    assert isinstance(history, History) and len(history.train_loss) == 2
    assert set(history.metrics[-1]) >= {"R@1", "R@5"} and not model.training
    report = distributed.run_report(history, config, 1)
    assert [e["epoch"] for e in report["epochs"]] == [1, 2]
    assert report["final"] == history.metrics[-1] and report["config"]["num_epochs"] == 2
    with pytest.raises(ValueError, match="rank 0"):
        distributed.run_report(History(train_loss=[1.0], metrics=[{}], seconds=[1.0]), config, 2)
