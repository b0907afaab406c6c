"""Baselines: GRPO, RLSD, RL-ZVP, OPSD."""
import numpy as np
import pytest

from cast_core import CASTConfig
from cast_core.baselines import (check_rlsd_params, grpo_advantages, grpo_base, opsd_advantages, rl_zvp_advantages,
                                 rlsd_advantages, rlsd_lam_at)
from cast_core.config import lam_at


def test_grpo_zero_for_flat_groups_exactly():
    r = [0.1, 0.1, 0.1, 1.0, 0.0]
    b = grpo_base(r, [0, 0, 0, 1, 1])
    assert np.all(b[:3] == 0.0)
    np.testing.assert_allclose(b[3:], [1.0, -1.0])


def test_grpo_broadcast_and_mask():
    m = np.array([[1, 1, 0], [1, 0, 0]], bool)
    out = grpo_advantages([1.0, 0.0], [3, 3], m)
    np.testing.assert_array_equal(out, [[1.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])


def test_grpo_sample_std_option():
    out = grpo_base([1.0, 0.0], [0, 0], CASTConfig(std_ddof=1))
    np.testing.assert_allclose(out, [0.5 / np.sqrt(0.5), -0.5 / np.sqrt(0.5)])


def test_rlsd_rule():
    g = np.array([[0.1, -0.5, np.inf], [0.1, -0.5, -np.inf]])
    out = rlsd_advantages([1.0, 0.0], [0, 0], g, np.ones((2, 3), bool), step=0)
    lam, e = 0.5, 0.2
    a = np.array([1.0, -1.0])
    w = (1 - lam) + lam * np.clip(np.exp(np.sign(a)[:, None] * g), 1 - e, 1 + e)
    np.testing.assert_allclose(out, a[:, None] * w)
    # lambda decays linearly to 0 over 50 steps: then RLSD is GRPO.
    end = rlsd_advantages([1.0, 0.0], [0, 0], g, np.ones((2, 3), bool), step=50)
    np.testing.assert_allclose(end, [[1, 1, 1], [-1, -1, -1]])


def test_rl_zvp_entropy_shaping():
    h = np.array([[0.2, 0.5, 9.0], [0.2, 0.5, 9.0], [0.1, 0.3, 0.0], [1.0, 2.0, 3.0]])
    m = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 1], [1, 1, 1]], bool)
    out = rl_zvp_advantages([1.0, 1.0, 0.0, 0.0], [0, 0, 1, 1], h, m, alpha=0.1)
    np.testing.assert_allclose(out[0], [0.02, 0.05, 0.0])                 # all-correct: alpha * H
    np.testing.assert_allclose(out[3], [-0.2, -0.1, 0.0])                 # all-wrong: -alpha * (max H - H)
    np.testing.assert_allclose(out[2], [-0.02, 0.0, -0.03])
    mixed = rl_zvp_advantages([1.0, 0.0], [0, 0], h[:2], m[:2])
    np.testing.assert_allclose(mixed, grpo_advantages([1.0, 0.0], [0, 0], m[:2]))
    with pytest.raises(ValueError, match="entropies"):
        rl_zvp_advantages([1.0], [0], [[-1.0]], [[1]])


def test_opsd_is_the_gap():
    g = np.array([[0.3, np.nan], [-0.2, 0.1]])
    m = np.array([[1, 0], [1, 1]], bool)
    np.testing.assert_array_equal(opsd_advantages(g, m), [[0.3, 0.0], [-0.2, 0.1]])
    with pytest.raises(ValueError, match=r"gaps.*\(0, 1\)"):
        opsd_advantages([[0.0, np.inf]], [[1, 1]])


@pytest.mark.parametrize("lam, decay, eps_w, match", [
    (-0.1, 50, 0.2, r"^lam: must be a finite number >= 0"),
    (float("nan"), 50, 0.2, r"^lam: must be a finite number"),
    (True, 50, 0.2, r"^lam: "),
    (0.5, -1, 0.2, r"^lam_decay_steps: must be an int >= 0"),
    (0.5, 2.0, 0.2, r"^lam_decay_steps: must be an int"),
    (0.5, 50, 1.5, r"^eps_w: must be <= 1"),
    (0.5, 50, -0.2, r"^eps_w: must be a finite number >= 0"),
])
def test_rlsd_scalar_check_names_the_parameter(lam, decay, eps_w, match):
    with pytest.raises(ValueError, match=match):
        check_rlsd_params(lam, decay, eps_w)
    with pytest.raises(ValueError, match=match):   # the estimator runs the same check
        rlsd_advantages([1.0, 0.0], [0, 0], [[0.0], [0.0]], [[1], [1]], lam=lam, lam_decay_steps=decay, eps_w=eps_w)
    prefixed = ("X.rlsd_lam", "X.rlsd_lam_decay_steps", "X.rlsd_eps_w")
    with pytest.raises(ValueError, match=r"^X\.rlsd_"):
        check_rlsd_params(lam, decay, eps_w, names=prefixed)


def test_rlsd_schedule_is_the_cast_schedule():
    assert check_rlsd_params(1, 3, 0) == (1.0, 3, 0.0)
    for d in (0, 1, 3, 50):
        cfg = CASTConfig(lam=0.7, lam_decay_steps=d)
        for step in (0, 1, 2, 3, 49, 50, 51, 10_000):
            assert rlsd_lam_at(0.7, d, step) == lam_at(cfg, step)
    assert rlsd_lam_at(0.5, 50, 25) == 0.25 and rlsd_lam_at(0.5, 0, 10_000) == 0.5
    # step 25 of 50: the weights sit halfway between GRPO's 1 and the full clip(exp(±g))
    g = np.array([[1.0], [1.0]])
    out = rlsd_advantages([1.0, 0.0], [0, 0], g, [[1], [1]], step=25)
    np.testing.assert_allclose(out[:, 0], [1.0 * (0.75 + 0.25 * 1.2), -1.0 * (0.75 + 0.25 * 0.8)])
