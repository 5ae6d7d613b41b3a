"""The model registry: reuse a fresh entry, retrain a missing, stale or corrupt one."""

import importlib.util

import pytest
import torch
from torch import nn

from cmlib import registry
from cmlib.checkpoint import CheckpointError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CMLIB_REGISTRY_DIR", raising=False)


def _build(config):
    return nn.Linear(config["width"], 2)


def _trainer(calls):
    def train(model):
        calls.append(1)
        with torch.no_grad():
            model.weight.fill_(0.5)
        return {"score": 0.75}

    return train


CODE = [_build]


def test_trains_when_missing_then_loads_the_saved_weights():
    calls = []
    model, status = registry.load_or_train("tiny", {"width": 3}, _build, _trainer(calls), CODE)
    assert status == "trained: missing" and calls == [1]
    again, status = registry.load_or_train("tiny", {"width": 3}, _build, _trainer(calls), CODE)
    assert status == "loaded" and calls == [1]
    assert torch.equal(again.weight, model.weight) and torch.equal(again.bias, model.bias)
    saved = registry.describe_model("tiny")
    assert saved.metrics == {"score": 0.75} and saved.config == {"width": 3}


def test_another_thread_count_loads_and_says_so():
    # CI trains chapter 04's models with two threads and runs later chapters with one: those
    # load the saved weights instead of training them again, and their status says so.
    calls, before = [], torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        _, status = registry.load_or_train("tiny", {"width": 3}, _build, _trainer(calls), CODE)
        assert status == "trained: missing" and registry.describe_model("tiny").threads == 2
        torch.set_num_threads(1)
        model, status = registry.load_or_train("tiny", {"width": 3}, _build, _trainer(calls), CODE)
        assert status == "loaded (trained with 2 CPU threads, this run has 1)" and calls == [1]
        assert torch.all(model.weight == 0.5)
    finally:
        torch.set_num_threads(before)


def test_another_config_is_stale_and_retrained():
    calls = []
    registry.load_or_train("tiny", {"width": 3, "steps": (1, 2)}, _build, _trainer(calls), CODE)
    with pytest.raises(registry.StaleModelError, match="steps"):
        registry.load_model("tiny", {"width": 3, "steps": (1, 3)}, _build, CODE)
    # A tuple and the list JSON turns it into are the same config.
    _, status = registry.load_or_train(
        "tiny", {"width": 3, "steps": [1, 2]}, _build, _trainer(calls), CODE
    )
    assert status == "loaded"
    _, status = registry.load_or_train("tiny", {"width": 4}, _build, _trainer(calls), CODE)
    assert status.startswith("trained: stale") and len(calls) == 2


def _module_from(path, text):
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("tiny_code", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_code_change_makes_the_entry_stale(tmp_path):
    code = _module_from(tmp_path / "tiny_code.py", "STEP = 1\n")
    registry.save_model("tiny", _build({"width": 2}), {"width": 2}, [code])
    registry.load_model("tiny", {"width": 2}, _build, [code])
    code = _module_from(tmp_path / "tiny_code.py", "STEP = 2\n")
    with pytest.raises(registry.StaleModelError, match="version of the code"):
        registry.load_model("tiny", {"width": 2}, _build, [code])


def test_a_corrupt_entry_is_detected_and_rebuilt():
    calls = []
    registry.load_or_train("tiny", {"width": 3}, _build, _trainer(calls), CODE)
    path = registry.model_path("tiny")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        registry.describe_model("tiny")
    model, status = registry.load_or_train("tiny", {"width": 3}, _build, _trainer(calls), CODE)
    assert status.startswith("trained: corrupt") and len(calls) == 2
    assert registry.load_model("tiny", {"width": 3}, _build, CODE)[0].weight.eq(0.5).all()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="model name"):
        registry.model_path("../escape")
    with pytest.raises(ValueError, match="JSON"):
        registry.save_model("tiny", _build({"width": 2}), {"width": object()}, CODE)
    with pytest.raises(TypeError, match="config must be a dict"):
        registry.save_model("tiny", _build({"width": 2}), [("width", 2)], CODE)
    with pytest.raises(TypeError, match="list of modules"):
        registry.code_version(registry)
    with pytest.raises(FileNotFoundError):
        registry.describe_model("absent")


def test_a_registry_of_its_own_neither_sees_nor_touches_the_default_one(tmp_path, monkeypatch):
    calls = []
    registry.load_or_train("m", {"width": 3}, _build, _trainer(calls), code=[registry])
    monkeypatch.setenv("CMLIB_REGISTRY_DIR", str(tmp_path / "threads1"))
    assert registry.registry_dir() == tmp_path / "threads1"
    _, status = registry.load_or_train("m", {"width": 3}, _build, _trainer(calls), code=[registry])
    assert status == "trained: missing" and len(calls) == 2
    monkeypatch.delenv("CMLIB_REGISTRY_DIR")
    _, status = registry.load_or_train("m", {"width": 3}, _build, _trainer(calls), code=[registry])
    assert status == "loaded" and len(calls) == 2
