"""cast_torch.policy_loss against cast_core.policy_loss / policy_loss_grad, and gradcheck."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import cast_core
import cast_torch

from _torch_compare import DEVICES, assert_agree, to_f64

AGGS = cast_core.AGGREGATIONS


@st.composite
def loss_inputs(draw, max_n: int = 8, max_t: int = 10):
    n, t = draw(st.integers(1, max_n)), draw(st.integers(0, max_t))
    f = lambda lo, hi: arrays(np.float64, (n, t), elements=st.floats(lo, hi))   # noqa: E731
    mask = draw(arrays(np.bool_, (n, t)))
    pad = arrays(np.float64, (n, t), elements=st.sampled_from([np.nan, np.inf, -np.inf, 9.0]))
    old = draw(f(-6.0, 0.0))
    logp = old + draw(f(-1.0, 1.0))                            # ρ in [e^-1, e]: both clip sides active
    adv = draw(f(-2.0, 2.0) | arrays(np.float64, (n, t), elements=st.sampled_from([0.0, 1.0, -1.2])))
    ref = old + draw(f(-0.5, 0.5))
    padded = {k: np.where(mask, v, draw(pad)) for k, v in dict(logp=logp, old_logp=old, advantages=adv,
                                                                 ref_logp=ref).items()}
    params = dict(agg=draw(st.sampled_from(AGGS)), clip_low=draw(st.sampled_from([0.2, 0.0]) | st.floats(0, 0.9)),
                  clip_high=draw(st.sampled_from([0.28, 0.0]) | st.floats(0, 2)),
                  beta=draw(st.sampled_from([0.0, 0.0, 0.04, 1.0])),
                  # T = 0 with the default L = T is an error in both (see the test below).
                  max_len=draw(st.sampled_from([None, max(t, 1), 3 * t + 1] if t else [1, 5])))
    return padded, mask, params


def _torch_args(arrays_, mask, device):
    on = lambda x: torch.from_numpy(np.ascontiguousarray(x)).to(device)   # noqa: E731
    logp = on(arrays_["logp"]).requires_grad_(True)
    return logp, on(arrays_["old_logp"]), on(arrays_["advantages"]), on(mask), on(arrays_["ref_logp"])


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=80, deadline=None)
@given(inp=loss_inputs())
def test_loss_value_and_autograd_gradient_float64(device, inp):
    arrays_, mask, params = inp
    logp, old, adv, m, ref = _torch_args(arrays_, mask, device)
    loss = cast_torch.policy_loss(logp, old, adv, m, ref_logp=ref, **params)
    assert loss.shape == () and loss.dtype == torch.float64 and loss.device.type == device
    np_args = (arrays_["logp"], arrays_["old_logp"], arrays_["advantages"], mask)
    assert_agree(loss, cast_core.policy_loss(*np_args, ref_logp=arrays_["ref_logp"], **params),
                 dtype=torch.float64, what=f"policy_loss[{params['agg']}]")
    (grad,) = torch.autograd.grad(loss, logp, allow_unused=True)
    grad = torch.zeros_like(logp) if grad is None else grad
    assert_agree(grad, cast_core.policy_loss_grad(*np_args, ref_logp=arrays_["ref_logp"], **params),
                 dtype=torch.float64, what=f"grad[{params['agg']}]", exact_zero=~mask)


@pytest.mark.parametrize("agg", AGGS)
@pytest.mark.parametrize("beta", [0.0, 0.1])
def test_gradcheck(agg, beta):
    gen = torch.Generator().manual_seed(3)
    n, t = 4, 6
    old = -torch.rand(n, t, generator=gen, dtype=torch.float64) * 3
    # Keep ρ away from the clip kinks 1 − 0.2 and 1 + 0.28 (finite differences straddling a
    # kink would measure the average of two one-sided slopes).
    delta = torch.tensor([-0.6, -0.12, 0.0, 0.1, 0.2, 0.5], dtype=torch.float64).repeat(n, 1)
    logp = (old + delta).requires_grad_(True)
    adv = torch.randn(n, t, generator=gen, dtype=torch.float64)
    mask = torch.rand(n, t, generator=gen) < 0.75
    mask[0] = False                                         # an empty row
    ref = old + 0.3 * torch.randn(n, t, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda lp: cast_torch.policy_loss(lp, old, adv, mask, agg=agg, ref_logp=ref, beta=beta), (logp,))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@settings(max_examples=25, deadline=None)
@given(inp=loss_inputs())
def test_loss_low_precision(device, dtype, inp):
    """float32 result for float32/bf16 logp; equal to cast_core on the rounded inputs."""
    arrays_, mask, params = inp
    on = lambda x: torch.from_numpy(np.ascontiguousarray(x)).to(device, dtype)   # noqa: E731
    t = {k: on(v) for k, v in arrays_.items()}
    loss = cast_torch.policy_loss(t["logp"], t["old_logp"], t["advantages"], torch.from_numpy(mask).to(device),
                                  ref_logp=t["ref_logp"], **params)
    assert loss.dtype == torch.float32
    rounded = {k: to_f64(v) for k, v in t.items()}
    expected = cast_core.policy_loss(rounded["logp"], rounded["old_logp"], rounded["advantages"], mask,
                                     ref_logp=rounded["ref_logp"], **params)
    # The loss is a mean of terms that may cancel: its float32 error scales with the mean
    # |term| (ρ·|Â| and the KL term), not with |loss|.
    with np.errstate(all="ignore"):   # padding holds NaN/inf; only masked terms are used
        terms = np.abs(np.exp(rounded["logp"] - rounded["old_logp"]) * rounded["advantages"]) + params["beta"] * 2.0
    magnitude = float(terms[mask].mean()) if mask.any() else 0.0
    assert_agree(loss, expected, dtype=dtype, what=f"policy_loss[{dtype}]", scale=magnitude)


def test_empty_mask_gives_zero_loss_and_zero_gradient():
    logp = torch.full((2, 3), math.nan, dtype=torch.float64, requires_grad=True)
    for agg in AGGS:
        loss = cast_torch.policy_loss(logp, torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2, 3, dtype=torch.bool),
                                      agg=agg)
        assert loss.item() == 0.0
        (g,) = torch.autograd.grad(loss, logp)
        assert (g == 0).all()


def test_sum_norm_with_t0_and_default_max_len_is_zero_in_both():
    """With T = 0 there is nothing to sum: the default L = max(T, 1) gives loss 0 in both."""
    z = np.zeros((2, 0))
    m = np.zeros((2, 0), dtype=bool)
    assert cast_core.policy_loss(z, z, z, m, agg="seq-mean-token-sum-norm") == 0.0
    t = torch.from_numpy(z)
    assert cast_torch.policy_loss(t, t, t, torch.from_numpy(m), agg="seq-mean-token-sum-norm").item() == 0.0
    with pytest.raises(ValueError, match="max_len"):
        cast_core.policy_loss(z, z, z, m, agg="seq-mean-token-sum-norm", max_len=0)
