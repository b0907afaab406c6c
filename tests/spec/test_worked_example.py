"""The contract's worked example, computed by hand, against the exact oracle (spec/oracle.py).

Each expected number is written twice: as the contract prints it (6 significant digits)
and as a closed form derived by hand from the definitions (checked to 1e-15).
"""

import math
from fractions import Fraction

import pytest

from _spec_load import load as _load


oracle = _load("oracle")

C_ROW = [0.5, -0.3, 0.0, -0.02]
W_ROW = [0.5, -0.3, 0.0, 0.02]
ONES = [[1, 1, 1, 1]]
E02 = 1 + 0.5 * (math.exp(0.02) - 1)   # W(e^0.02) with λ = 0.5, inside both clip ranges
SQRT3 = math.sqrt(3.0)


def _close(actual, expected, tol):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert abs(a - e) <= tol, (actual, expected)


def test_group_1100_bases_and_rows():
    r, ids = [1.0, 1.0, 0.0, 0.0], [0, 0, 0, 0]
    # μ = 0.5, σ = 0.5 (population): b = ±1.
    assert oracle.base_advantages(r, ids) == [1.0, 1.0, -1.0, -1.0]
    out = oracle.cast_advantages(r, ids, [C_ROW, C_ROW, W_ROW, W_ROW], ONES * 4)
    # correct row: e^0.5 clipped to 1.05 -> 1 + 0.5*0.05; -0.3 down-flips with clip(e^0.3, 1, 1.2) = 1.2
    # -> -(1 + 0.5*0.2); 0 -> 1; -0.02 down-flips with e^0.02.
    correct = [1.025, -1.1, 1.0, -E02]
    wrong = [1.025, -1.1, -1.0, E02]   # 0.5 and 0.02 up-flip, -0.3 keeps the sign with e^0.3 -> 1.2
    for row in out[:2]:
        _close(row, correct, 1e-15)
        _close(row, [1.025, -1.1, 1.0, -1.010101], 5e-7)
    for row in out[2:]:
        _close(row, wrong, 1e-15)
        _close(row, [1.025, -1.1, -1.0, 1.010101], 5e-7)


def test_zero_variance_groups_follow_the_same_rule():
    r, ids = [1.0, 1.0, 0.0, 0.0, 0.0], [1, 1, 2, 2, 2]
    assert oracle.base_advantages(r, ids) == [1.0, 1.0, -1.0, -1.0, -1.0]
    out = oracle.cast_advantages(r, ids, [C_ROW, C_ROW, W_ROW, W_ROW, W_ROW], ONES * 5)
    _close(out[0], [1.025, -1.1, 1.0, -E02], 1e-15)
    _close(out[4], [1.025, -1.1, -1.0, E02], 1e-15)


def test_group_1000():
    r, ids = [1.0, 0.0, 0.0, 0.0], [0, 0, 0, 0]
    # μ = 1/4, σ² = (9/16 + 3/16)/4 = 3/16, σ = √3/4: b = (3/4)/(√3/4) = √3, (−1/4)/(√3/4) = −1/√3.
    b = oracle.base_advantages(r, ids)
    _close(b, [SQRT3, -1 / SQRT3, -1 / SQRT3, -1 / SQRT3], 1e-15)
    _close(b, [1.732051, -0.57735, -0.57735, -0.57735], 5e-6)
    out = oracle.cast_advantages(r, ids, [C_ROW, W_ROW, W_ROW, W_ROW], ONES * 4)
    assert out[0] == [1.2, -1.2, 1.2, -1.2]  # √3·(1.025, −1.1, 1, −1.0101) all exceed adv_clip 1.2
    wrong = [1.025 / SQRT3, -1.1 / SQRT3, -1 / SQRT3, E02 / SQRT3]
    _close(out[1], wrong, 1e-15)
    _close(out[1], [0.591784, -0.635085, -0.57735, 0.583182], 5e-7)


def test_deadband_gap005():
    out = oracle.cast_advantages([1.0, 0.0], [0, 0], [C_ROW, W_ROW], ONES * 2,
                                 {"deadband": (0.95, 1.05)})
    assert out[0] == [1.025, -1.1, 1.0, 1.0]   # e^±0.02 ∈ [0.95, 1.05] count as g = 0
    assert out[1] == [1.025, -1.1, -1.0, -1.0]


