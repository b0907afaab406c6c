"""The shared comparator must fail loudly: an agreement check that cannot fail proves nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _torch_compare import assert_agree, tolerance


def test_agreeing_values_pass():
    e = np.array([[1.0, -2.0, 0.0], [math.inf, -math.inf, 0.5]])
    assert_agree(torch.tensor(e), e, dtype=torch.float64, what="same")
    assert_agree(torch.tensor(e) + 5e-13, e, dtype=torch.float64, what="within 1e-12")
    assert_agree(3.0, np.float64(3.0), dtype=torch.float64, what="scalars")


def test_raises_on_disagreement_with_worst_index_and_values():
    e = np.zeros((3, 4))
    a = e.copy()
    a[1, 2] = 1e-3
    a[2, 3] = 1e-9
    with pytest.raises(AssertionError) as info:
        assert_agree(torch.tensor(a), e, dtype=torch.float64, what="adv")
    msg = str(info.value)
    assert "adv" in msg and "index (1, 2)" in msg and "0.001" in msg and "2 of 12" in msg


def test_float64_tolerance_is_1e_12():
    e = np.array([1.0])
    assert_agree(e + 1.5e-12, e, dtype=torch.float64, what="ok")          # atol + rtol·1 = 2e-12
    with pytest.raises(AssertionError):
        assert_agree(e + 3e-12, e, dtype=torch.float64, what="too far")


def test_float32_tolerance_scales_with_eps_and_magnitude():
    eps = torch.finfo(torch.float32).eps
    atol, rtol = tolerance(torch.float32, 10.0)
    assert atol == pytest.approx(64 * eps * 10.0) and rtol == pytest.approx(64 * eps)
    e = np.array([0.0, 10.0])
    # A shared-statistic error of 30·eps·scale on a zero-valued token is allowed ...
    assert_agree(np.array([30 * eps * 10.0, 10.0]), e, dtype=torch.float32, what="ok")
    # ... a bug-sized one (1e-4·scale) is not, and neither is a float64-sized check.
    with pytest.raises(AssertionError):
        assert_agree(np.array([1e-3, 10.0]), e, dtype=torch.float32, what="bug")
    with pytest.raises(AssertionError):
        assert_agree(np.array([30 * eps * 10.0, 10.0]), e, dtype=torch.float64, what="f64")
    assert tolerance(torch.bfloat16, 1.0) == tolerance(torch.float32, 1.0)  # computed in float32


def test_nan_and_inf_must_match_exactly():
    e = np.array([math.nan, math.inf, 1.0])
    assert_agree(np.array([math.nan, math.inf, 1.0]), e, dtype=torch.float64, what="same specials")
    for a in ([1.0, math.inf, 1.0], [math.nan, -math.inf, 1.0], [math.nan, 1e308, 1.0],
              [math.nan, math.inf, math.nan]):
        with pytest.raises(AssertionError):
            assert_agree(np.array(a), e, dtype=torch.float64, what="specials")


def test_shape_mismatch_and_exact_zero():
    with pytest.raises(AssertionError, match="shape"):
        assert_agree(np.zeros((2, 3)), np.zeros((3, 2)), dtype=torch.float64, what="shape")
    outside = np.array([[False, True]])
    with pytest.raises(AssertionError, match="exactly 0"):
        assert_agree(np.array([[1.0, 1e-300]]), np.array([[1.0, 0.0]]), dtype=torch.float64,
                     what="masked", exact_zero=outside)
    assert_agree(np.array([[1.0, -0.0]]), np.array([[1.0, 0.0]]), dtype=torch.float64,
                 what="-0.0 is 0", exact_zero=outside)


def test_dicts_compare_key_by_key_and_keys_must_match():
    assert_agree({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 2.0}, dtype=torch.float64, what="d")
    with pytest.raises(AssertionError, match=r"\['b'\]"):
        assert_agree({"a": 1.0, "b": 2.5}, {"a": 1.0, "b": 2.0}, dtype=torch.float64, what="d")
    with pytest.raises(AssertionError, match="keys differ"):
        assert_agree({"b": 2.0, "a": 1.0}, {"a": 1.0, "b": 2.0}, dtype=torch.float64, what="d")
    with pytest.raises(AssertionError, match="dict"):
        assert_agree(1.0, {"a": 1.0}, dtype=torch.float64, what="d")
