"""cmlib.validate: TypeError for a wrong type, ValueError for a wrong value, one missing-package
error."""

import numpy as np
import pytest
import torch

from cmlib.validate import (
    MissingPackageError,
    check_choice,
    check_int,
    check_number,
    check_positive_ints,
    check_same_length,
    check_tensor,
    require,
)


def test_check_tensor_types_shapes_and_dtypes():
    x = torch.zeros(2, 3, 4)
    assert check_tensor("x", x, ("B", 3, None)) is x
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got a list"):
        check_tensor("x", [1, 2])
    with pytest.raises(TypeError, match="got an array of shape \\(2,\\)"):
        check_tensor("x", np.zeros(2))
    with pytest.raises(
        ValueError, match="expected x \\(B, 3\\), got a tensor of shape \\(2, 3, 4\\)"
    ):
        check_tensor("x", x, ("B", 3))
    with pytest.raises(ValueError, match="expected x \\(B, 5, 4\\)"):
        check_tensor("x", x, ("B", 5, 4))
    with pytest.raises(TypeError, match="float tensor"):
        check_tensor("ids", torch.zeros(2, dtype=torch.long), floating=True)
    with pytest.raises(TypeError, match="integer tensor"):
        check_tensor("ids", torch.zeros(2), floating=False)
    with pytest.raises(ValueError, match="empty"):
        check_tensor("x", torch.zeros(0, 3), nonempty=True)


def test_check_int_and_number():
    assert check_int("n", np.int64(3)) == 3
    with pytest.raises(TypeError, match="n must be an int, got a float"):
        check_int("n", 3.0)
    with pytest.raises(TypeError, match="int"):
        check_int("n", True)
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        check_int("n", 0)
    with pytest.raises(ValueError, match="in \\[1, 4\\]"):
        check_int("k", 5, 1, 4)
    check_positive_ints(a=1, b=2)
    with pytest.raises(ValueError, match="b must be an int >= 1"):
        check_positive_ints(a=1, b=0)
    assert check_number("lr", 1) == 1.0
    with pytest.raises(ValueError, match="lr must lie in \\(0, inf\\]"):
        check_number("lr", 0.0, low=0, low_open=True)
    with pytest.raises(ValueError, match="nan"):
        check_number("p", float("nan"), 0, 1)
    with pytest.raises(TypeError, match="number"):
        check_number("p", "0.5")


def test_choices_lengths_and_missing_packages():
    check_choice("style", "photo", ("photo", "sketch"))
    with pytest.raises(
        ValueError, match="unknown style 'oil'; valid values are \\('photo', 'sketch'\\)"
    ):
        check_choice("style", "oil", ("photo", "sketch"))
    assert check_same_length(a=[1, 2], b="xy") == 2
    with pytest.raises(ValueError, match="same number of rows"):
        check_same_length(a=[1], b=[1, 2])
    assert require("math", "math").sqrt(4) == 2
    with pytest.raises(MissingPackageError, match="pip install no-such-package") as err:
        require("no_such_module_here", "no-such-package", "the test")
    assert isinstance(err.value, ImportError) and "the test needs" in str(err.value)
