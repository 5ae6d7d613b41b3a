"""Run profile, device and seeding."""

import pytest
import torch

from cmlib import runtime


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("CMLIB_PROFILE", "gpu")
    assert runtime.profile() == "gpu" and runtime.pick(cpu=1, gpu=2) == 2
    monkeypatch.setenv("CMLIB_PROFILE", "cpu")
    assert runtime.profile() == "cpu" and runtime.pick(cpu=1, gpu=2) == 1
    monkeypatch.setenv("CMLIB_PROFILE", "tpu")
    with pytest.raises(ValueError, match="cpu"):
        runtime.profile()
    monkeypatch.delenv("CMLIB_PROFILE")
    assert runtime.profile() == ("gpu" if torch.cuda.is_available() else "cpu")


def test_seed_everything(monkeypatch):
    monkeypatch.setenv("CMLIB_SEED", "7")
    assert runtime.seed_everything() == 7
    a = torch.rand(3)
    runtime.seed_everything(7)
    assert torch.equal(a, torch.rand(3))
    monkeypatch.setenv("CMLIB_SEED", "seven")
    with pytest.raises(ValueError, match="CMLIB_SEED"):
        runtime.seed_everything()
    with pytest.raises(ValueError):
        runtime.seed_everything(-1)


def test_device_and_describe():
    assert runtime.device().type in {"cuda", "mps", "cpu"}
    info = runtime.describe()
    assert info["torch"] == torch.__version__ and info["profile"] in runtime.PROFILES
