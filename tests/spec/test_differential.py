"""Differential tests: cast_core against the independent exact oracle (spec/oracle.py)
on hypothesis-drawn inputs, compared with |a − e| <= 1e-12 + 1e-9·|e| (exactly 0 outside
the mask).

Draws avoid only what float64 cannot decide: exp(g) within 1e-9 (relative) of a deadband
edge, ρ within 1e-9 of a clip bound where A ≠ 0, a std within 1e-9 of eps. Rewards are
multiples of 1/8 so r − mean carries no catastrophic cancellation (a float implementation
cannot be held to 1e-9 on ill-conditioned rewards, and that is not what is being tested).
"""

import math
from fractions import Fraction

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cast_core
from cast_core import CASTConfig
from cast_core.conformance import compare

from _spec_load import load as _load


oracle = _load("oracle")
from cast_core import baselines

ATOL, RTOL = 1e-12, 1e-9
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
INF = float("inf")


def assert_close(actual, expected, mask=None):
    outside = None if mask is None else ~np.asarray(mask, dtype=bool)
    cmp = compare(actual, expected, atol=ATOL, rtol=RTOL, exact_zero=outside)
    assert cmp.ok, cmp.message


# -- strategies -----------------------------------------------------------------------
@st.composite
def batches(draw, max_n=6, max_t=5):
    n = draw(st.integers(1, max_n))
    t = draw(st.integers(0, max_t))
    rewards = [draw(st.integers(-8, 16)) / 8 for _ in range(n)]
    if draw(st.booleans()):  # mostly binary batches, as in practice
        rewards = [draw(st.sampled_from([0.0, 1.0])) for _ in range(n)]
    ids = [draw(st.sampled_from([-3, 0, 1, 7, 2 ** 33])) for _ in range(n)]
    finite = st.floats(-8, 8, allow_nan=False, allow_subnormal=False)
    gap = st.one_of(finite, finite, finite, st.just(0.0), st.sampled_from([INF, -INF]))
    gaps = [[draw(gap) for _ in range(t)] for _ in range(n)]
    mask = [[draw(st.booleans()) or draw(st.booleans()) for _ in range(t)] for _ in range(n)]
    pad = st.sampled_from([float("nan"), INF, -INF, 123.0])
    gaps = [[g if m else draw(pad) for g, m in zip(grow, mrow)] for grow, mrow in zip(gaps, mask)]
    return rewards, ids, gaps, mask


@st.composite
def configs(draw):
    cfg = {}
    if draw(st.booleans()):
        cfg["scale"] = draw(st.sampled_from(["group", "batch", "none"]))
    if draw(st.booleans()):
        cfg["std_ddof"] = 1
    if draw(st.booleans()):
        cfg["lam"] = draw(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 0.3]))
    if draw(st.booleans()):
        cfg["lam_decay_steps"] = draw(st.sampled_from([1, 7, 50, 300]))
    for flag in ("flip_correct", "flip_wrong", "zv_scale_with_lam"):
        if draw(st.integers(0, 3)) == 0:
            cfg[flag] = False
    if draw(st.booleans()):
        cfg["deadband"] = draw(st.sampled_from([(0.95, 1.05), (0.5, 2.0), (1.0, 1.1), (1.03, 1.03)]))
    if draw(st.integers(0, 2)) == 0:
        cfg["w_clip_correct"] = draw(st.sampled_from([(0.0, 1.05), (0.5, 1.5), (1.02, 1.1), (0.5, 0.9)]))
    if draw(st.integers(0, 2)) == 0:
        cfg["w_clip_wrong"] = draw(st.sampled_from([(0.0, 1.2), (0.7, 1.3), (1.1, 1.3), (0.3, 0.8)]))
    if draw(st.integers(0, 2)) == 0:
        cfg["adv_clip"] = draw(st.sampled_from([(-10.0, 10.0), (-0.5, 0.7), (0.0, 0.0), (-2.0, 0.0)]))
    if draw(st.integers(0, 3)) == 0:
        cfg["zv_pos_base"] = draw(st.sampled_from([0.0, 0.3, 2.0]))
        cfg["zv_neg_base"] = draw(st.sampled_from([0.0, 0.7, 1.5]))
    if draw(st.integers(0, 3)) == 0:
        cfg["eps"] = draw(st.sampled_from([0.1, 0.4, 1e-3]))
    if draw(st.integers(0, 3)) == 0:
        cfg["correct_threshold"] = draw(st.sampled_from([0.0, 0.25, 0.9]))
    return cfg


