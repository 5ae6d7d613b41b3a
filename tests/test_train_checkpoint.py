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
    history = fit(
        model,
        loader,
        torch.optim.SGD(model.parameters(), lr=0.5),
        num_epochs=5,
        device=torch.device("cpu"),
        loss_fn=nn.functional.cross_entropy,
        eval_fn=lambda m: {"acc": accuracy(predict(m, x, torch.device("cpu")), y)},
        progress=False,
    )
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


def test_predict_batches_like_one_call_and_handles_dicts_and_tuples():
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
    x = torch.randn(10, 4)
    model.train()
    out = predict(model, x, "cpu", batch_size=3)
    assert not model.training  # eval mode: dropout is off
    with torch.no_grad():
        assert torch.allclose(out, model(x), atol=1e-6)
    pair = predict(lambda a, b: {"sum": a + b, "diff": a - b}, (x, x), "cpu", batch_size=4)
    assert torch.allclose(pair["sum"], 2 * x) and torch.equal(pair["diff"], torch.zeros(10, 4))
    split = predict(lambda a: (a, -a), x, "cpu", batch_size=4)
    assert torch.equal(split[1], -x)
    with pytest.raises(ValueError, match="empty"):
        predict(model, torch.zeros(0, 4), "cpu")
    with pytest.raises(ValueError, match="same number of rows"):
        predict(lambda a, b: a, (x, x[:3]), "cpu")
    with pytest.raises(TypeError, match="torch.Tensor"):
        predict(model, [[1.0, 2.0]], "cpu")


def test_index_batches_are_seeded_and_fresh_each_pass():
    from cmlib.train import IndexBatches

    data = IndexBatches(10, 4, seed=1, tensors=(torch.arange(10), torch.arange(10) * 2))
    first, second = list(data), list(data)
    assert len(data) == len(first) == 2 and all(len(b[0]) == 4 for b in first)
    assert torch.equal(first[0][1], 2 * first[0][0])  # rows stay together
    assert not torch.equal(first[0][0], second[0][0])  # a fresh order each pass
    assert torch.equal(list(IndexBatches(10, 4, seed=1))[0], first[0][0])  # the seed fixes it
    keep_last = IndexBatches(10, 4, seed=0, drop_last=False)
    assert len(keep_last) == 3 and sorted(torch.cat(list(keep_last)).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="batch_size"):
        IndexBatches(3, 4)
    with pytest.raises(ValueError, match="rows"):
        IndexBatches(5, 2, tensors=(torch.zeros(4),))


def test_fit_logs_what_a_step_returns_and_histories_add():
    from cmlib.train import History

    loader, _, _ = toy_problem()
    model = nn.Linear(2, 2)

    def step(m, batch):
        x, y = batch
        loss = nn.functional.cross_entropy(m(x), y)
        return {"loss": loss, "half": loss / 2}

    history = fit(
        model,
        loader,
        torch.optim.SGD(model.parameters(), lr=0.5),
        2,
        torch.device("cpu"),
        step_fn=step,
        progress=False,
    )
    assert len(history.steps["loss"]) == 2 * len(loader)
    assert history.steps["half"] == pytest.approx([v / 2 for v in history.steps["loss"]])
    assert history.train_loss[0] == pytest.approx(np.mean(history.steps["loss"][: len(loader)]))
    both = history + History([1.0], [{"acc": 0.5}], [2.0], {"loss": [1.0]})
    assert len(both.train_loss) == 3 and both.total_seconds == pytest.approx(
        sum(history.seconds) + 2
    )
    assert both.steps["loss"][-1] == 1.0 and both.steps["half"] == history.steps["half"]
    with pytest.raises(TypeError, match="loss"):
        fit(
            model,
            loader,
            torch.optim.SGD(model.parameters(), lr=0.5),
            1,
            torch.device("cpu"),
            step_fn=lambda m, b: {"value": 1.0},
            progress=False,
        )


def test_endless_batches_cover_every_row_once_per_pass_and_never_stop():
    from itertools import islice

    from cmlib.train import endless_batches

    stream = endless_batches(10, 5, torch.Generator().manual_seed(0))
    batches = list(islice(stream, 6))  # three full passes over 10 rows
    for start in (0, 2, 4):
        rows = torch.cat(batches[start : start + 2]).sort().values
        assert torch.equal(rows, torch.arange(10))
    assert not torch.equal(torch.cat(batches[0:2]), torch.cat(batches[2:4]))  # reshuffled
