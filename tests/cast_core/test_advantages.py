"""cast_core advantages: the contract's worked example by hand, every edge case, every error."""
import numpy as np
import pytest

from cast_core import CASTConfig, base_advantages, cast_advantages, token_advantages
from cast_core.baselines import grpo_advantages

GAPS_C = [0.5, -0.3, 0.0, -0.02]
GAPS_W = [0.5, -0.3, 0.0, 0.02]


def _rows(rewards, gaps_rows, config=None, step=0, group_ids=None):
    g = np.array(gaps_rows, dtype=float)
    gid = np.zeros(len(rewards), int) if group_ids is None else group_ids
    return cast_advantages(rewards, gid, g, np.ones_like(g, bool), config, step)


def test_worked_example_mixed_group():
    # Group [1, 1, 0, 0]: mu = 0.5, sigma = 0.5, b = [+1, +1, -1, -1].
    out = _rows([1, 1, 0, 0], [GAPS_C, GAPS_C, GAPS_W, GAPS_W])
    # 0.5: clip(e^0.5, 0.8, 1.05) = 1.05 -> 1 + 0.5*0.05; -0.3: down-flip, clip(e^0.3, 1, 1.2) = 1.2 -> -(1 + 0.5*0.2)
    c_row = [1.025, -1.1, 1.0, -(1 + 0.5 * (np.exp(0.02) - 1))]
    w_row = [1.025, -1.1, -1.0, 1 + 0.5 * (np.exp(0.02) - 1)]
    np.testing.assert_allclose(out, [c_row, c_row, w_row, w_row], rtol=0, atol=1e-15)
    np.testing.assert_allclose(c_row[3], -1.010101, atol=1e-6)


def test_worked_example_zero_variance_groups():
    b = base_advantages([1, 1, 0, 0, 0], [7, 7, 3, 3, 3])
    np.testing.assert_array_equal(b, [1.0, 1.0, -1.0, -1.0, -1.0])


def test_worked_example_one_correct_of_four():
    out = _rows([1, 0, 0, 0], [GAPS_C, GAPS_W, GAPS_W, GAPS_W])
    np.testing.assert_allclose(out[0], [1.2, -1.2, 1.2, -1.2], atol=1e-15)  # adv_clip binds
    np.testing.assert_allclose(out[1], [0.591784, -0.635085, -0.57735, 0.583182], atol=5e-7)


def test_worked_example_deadband_and_decay():
    db = _rows([1, 1, 0, 0], [GAPS_C, GAPS_C, GAPS_W, GAPS_W], CASTConfig(deadband=(0.95, 1.05)))
    np.testing.assert_allclose(db[0], [1.025, -1.1, 1.0, 1.0], atol=1e-15)
    np.testing.assert_allclose(db[2], [1.025, -1.1, -1.0, -1.0], atol=1e-15)
    cfg = CASTConfig(lam_decay_steps=300)
    np.testing.assert_allclose(base_advantages([1, 1, 0, 0, 0], [0, 0, 1, 1, 1], cfg, 150), [0.5, 0.5, -0.5, -0.5, -0.5])
    dec = _rows([1, 1, 0, 0], [GAPS_C] * 4, cfg, step=150)
    np.testing.assert_allclose(dec[0], [1.0125, -1.05, 1.0, -1.005050], atol=1e-6)


def test_masked_positions_are_zero_and_never_read():
    g = np.array([[0.5, np.nan, np.inf], [-0.3, -np.inf, np.nan]])
    m = np.array([[1, 0, 0], [1, 0, 0]])
    out = cast_advantages([1.0, 0.0], [0, 0], g, m)
    assert np.all(out[:, 1:] == 0) and np.isfinite(out).all()
    assert out[0, 0] > 0 and out[1, 0] < 0


def test_zero_base_rows_are_exactly_zero():
    # rewards [1, 0.5, 0], threshold 0.5: mixed group, mean 0.5 -> the middle row has b = 0.
    g = np.array([[0.2, -0.2], [np.inf, -np.inf], [0.3, 0.1]])
    out = cast_advantages([1.0, 0.5, 0.0], [0, 0, 0], g, np.ones((3, 2), bool))
    assert np.all(out[1] == 0.0)


def test_infinite_gaps_are_legal_and_saturate():
    g = np.array([[np.inf, -np.inf], [np.inf, -np.inf]])
    out = cast_advantages([1.0, 0.0], [0, 0], g, np.ones((2, 2), bool))
    # b = [+1, -1]. Positive row: +inf -> clip(inf, 0.8, 1.05) = 1.05; -inf down-flips at hw = 1.2.
    # Negative row: +inf up-flips at hc = 1.05; -inf -> e^{+inf} clipped at hw = 1.2.
    np.testing.assert_allclose(out, [[1.025, -1.1], [1.025, -1.1]], atol=1e-15)


def test_flags_off_keep_the_verifier_sign():
    g = np.array([[-0.3, 0.3], [0.3, -0.3]])
    cfg = CASTConfig(flip_correct=False, flip_wrong=False)
    out = cast_advantages([1.0, 0.0], [0, 0], g, np.ones((2, 2), bool), cfg)
    assert np.all(out[0] > 0) and np.all(out[1] < 0)
    # Positive side, g = -0.3: W(e^-0.3 = 0.741 -> clip 0.8) = 1 + 0.5 * (0.8 - 1) = 0.9
    np.testing.assert_allclose(out[0, 0], 0.9)


