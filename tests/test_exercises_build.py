"""Build exercises 1.2 (the convolution chapter 01's small CNN trains on), 2.6 (the LSTM step
chapter 02's step-by-step LSTM trains on), 3.8 (the low-rank
bilinear fusion chapter 03 trains a VQA model with) and 6.10 (the Procrustes solver chapter 06
part 2 solves its rotations with): the notebooks' solutions pass, each listed mistake fails,
and the chapters use the reader's piece."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import chapter_solution

from cmlib.exercises import check, get, use_if_passed
from cmlib.exercises.ch03 import BILINEAR_MISTAKES
from cmlib.fusion import low_rank_bilinear

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"


@pytest.fixture(autouse=True)
def _no_raising(monkeypatch):
    monkeypatch.delenv("CMLIB_CHECKS_RAISE", raising=False)


def test_the_bilinear_notebook_solution_passes():
    mine = chapter_solution("03_fusion", "def my_low_rank_bilinear(", "3.8", "my_low_rank_bilinear")
    assert check("3.8", mine, quiet=True)


@pytest.mark.parametrize("mistake", sorted(BILINEAR_MISTAKES))
def test_each_bilinear_mistake_fails(mistake):
    assert not check("3.8", BILINEAR_MISTAKES[mistake], quiet=True)


def test_the_bilinear_mistakes_are_the_registered_wrong_answers():
    assert tuple(get("3.8").wrong_answers) == tuple(BILINEAR_MISTAKES.values())


def test_a_detached_factor_fails_on_its_gradient_alone(capsys):
    detached = BILINEAR_MISTAKES["a detached language factor"]
    assert not check("3.8", detached)
    assert "gradient with respect to language" in capsys.readouterr().out


def test_the_check_leaves_torchs_random_state_alone():
    # the inputs build nn.Linear layers: a check between two trainings must not move them
    before = torch.random.get_rng_state()
    check("3.8", low_rank_bilinear, quiet=True)
    assert torch.equal(before, torch.random.get_rng_state())


def test_an_unsolved_bilinear_falls_back_to_cmlibs(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise 3.8")

    rule = use_if_passed("3.8", stub, low_rank_bilinear, "this VQA model fuses with")
    assert rule is low_rank_bilinear
    assert "cmlib's low_rank_bilinear" in capsys.readouterr().out


def test_the_procrustes_notebook_solution_passes_with_its_gradients():
    assert get("6.10").gradients
    mine = chapter_solution("06_alignment_spaces", "def procrustes_map(", "6.10", "procrustes_map")
    assert check("6.10", mine, quiet=True)


@pytest.mark.parametrize("index", range(4))
def test_each_procrustes_mistake_fails(index):
    assert not check("6.10", get("6.10").wrong_answers[index], quiet=True)


def test_the_chapters_use_the_readers_piece():
    """The chapters solve with what use_if_passed returns, not with cmlib's function directly."""
    alignment_source = (CHAPTERS / "06_alignment_spaces.py").read_text()
    assert "alignment.procrustes(" not in alignment_source
    assert alignment_source.count("rotation_from_pairs(") >= 4  # defined, then three uses
    fusion_source = (CHAPTERS / "03_fusion.py").read_text()
    assert 'train_vqa("bilinear", fusion_class=YourBilinearFusion)' in fusion_source


def test_the_convolution_notebook_solution_passes_with_its_gradients():
    assert get("1.2").gradients
    mine = chapter_solution("01_visual_features", "def conv2d_unfold(", "1.2", "conv2d_unfold")
    assert check("1.2", mine, quiet=True)


@pytest.mark.parametrize("index", range(4))
def test_each_convolution_mistake_fails(index):
    assert not check("1.2", get("1.2").wrong_answers[index], quiet=True)


def test_a_detached_weight_fails_on_its_gradient(capsys):
    from cmlib.exercises.ch01 import _detached_weight

    assert not check("1.2", _detached_weight)
    assert "gradient with respect to weight" in capsys.readouterr().out


def test_the_cnn_trains_on_the_readers_convolution():
    source = (CHAPTERS / "01_visual_features.py").read_text()
    assert "with_convolution(CNNClassifier(" in source and "conv_fn)" in source


def test_the_bilinear_check_runs_on_another_device():
    """On a GPU the layers handed to the answer go there too (the meta device stands in)."""
    meta = torch.device("meta")
    assert check("3.8", low_rank_bilinear, quiet=True, device=meta)
    assert use_if_passed("3.8", low_rank_bilinear, low_rank_bilinear, "x", device=meta)


def test_the_lstm_step_notebook_solution_passes_with_its_gradients():
    from cmlib.exercises.ch02 import LSTM_STEP_MISTAKES

    assert get("2.6").gradients
    mine = chapter_solution("02_language_features", "def my_lstm_step(", "2.6", "my_lstm_step")
    assert check("2.6", mine, quiet=True)
    for name, mistake in LSTM_STEP_MISTAKES.items():
        assert not check("2.6", mistake, quiet=True), name
    assert tuple(get("2.6").wrong_answers) == tuple(LSTM_STEP_MISTAKES.values())


def test_detached_lstm_states_fail_on_their_gradient(capsys):
    from cmlib.exercises.ch02 import LSTM_STEP_MISTAKES

    assert not check("2.6", LSTM_STEP_MISTAKES["the previous states detached"])
    assert "its value is right but its gradient" in capsys.readouterr().out


def test_the_lstm_trains_on_the_readers_step():
    source = (CHAPTERS / "02_language_features.py").read_text()
    assert "StepLSTMEncoder(len(shapes_words), embed_dim=32, hidden_dim=64, step_fn=step)" in source


def test_the_late_fusion_notebook_solution_passes_and_the_ensemble_uses_it():
    mine = chapter_solution(
        "03_fusion_models", "def product_of_experts(", "3.4", "product_of_experts"
    )
    assert get("3.4").gradients
    assert check("3.4", mine, quiet=True)
    source = (CHAPTERS / "03_fusion_models.py").read_text()
    assert "fused = combine(*member_logits, ensemble.log_prior)" in source
