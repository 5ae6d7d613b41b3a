"""The fit loop, checkpoints and the cache."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cmlib.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from cmlib.data.cache import cached_array, load_array, save_array
from cmlib.train import accuracy, count_parameters, fit, predict


def toy_problem():
    torch.manual_seed(0)
    x = torch.randn(256, 2)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True), x, y


def test_fit_learns_and_records_history():
    loader, x, y = toy_problem()
    model = nn.Linear(2, 2)
    history = fit(model, loader, torch.optim.SGD(model.parameters(), lr=0.5), num_epochs=5,
                  device=torch.device("cpu"), loss_fn=nn.functional.cross_entropy,
                  eval_fn=lambda m: {"acc": accuracy(predict(m, x, torch.device("cpu")), y)},
                  progress=False)
    assert len(history.train_loss) == 5 and history.train_loss[-1] < history.train_loss[0]
    assert history.metric("acc")[-1] > 0.9 and history.last["acc"] == history.metric("acc")[-1]
    assert count_parameters(model) == 6


def test_fit_argument_errors():
    loader, _, _ = toy_problem()
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="exactly one"):
        fit(model, loader, opt, 1, torch.device("cpu"))
    with pytest.raises(ValueError, match="num_epochs"):
        fit(model, loader, opt, 0, torch.device("cpu"), loss_fn=nn.functional.cross_entropy)
    with pytest.raises(ValueError, match="logits"):
        accuracy(torch.zeros(3), torch.zeros(3))


def test_checkpoint_round_trip_and_errors(tmp_path):
    model = nn.Linear(3, 2)
    path = save_checkpoint(tmp_path / "m.pt", model, "linear", {"in": 3}, {"acc": 0.5})
    other = nn.Linear(3, 2)
    meta = load_checkpoint(path, other, what="linear")
    assert meta["config"] == {"in": 3} and meta["metrics"] == {"acc": 0.5}
    assert torch.equal(other.weight, model.weight)
    with pytest.raises(CheckpointError, match="holds a 'linear'"):
        load_checkpoint(path, what="cnn")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(path, nn.Linear(4, 2))
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": 1}, foreign)
    with pytest.raises(CheckpointError, match="not a cmlib checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind


def test_cache_atomic_checksum_and_rebuild(tmp_path, monkeypatch):
    monkeypatch.setenv("CMLIB_CACHE_DIR", str(tmp_path))
    calls = []

    def build():
        calls.append(1)
        return np.arange(10)

    assert cached_array("numbers", build).tolist() == list(range(10))
    assert cached_array("numbers", build).tolist() == list(range(10)) and len(calls) == 1
    path = tmp_path / "numbers.npz"
    save_array(path, np.arange(3))
    raw = bytearray(path.read_bytes())
    raw[-30] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError):
        load_array(path)
    with pytest.warns(UserWarning, match="rebuilding"):
        cached_array("numbers", build)
    assert len(calls) == 2
    with pytest.raises(ValueError, match="cache key"):
        cached_array("../escape", build)
