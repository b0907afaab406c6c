"""Hypothesis properties of the CAST estimator (cast_core)."""
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from cast_core import CASTConfig, base_advantages, cast_advantages
from cast_core.baselines import grpo_advantages
from cast_core.config import zv_scale_at

SETTINGS = settings(max_examples=120, deadline=None)


@st.composite
def batches(draw, max_n=10, max_t=8, nonbinary=True):
    n = draw(st.integers(1, max_n))
    t = draw(st.integers(1, max_t))
    values = [0.0, 1.0] + ([0.25, 0.5, 0.75] if nonbinary else [])
    rewards = np.array(draw(st.lists(st.sampled_from(values), min_size=n, max_size=n)))
    group_ids = np.array(draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n)))
    gap = st.one_of(st.floats(-5, 5, allow_nan=False), st.sampled_from([np.inf, -np.inf, 0.0]))
    gaps = draw(hnp.arrays(np.float64, (n, t), elements=gap))
    mask = draw(hnp.arrays(np.bool_, (n, t)))
    return rewards, group_ids, gaps, mask


@st.composite
def configs(draw):
    # Lower weight bounds above 1 are legal (and exercise the flipped-range floor max(1, lo)).
    lc = draw(st.floats(0.0, 1.5)); hc = draw(st.floats(lc, 2.0))
    lw = draw(st.floats(0.0, 1.5)); hw = draw(st.floats(lw, 2.0))
    db = draw(st.sampled_from([(1.0, 1.0), (0.95, 1.05), (0.5, 2.0)]))
    return CASTConfig(
        scale=draw(st.sampled_from(["group", "batch", "none"])), std_ddof=draw(st.sampled_from([0, 1])),
        lam=draw(st.floats(0.0, 2.0)), lam_decay_steps=draw(st.integers(0, 20)),
        zv_pos_base=draw(st.floats(0.0, 2.0)), zv_neg_base=draw(st.floats(0.0, 2.0)),
        zv_scale_with_lam=draw(st.booleans()), w_clip_correct=(lc, hc), w_clip_wrong=(lw, hw),
        adv_clip=(-draw(st.floats(0.0, 3.0)), draw(st.floats(0.0, 3.0))),
        flip_correct=draw(st.booleans()), flip_wrong=draw(st.booleans()), deadband=db)


@SETTINGS
@given(batches(), configs(), st.integers(0, 30), st.randoms(use_true_random=False))
def test_row_permutation_permutes_output(batch, config, step, rnd):
    r, gid, g, m = batch
    perm = np.array(rnd.sample(range(len(r)), len(r)))
    out = cast_advantages(r, gid, g, m, config, step)
    out_p = cast_advantages(r[perm], gid[perm], g[perm], m[perm], config, step)
    np.testing.assert_allclose(out_p, out[perm], rtol=1e-12, atol=1e-12)


@SETTINGS
@given(batches(), configs(), st.integers(0, 30))
def test_relabelling_groups_changes_nothing(batch, config, step):
    r, gid, g, m = batch
    relabelled = gid * 1000 - 77          # injective, order-changing for negatives
    np.testing.assert_allclose(cast_advantages(r, relabelled, g, m, config, step),
                               cast_advantages(r, gid, g, m, config, step), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(batches(), configs(), st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -7.0]))
def test_masked_positions_zero_whatever_padding_holds(batch, config, pad):
    r, gid, g, m = batch
    out = cast_advantages(r, gid, g, m, config)
    g2 = np.where(m, g, pad)
    out2 = cast_advantages(r, gid, g2, m, config)
    assert np.all(out2[~m] == 0.0)
    np.testing.assert_array_equal(out, out2)


@SETTINGS
@given(batches(), configs(), st.integers(0, 30))
def test_outputs_within_adv_clip_and_finite(batch, config, step):
    out = cast_advantages(*batch, config, step)
    lo, hi = config.adv_clip
    assert np.isfinite(out).all()
    assert out.min(initial=0) >= lo and out.max(initial=0) <= hi


