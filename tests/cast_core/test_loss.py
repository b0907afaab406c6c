"""cast_core.policy_loss and its analytic gradient."""
import numpy as np
import pytest

from cast_core import AGGREGATIONS, policy_loss, policy_loss_grad


def _inputs(seed=0, n=5, t=7):
    rng = np.random.default_rng(seed)
    logp = rng.normal(-1.5, 0.5, (n, t))
    old = logp + rng.normal(0, 0.4, (n, t))           # ratios on both sides of the clip range
    adv = rng.normal(size=(n, t))
    mask = rng.random((n, t)) > 0.3
    mask[2] = False                                     # an empty row
    ref = logp + rng.normal(0, 0.2, (n, t))
    return logp, old, adv, mask, ref


def test_hand_computed_token_mean():
    logp = np.log([[1.5, 1.0, 0.5]])
    old = np.zeros((1, 3))
    adv = np.array([[1.0, 2.0, -1.0]])
    # rho = [1.5, 1.0, 0.5]; token 0: min(1.5, 1.28) = 1.28; token 1: 2.0; token 2: min(-0.5, -0.8) = -0.8
    loss = policy_loss(logp, old, adv, np.ones((1, 3), bool))
    assert loss == pytest.approx(-(1.28 + 2.0 - 0.8) / 3, abs=1e-15)


def test_aggregations_differ_as_defined():
    per_tok = np.array([[1.0, 1.0, 1.0, 0.0], [4.0, 0.0, 0.0, 0.0]])
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], bool)
    logp = np.zeros((2, 4))
    adv = -per_tok                                      # rho = 1, so the loss per token is -adv
    assert policy_loss(logp, logp, adv, mask) == pytest.approx(7 / 4)
    assert policy_loss(logp, logp, adv, mask, agg="seq-mean-token-mean") == pytest.approx((1 + 4) / 2)
    assert policy_loss(logp, logp, adv, mask, agg="seq-mean-token-sum-norm") == pytest.approx(7 / 8)
    assert policy_loss(logp, logp, adv, mask, agg="seq-mean-token-sum-norm", max_len=10) == pytest.approx(7 / 20)


def test_empty_mask_gives_zero_not_nan():
    z = np.zeros((2, 3))
    for agg in AGGREGATIONS:
        assert policy_loss(z, z, z + 1, np.zeros((2, 3), bool), agg=agg) == 0.0
        assert np.all(policy_loss_grad(z, z, z + 1, np.zeros((2, 3), bool), agg=agg) == 0.0)


def test_kl_term_is_k3():
    logp = np.log([[0.5]]); ref = np.log([[0.25]])
    d = ref - logp
    loss = policy_loss(logp, logp, np.zeros((1, 1)), np.ones((1, 1)), ref_logp=ref, beta=0.1)
    assert loss == pytest.approx(0.1 * (np.exp(d) - d - 1).item())


@pytest.mark.parametrize("agg", AGGREGATIONS)
@pytest.mark.parametrize("beta", [0.0, 0.05])
def test_gradient_matches_central_differences(agg, beta):
    logp, old, adv, mask, ref = _inputs()
    kw = dict(agg=agg, ref_logp=ref, beta=beta)
    grad = policy_loss_grad(logp, old, adv, mask, **kw)
    h = 1e-6
    num = np.zeros_like(logp)
    for i, j in zip(*np.nonzero(mask)):
        d = np.zeros_like(logp); d[i, j] = h
        num[i, j] = (policy_loss(logp + d, old, adv, mask, **kw) - policy_loss(logp - d, old, adv, mask, **kw)) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-9)
    assert np.all(grad[~mask] == 0)
    if beta == 0:
        # The clipped branch is active somewhere, so some masked gradients are exactly zero.
        assert np.any((grad == 0) & mask)


def test_padding_never_read():
    logp, old, adv, mask, ref = _inputs(1)
    bad = np.where(mask, logp, np.nan)
    assert policy_loss(bad, old, adv, mask) == pytest.approx(policy_loss(logp, old, adv, mask))


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(agg="mean"), ValueError, "agg"),
    (dict(beta=0.1), ValueError, "ref_logp"),
    (dict(clip_low=-0.1), ValueError, "clip_low"),
    (dict(clip_high=float("nan")), ValueError, "clip_high"),
    (dict(agg="seq-mean-token-sum-norm", max_len=0), ValueError, "max_len"),
])
def test_bad_arguments(kwargs, exc, match):
    z = np.zeros((2, 2))
    with pytest.raises(exc, match=match):
        policy_loss(z, z, z, np.ones((2, 2)), **kwargs)


def test_non_finite_inside_mask_is_named():
    z = np.zeros((2, 2))
    adv = np.array([[0.0, 0.0], [np.inf, 0.0]])
    with pytest.raises(ValueError, match=r"advantages.*\(1, 0\)"):
        policy_loss(z, z, adv, np.ones((2, 2)))
    with pytest.raises(ValueError, match="old_logp"):
        policy_loss(z, np.zeros((2, 3)), z, np.ones((2, 2)))
