"""cast_core.diagnostics: stable keys, hand-checked values."""
import numpy as np

from cast_core import CASTConfig, cast_advantages, cast_diagnostics
from cast_core.diagnostics import DIAGNOSTIC_KEYS


def test_keys_are_stable_and_values_floats():
    rng = np.random.default_rng(0)
    d = cast_diagnostics(rng.integers(0, 2, 8).astype(float), np.repeat([0, 1], 4), rng.normal(size=(8, 5)),
                         rng.random((8, 5)) > 0.2)
    assert tuple(d) == DIAGNOSTIC_KEYS
    assert all(isinstance(v, float) and np.isfinite(v) for v in d.values())


def test_hand_computed_batch():
    # Groups: 0 mixed [1, 0]; 1 all correct [1, 1]; 2 all wrong [0].
    r = [1.0, 0.0, 1.0, 1.0, 0.0]
    gid = [0, 0, 1, 1, 2]
    g = np.array([[0.5, -0.5, 9.0],      # correct, b > 0: one down-flip of 2 tokens
                  [0.5, -0.5, 0.0],      # wrong,   b < 0: one up-flip of 3 tokens
                  [-0.1, -0.1, -0.1],    # correct, all-correct: 3 down-flips
                  [0.2, 0.2, 0.2],       # correct: no flip
                  [np.inf, -1.0, 0.0]])  # wrong, all-wrong: one up-flip (inf)
    m = np.array([[1, 1, 0], [1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1]], bool)
    d = cast_diagnostics(r, gid, g, m)
    assert d["frac_all_correct"] == d["frac_all_wrong"] == d["frac_mixed"] == 1 / 3
    assert d["flip_rate_correct"] == 4 / 8
    assert d["flip_rate_wrong"] == 2 / 6
    assert d["teacher_pos_frac_correct"] == 4 / 8 and d["teacher_neg_frac_correct"] == 4 / 8
    assert d["teacher_pos_frac_wrong"] == 2 / 6 and d["teacher_neg_frac_wrong"] == 2 / 6
    np.testing.assert_allclose(d["gap_mean_correct"], (0.5 - 0.5 - 0.3 + 0.6) / 8)
    np.testing.assert_allclose(d["gap_mean_wrong"], (0.5 - 0.5 + 50 - 1) / 6)   # inf clamped to 50
    adv = cast_advantages(r, gid, g, m)
    c = np.array(r)[:, None] > 0.5
    disagree = ((adv < 0) & c & m) | ((adv > 0) & ~c & m)
    assert d["sign_disagree_frac"] == disagree.sum() / m.sum() == 6 / 14
    assert d["lam"] == 0.5 and d["zv_scale"] == 1.0


def test_clip_fraction_counts_clipped_tokens():
    g = np.full((4, 2), 0.5)
    d = cast_diagnostics([1.0, 0.0, 0.0, 0.0], [0, 0, 0, 0], g, np.ones((4, 2), bool))
    assert d["adv_clip_frac"] == 2 / 8        # the correct row's b = 1.73 * 1.025 is clipped at 1.2
    wide = cast_diagnostics([1.0, 0.0, 0.0, 0.0], [0, 0, 0, 0], g, np.ones((4, 2), bool), CASTConfig(adv_clip=(-5, 5)))
    assert wide["adv_clip_frac"] == 0.0