def test_decay_step150():
    cfg = {"lam_decay_steps": 300}
    assert oracle.lam_at(cfg, 150) == Fraction(1, 4)
    assert oracle.zv_scale(cfg, 150) == Fraction(1, 2)
    r = [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    ids = [0, 0, 0, 0, 1, 1, 2, 2, 2]
    assert oracle.base_advantages(r, ids, cfg, 150) == [1.0, 1.0, -1.0, -1.0, 0.5, 0.5, -0.5, -0.5, -0.5]
    out = oracle.cast_advantages(r, ids, [C_ROW] * 9, [[1] * 4] * 9, cfg, 150)
    e02 = 1 + 0.25 * (math.exp(0.02) - 1)
    _close(out[0], [1 + 0.25 * 0.05, -(1 + 0.25 * 0.2), 1.0, -e02], 1e-15)
    _close(out[0], [1.0125, -1.05, 1.0, -1.005050], 5e-7)
    _close(out[4], [0.5 * 1.0125, -0.5 * 1.05, 0.5, -0.5 * e02], 1e-15)


def test_both_flips_on_the_exponent_is_abs_g():
    """With both flips on, every token's weight argument is exp(|g|) ≥ 1, whatever the side."""
    lam = 0.5
    for b in (0.7, -0.7):
        for g in (-2.0, -0.3, -0.01, 0.0, 0.01, 0.3, 2.0):
            out = oracle.token_advantages([b], [[g]], [[1]], {"adv_clip": (-5.0, 5.0)})[0][0]
            x = math.exp(abs(g))
            flipped = (b > 0 and g < 0) or (b < 0 and g > 0)
            # sign of the token: b's sign unless flipped; range: the side whose sign it takes
            sign = -math.copysign(1, b) if flipped else math.copysign(1, b)
            lo, hi = ((1.0, 1.05) if sign > 0 else (1.0, 1.2)) if flipped else \
                     ((0.8, 1.05) if b > 0 else (0.95, 1.2))
            expect = sign * abs(b) * max(0.0, 1 + lam * (min(max(x, lo), hi) - 1))
            assert out == pytest.approx(expect, abs=1e-15), (b, g)


def test_masked_and_zero_base_rows_are_exactly_zero():
    nan, inf = float("nan"), float("inf")
    out = oracle.cast_advantages([1.0, 0.5, 0.0], [0, 0, 0],
                                 [[0.3, nan, inf], [inf, -inf, nan], [-inf, 0.1, nan]],
                                 [[1, 0, 0], [1, 1, 0], [1, 1, 0]])
    assert out[0][1:] == [0.0, 0.0]
    assert out[1] == [0.0, 0.0, 0.0]          # b = 0 exactly: mean of [1, 0.5, 0] is 0.5
    assert out[2][2] == 0.0 and math.isfinite(out[2][0])


@pytest.mark.parametrize("bad, match", [
    (dict(rewards=[float("nan"), 0.0]), "rewards"),
    (dict(mask=[[1, float("nan")], [1, 1]]), "mask"),
    (dict(gaps=[[0.1, float("nan")], [0.0, 0.0]]), r"gaps: NaN inside the mask at index \(0, 1\)"),
    (dict(group_ids=[0, 0.5]), "group_ids"),
    (dict(rewards=[], group_ids=[], gaps=[], mask=[]), "empty batch"),
])
def test_oracle_rejects_what_the_spec_rejects(bad, match):
    args = dict(rewards=[1.0, 0.0], group_ids=[0, 0], gaps=[[0.1, 0.2], [0.0, 0.0]], mask=[[1, 1], [1, 1]])
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        oracle.cast_advantages(args["rewards"], args["group_ids"], args["gaps"], args["mask"])


def test_policy_loss_by_hand():
    # One token, A = 1, ρ = e^0.1 inside [0.8, 1.28]: ℓ = −ρ, dℓ/dlogp = −ρ.
    rho = math.exp(0.1)
    assert oracle.policy_loss([[0.1]], [[0.0]], [[1.0]], [[1]]) == pytest.approx(-rho, abs=1e-15)
    assert oracle.policy_loss_grad([[0.1]], [[0.0]], [[1.0]], [[1]])[0][0] == pytest.approx(-rho, abs=1e-15)
    # ρ = e^0.4 > 1.28 with A > 0: the clipped branch is active, ℓ = −1.28, gradient exactly 0.
    assert oracle.policy_loss([[0.4]], [[0.0]], [[1.0]], [[1]]) == pytest.approx(-1.28, abs=1e-15)
    assert oracle.policy_loss_grad([[0.4]], [[0.0]], [[1.0]], [[1]]) == [[0.0]]
    # k3 with ref − logp = d: beta·(e^d − d − 1); gradient beta·(1 − e^d).
    d = -0.5
    assert oracle.policy_loss([[0.0]], [[0.0]], [[0.0]], [[1]], ref_logp=[[d]], beta=0.1) == \
        pytest.approx(0.1 * (math.exp(d) - d - 1), abs=1e-15)
    assert oracle.policy_loss_grad([[0.0]], [[0.0]], [[0.0]], [[1]], ref_logp=[[d]], beta=0.1)[0][0] == \
        pytest.approx(0.1 * (1 - math.exp(d)), abs=1e-15)
    # Empty mask: loss 0.0 for every aggregation.
    for agg in oracle.AGGREGATIONS:
        assert oracle.policy_loss([[0.1]], [[0.0]], [[1.0]], [[0]], agg=agg) == 0.0