def _decidable(rewards, ids, gaps, mask, cfg):
    """False if an input sits within 1e-9 of a branch boundary float64 cannot resolve."""
    full = {**oracle.DEFAULTS, **cfg}
    lo, hi = full["deadband"]
    if lo < hi:
        for grow, mrow in zip(gaps, mask):
            for g, m in zip(grow, mrow):
                if m and math.isfinite(g) and g != 0:
                    e = math.exp(g)
                    if abs(e - lo) <= 1e-9 * lo or abs(e - hi) <= 1e-9 * hi:
                        return False
    # σ against eps, for every group and the batch.
    ddof, eps = full["std_ddof"], Fraction(full["eps"])
    groups = {}
    for r, i in zip(rewards, ids):
        groups.setdefault(i, []).append(Fraction(r))
    for vals in list(groups.values()) + [[Fraction(r) for r in rewards]]:
        if len(vals) > ddof:
            mu = sum(vals) / len(vals)
            var = sum((v - mu) ** 2 for v in vals) / (len(vals) - ddof)
            if var and abs(math.sqrt(var) - float(eps)) <= 1e-9 * float(eps):
                return False
    return True


# -- CAST advantages --------------------------------------------------------------------
@settings(max_examples=150, **SETTINGS)
@given(batches(), configs(), st.sampled_from([0, 1, 3, 25, 150, 299, 300, 1000]))
def test_cast_advantages_matches_oracle(batch, cfg, step):
    rewards, ids, gaps, mask = batch
    assume(_decidable(rewards, ids, gaps, mask, cfg))
    expected = oracle.cast_advantages(rewards, ids, gaps, mask, cfg, step)
    t = len(gaps[0])
    actual = cast_core.cast_advantages(np.array(rewards), np.array(ids, dtype=np.int64),
                                       np.array(gaps, dtype=np.float64).reshape(len(rewards), t),
                                       np.array(mask, dtype=bool).reshape(len(rewards), t),
                                       config=CASTConfig(**cfg), step=step)
    assert_close(actual, np.array(expected).reshape(len(rewards), t), np.array(mask, dtype=bool).reshape(len(rewards), t))


@settings(max_examples=60, **SETTINGS)
@given(batches(), configs(), st.sampled_from([0, 5, 400]))
def test_base_advantages_matches_oracle(batch, cfg, step):
    rewards, ids, gaps, mask = batch
    assume(_decidable(rewards, ids, [], [], cfg))
    expected = oracle.base_advantages(rewards, ids, cfg, step)
    actual = cast_core.base_advantages(np.array(rewards), np.array(ids, dtype=np.int64),
                                       config=CASTConfig(**cfg), step=step)
    assert_close(actual, expected)


# -- policy loss and gradient --------------------------------------------------------------
@st.composite
def loss_inputs(draw):
    n = draw(st.integers(1, 5))
    t = draw(st.integers(1, 5))
    lp = st.floats(-6, 0, allow_nan=False, allow_subnormal=False)
    shift = st.floats(-0.8, 0.8, allow_nan=False, allow_subnormal=False)
    old = [[draw(lp) for _ in range(t)] for _ in range(n)]
    logp = [[o + draw(shift) for o in row] for row in old]
    adv = [[draw(st.one_of(st.just(0.0), st.floats(-2, 2, allow_nan=False))) for _ in range(t)] for _ in range(n)]
    mask = [[draw(st.integers(0, 3)) > 0 for _ in range(t)] for _ in range(n)]
    if draw(st.integers(0, 5)) == 0:
        mask[0] = [False] * t  # an empty row
    params = {"agg": draw(st.sampled_from(list(oracle.AGGREGATIONS))),
              "clip_low": draw(st.sampled_from([0.2, 0.1, 0.0])),
              "clip_high": draw(st.sampled_from([0.28, 0.2, 0.5]))}
    ref = None
    if draw(st.booleans()):
        params["beta"] = draw(st.sampled_from([0.04, 1.0]))
        ref = [[o + draw(shift) for o in row] for row in old]
    if params["agg"] == "seq-mean-token-sum-norm" and draw(st.booleans()):
        params["max_len"] = t + draw(st.integers(0, 4))
    return logp, old, adv, mask, ref, params


def _rho_decidable(logp, old, adv, mask, params):
    for i, row in enumerate(logp):
        for t, v in enumerate(row):
            if mask[i][t] and adv[i][t] != 0:
                rho = math.exp(v - old[i][t])
                for bound in (1 - params["clip_low"], 1 + params["clip_high"]):
                    if abs(rho - bound) <= 1e-9:
                        return False
    return True