def test_lam_zero_does_not_turn_flips_off():
    cfg = CASTConfig(lam=0.0)
    g = np.array([[-0.3, 0.3], [0.3, -0.3]])
    out = cast_advantages([1.0, 0.0], [0, 0], g, np.ones((2, 2), bool), cfg)
    np.testing.assert_array_equal(out, [[-1.0, 1.0], [1.0, -1.0]])
    # ... and with lam = 0 the zero-variance bases vanish (s = 0).
    np.testing.assert_array_equal(base_advantages([1.0, 1.0], [0, 0], cfg), [0.0, 0.0])


def test_scales_and_ddof():
    r = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    gid = np.array([0, 0, 0, 5, 5, 5])
    grp = base_advantages(r, gid)
    np.testing.assert_allclose(grp[:3], (r[:3] - 1 / 3) / np.std(r[:3]))
    grp1 = base_advantages(r, gid, CASTConfig(std_ddof=1))
    np.testing.assert_allclose(grp1[:3], (r[:3] - 1 / 3) / np.std(r[:3], ddof=1))
    bat = base_advantages(r, gid, CASTConfig(scale="batch"))
    np.testing.assert_allclose(bat[:3], (r[:3] - 1 / 3) / np.std(r))
    none = base_advantages(r, gid, CASTConfig(scale="none"))
    np.testing.assert_allclose(none[3:], r[3:] - 2 / 3)


def test_one_member_and_noncontiguous_groups():
    r = [1.0, 0.0, 1.0, 0.0, 0.0]
    gid = [4, -2, 9, 4, -2]          # group 4 mixed, -2 all wrong, 9 a one-member all-correct
    np.testing.assert_allclose(base_advantages(r, gid), [1.0, -1.0, 1.0, -1.0, -1.0])


def test_t_zero_returns_empty_rows():
    out = cast_advantages([1.0, 0.0], [0, 0], np.zeros((2, 0)), np.zeros((2, 0), bool))
    assert out.shape == (2, 0)


def test_identity_with_grpo_on_mixed_groups():
    # flips off, lam = 0 and a wide adv_clip: CAST equals GRPO on mixed groups.
    rng = np.random.default_rng(1)
    r = np.array([1, 0, 0, 1, 1, 0, 1, 0], float)
    gid = np.repeat([0, 1], 4)
    g = rng.normal(size=(8, 6))
    m = rng.random((8, 6)) > 0.3
    cfg = CASTConfig(flip_correct=False, flip_wrong=False, lam=0.0, adv_clip=(-100, 100))
    np.testing.assert_allclose(cast_advantages(r, gid, g, m, cfg), grpo_advantages(r, gid, m, cfg), rtol=0, atol=1e-15)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: cast_advantages([1.0, np.nan], [0, 0], np.zeros((2, 2)), np.ones((2, 2))), ValueError, r"rewards.*index 1"),
    (lambda: cast_advantages([1.0, np.inf], [0, 0], np.zeros((2, 2)), np.ones((2, 2))), ValueError, r"rewards.*index 1"),
    (lambda: cast_advantages([1.0, 0.0], [0, 0], np.array([[0, 0], [0, np.nan]]), np.ones((2, 2))), ValueError, r"gaps: NaN inside the mask at index \(1, 1\)"),
    (lambda: cast_advantages([1.0, 0.0], [0, 0], np.zeros((3, 2)), np.ones((3, 2))), ValueError, "gaps"),
    (lambda: cast_advantages([1.0, 0.0], [0, 0], np.zeros((2, 2)), np.ones((2, 3))), ValueError, "mask"),
    (lambda: cast_advantages([1.0, 0.0], [0, 0, 1], np.zeros((2, 2)), np.ones((2, 2))), ValueError, "group_ids"),
    (lambda: cast_advantages([1.0, 0.0], [0, 0.5], np.zeros((2, 2)), np.ones((2, 2))), ValueError, r"group_ids.*index 1"),
    (lambda: cast_advantages([1.0, 0.0], ["a", "b"], np.zeros((2, 2)), np.ones((2, 2))), TypeError, "group_ids"),
    (lambda: cast_advantages([1.0, 0.0], [0, 0], np.zeros((2, 2)), np.full((2, 2), 2)), ValueError, r"mask.*0/1"),
    (lambda: cast_advantages([], [], np.zeros((0, 2)), np.ones((0, 2))), ValueError, "empty"),
    (lambda: cast_advantages([1.0, 0.0], [0, 0], np.zeros(2), np.ones(2)), ValueError, r"gaps.*\[N, T\]"),
    (lambda: cast_advantages([1.0, 0.0], [0, 0], np.zeros((2, 2)), np.ones((2, 2)), step=-1), ValueError, "step"),
    (lambda: cast_advantages([1.0, 0.0], [0, 0], np.zeros((2, 2)), np.ones((2, 2)), config={"lam": 1}), TypeError, "config"),
    (lambda: token_advantages([1.0, np.nan], np.zeros((2, 2)), np.ones((2, 2))), ValueError, r"base.*index 1"),
])
def test_bad_input_names_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_nan_padding_is_not_an_error_but_nan_in_mask_is():
    g = np.array([[0.1, np.nan]])
    assert cast_advantages([1.0], [0], g, [[1, 0]]).shape == (1, 2)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        cast_advantages([1.0], [0], g, [[1, 1]])
