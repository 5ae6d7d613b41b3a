"""Two processes that want the same cache entry or model at once build it once (make nbval runs
two notebooks at a time, and chapters share entries)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from cmlib.data.cache import build_lock

CACHED_ARRAY = """
import sys, time
import numpy as np
from cmlib.data.cache import cached_array

def build():
    with open(sys.argv[1], "a") as f:
        f.write("built\\n")
    time.sleep(1.5)  # long enough for the other process to arrive while this one builds
    return np.arange(5)

print(cached_array("shared", build).tolist())
"""

REGISTRY = """
import sys, time
import torch
from torch import nn
from cmlib import registry

def build(config):
    torch.manual_seed(int(sys.argv[2]))  # each process would start from other weights
    return nn.Linear(config["width"], 1)

def train(model):
    with open(sys.argv[1], "a") as f:
        f.write("trained\\n")
    time.sleep(1.5)
    return {"loss": 0.5}

model, status = registry.load_or_train("shared-net", {"width": 3}, build, train, code=[build])
print(status.split(":")[0], round(model.weight.sum().item(), 6))
"""


def run_two(script: str, tmp_path) -> tuple[list[str], list[str]]:
    """Start the script in two processes at once; their outputs and the build log."""
    env = {**os.environ, "CMLIB_CACHE_DIR": str(tmp_path / "cache")}
    log = tmp_path / "builds.log"
    code = tmp_path / "script.py"
    code.write_text(textwrap.dedent(script))
    processes = [
        subprocess.Popen(
            [sys.executable, str(code), str(log), str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outputs.append(out.strip())
    return outputs, log.read_text().split()


def test_a_cached_array_is_built_once_under_contention(tmp_path):
    outputs, builds = run_two(CACHED_ARRAY, tmp_path)
    assert builds == ["built"]
    assert outputs == ["[0, 1, 2, 3, 4]"] * 2


def test_a_registry_model_is_trained_once_under_contention(tmp_path):
    outputs, builds = run_two(REGISTRY, tmp_path)
    assert builds == ["trained"]
    statuses = sorted(line.split()[0] for line in outputs)
    assert statuses == ["loaded", "trained"]
    # the waiting process loaded the weights the other trained, not its own fresh ones
    assert outputs[0].split()[1] == outputs[1].split()[1]


def test_a_held_build_lock_times_out_with_a_clear_error(tmp_path):
    path = tmp_path / "entry.npz"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from cmlib.data.cache import build_lock\n"
            "with build_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(20)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with pytest.raises(TimeoutError, match=r"entry\.npz\.lock"):
            with build_lock(path, wait_s=0.5):
                pass
        assert time.monotonic() - start < 10
    finally:
        holder.kill()
        holder.wait()
    with build_lock(path, wait_s=5):  # released when its holder died
        pass


def test_an_empty_cache_and_a_full_one_leave_the_same_random_numbers(tmp_path, monkeypatch):
    """Building a cached array draws nothing from the caller's generators (loading EfficientNet
    used to: a cold-cache run then trained other models than a warm-cache run from one seed)."""
    import random

    import numpy as np
    import torch

    from cmlib.data.cache import cached_array

    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path / "cache"))

    def build():  # draws from every global generator, as model loading and data making do
        torch.nn.Linear(4, 4)
        return np.array([np.random.rand(), random.random(), torch.rand(1).item()])

    def next_draws(key):
        torch.manual_seed(0), np.random.seed(0), random.seed(0)
        array = cached_array(key, build)
        return array, (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])

    cold_array, cold = next_draws("rng-test")  # built here
    warm_array, warm = next_draws("rng-test")  # loaded from disk
    assert np.array_equal(cold_array, warm_array)
    assert torch.equal(cold[0], warm[0]) and np.array_equal(cold[1], warm[1]) and cold[2] == warm[2]