@SETTINGS
@given(batches(), configs(), st.integers(0, 30))
def test_sign_rules_per_side(batch, config, step):
    r, gid, g, m = batch
    b = base_advantages(r, gid, config, step)
    out = cast_advantages(r, gid, g, m, config, step)
    lo_db, hi_db = config.deadband
    with np.errstate(over="ignore"):
        e = np.exp(g)
    g_eff = np.where((lo_db < hi_db) & (e >= lo_db) & (e <= hi_db), 0.0, g)
    pos, neg = (b > 0)[:, None] & m, (b < 0)[:, None] & m
    # Tokens that keep the side's sign: never the opposite sign (W >= 0 may make them 0).
    keep_pos = pos & ~(config.flip_correct & (g_eff < 0))
    keep_neg = neg & ~(config.flip_wrong & (g_eff > 0))
    assert np.all(out[keep_pos] >= 0) and np.all(out[keep_neg] <= 0)
    # Flipped tokens take the other sign; their ratio is floored at 1 (so W >= 1 and they are
    # non-zero) unless the other side's upper bound is below 1, or a clip bound removes them.
    down = pos & config.flip_correct & (g_eff < 0)
    up = neg & config.flip_wrong & (g_eff > 0)
    assert np.all(out[down] <= 0) and np.all(out[up] >= 0)
    if config.adv_clip[0] < 0 and config.w_clip_wrong[1] >= 1:
        assert np.all(out[down] < 0)
    if config.adv_clip[1] > 0 and config.w_clip_correct[1] >= 1:
        assert np.all(out[up] > 0)
    assert np.all(out[(b == 0)[:, None] & m] == 0)


@SETTINGS
@given(st.floats(-4, 4), st.floats(-4, 4), configs(), st.booleans())
def test_monotone_in_gap_within_a_side(g1, g2, config, positive):
    # Within one side and one branch (same sign of g), Â is monotone non-decreasing in g.
    if np.sign(g1) != np.sign(g2):
        g2 = -g2
    lo, hi = sorted((g1, g2))
    r = [1.0, 0.0]
    out = cast_advantages(r, [0, 0], np.array([[lo, hi], [lo, hi]]), np.ones((2, 2), bool), config)
    row = out[0] if positive else out[1]
    assert row[0] <= row[1] + 1e-12


@SETTINGS
@given(batches(nonbinary=False), st.integers(0, 3))
def test_identity_grpo_on_mixed_groups(batch, seed):
    r, gid, g, m = batch
    cfg = CASTConfig(flip_correct=False, flip_wrong=False, lam=0.0, adv_clip=(-1e6, 1e6),
                     scale=["group", "batch", "none"][seed % 3])
    b = base_advantages(r, gid, cfg)
    mixed = np.zeros(len(r), bool)
    for k in np.unique(gid):  # readable reference, not the hot path
        sel = gid == k
        mixed[sel] = 0 < r[sel].sum() < sel.sum()
    out = cast_advantages(r, gid, g, m, cfg)
    ref = grpo_advantages(r, gid, m, cfg)
    np.testing.assert_allclose(out[mixed], ref[mixed], rtol=1e-12, atol=1e-12)
    assert np.all(b[~mixed] == 0)          # lam = 0 -> s = 0 on zero-variance groups


@SETTINGS
@given(batches(), configs(), st.integers(0, 30))
def test_zero_variance_rows_follow_pm_B_s(batch, config, step):
    r, gid, g, m = batch
    b = base_advantages(r, gid, config, step)
    s = zv_scale_at(config, step)
    c = r > config.correct_threshold
    for k in np.unique(gid):
        sel = gid == k
        if c[sel].all():
            assert np.all(b[sel] == config.zv_pos_base * s)
        elif not c[sel].any():
            assert np.all(b[sel] == -config.zv_neg_base * s)