@settings(max_examples=100, **SETTINGS)
@given(loss_inputs())
def test_policy_loss_and_grad_match_oracle(inputs):
    logp, old, adv, mask, ref, params = inputs
    assume(_rho_decidable(logp, old, adv, mask, params))
    exp_loss = oracle.policy_loss(logp, old, adv, mask, ref_logp=ref, **params)
    exp_grad = oracle.policy_loss_grad(logp, old, adv, mask, ref_logp=ref, **params)
    arr = lambda x: None if x is None else np.array(x, dtype=np.float64)  # noqa: E731
    m = np.array(mask, dtype=bool)
    act_loss = cast_core.policy_loss(arr(logp), arr(old), arr(adv), m, ref_logp=arr(ref), **params)
    act_grad = cast_core.policy_loss_grad(arr(logp), arr(old), arr(adv), m, ref_logp=arr(ref), **params)
    assert_close(act_loss, exp_loss)
    assert_close(act_grad, exp_grad, m)


# -- baselines -------------------------------------------------------------------------------
def _np_batch(rewards, ids, gaps, mask):
    n, t = len(rewards), len(gaps[0])
    return (np.array(rewards), np.array(ids, dtype=np.int64),
            np.array(gaps, dtype=np.float64).reshape(n, t), np.array(mask, dtype=bool).reshape(n, t))


@settings(max_examples=60, **SETTINGS)
@given(batches(), configs())
def test_grpo_matches_oracle(batch, cfg):
    rewards, ids, gaps, mask = batch
    assume(_decidable(rewards, ids, [], [], cfg))
    r, g_ids, _, m = _np_batch(rewards, ids, gaps, mask)
    expected = np.array(oracle.grpo_advantages(rewards, ids, mask, cfg)).reshape(m.shape)
    assert_close(baselines.grpo_advantages(r, g_ids, m, config=CASTConfig(**cfg)), expected, m)


@settings(max_examples=60, **SETTINGS)
@given(batches(), configs(), st.sampled_from([0, 10, 25, 60]),
       st.sampled_from([(0.5, 50, 0.2), (1.0, 0, 0.5), (0.3, 7, 0.1)]))
def test_rlsd_matches_oracle(batch, cfg, step, rl):
    rewards, ids, gaps, mask = batch
    assume(_decidable(rewards, ids, [], [], cfg))
    lam, decay, eps_w = rl
    r, g_ids, g, m = _np_batch(rewards, ids, gaps, mask)
    expected = np.array(oracle.rlsd_advantages(rewards, ids, gaps, mask, step=step, lam=lam,
                                               lam_decay_steps=decay, eps_w=eps_w, config=cfg)).reshape(m.shape)
    actual = baselines.rlsd_advantages(r, g_ids, g, m, step=step, lam=lam, lam_decay_steps=decay,
                                       eps_w=eps_w, config=CASTConfig(**cfg))
    assert_close(actual, expected, m)


@settings(max_examples=60, **SETTINGS)
@given(batches(), configs(), st.sampled_from([0.1, 0.5]), st.data())
def test_rl_zvp_matches_oracle(batch, cfg, alpha, data):
    rewards, ids, gaps, mask = batch
    assume(_decidable(rewards, ids, [], [], cfg))
    r, g_ids, _, m = _np_batch(rewards, ids, gaps, mask)
    ent = [[data.draw(st.floats(0, 5, allow_nan=False)) if mv else float("nan") for mv in row] for row in mask]
    expected = np.array(oracle.rl_zvp_advantages(rewards, ids, ent, mask, alpha=alpha, config=cfg)).reshape(m.shape)
    actual = baselines.rl_zvp_advantages(r, g_ids, np.array(ent, dtype=np.float64).reshape(m.shape), m,
                                         alpha=alpha, config=CASTConfig(**cfg))
    assert_close(actual, expected, m)


@settings(max_examples=40, **SETTINGS)
@given(batches())
def test_opsd_matches_oracle(batch):
    rewards, ids, gaps, mask = batch
    gaps = [[g if (not m or math.isfinite(g)) else 0.5 for g, m in zip(grow, mrow)]
            for grow, mrow in zip(gaps, mask)]
    _, _, g, m = _np_batch(rewards, ids, gaps, mask)
    expected = np.array(oracle.opsd_advantages(gaps, mask)).reshape(m.shape)
    assert_close(baselines.opsd_advantages(g, m), expected, m)
