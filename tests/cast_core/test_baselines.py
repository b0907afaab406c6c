"""Baselines: GRPO, RLSD, RL-ZVP, OPSD."""
import numpy as np
import pytest

from cast_core import CASTConfig
from cast_core.baselines import grpo_advantages, grpo_base, opsd_advantages, rl_zvp_advantages, rlsd_advantages


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
