"""cast_torch.baselines against cast_core.baselines, through the one comparator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cast_core import baselines as ref
from cast_torch import baselines as tb

from _torch_compare import DEVICES, assert_agree, to_f64
from _torch_strategies import batches, configs

SETTINGS = settings(max_examples=40, deadline=None)


def _on(x, device, dtype=None):
    t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    return t if dtype is None else t.to(dtype)


@pytest.mark.parametrize("device", DEVICES)
@SETTINGS
@given(batch=batches(gaps=False), cfg_step=configs())
def test_grpo(device, batch, cfg_step):
    cfg, _ = cfg_step
    r, gid, m = batch["rewards"], batch["group_ids"], batch["mask"]
    assert_agree(tb.grpo_base(_on(r, device), _on(gid, device), cfg), ref.grpo_base(r, gid, cfg),
                 dtype=torch.float64, what="grpo_base")
    actual = tb.grpo_advantages(_on(r, device), _on(gid, device), _on(m, device), cfg)
    assert actual.device.type == device and actual.dtype == torch.float64
    assert_agree(actual, ref.grpo_advantages(r, gid, m, cfg), dtype=torch.float64, what="grpo_advantages",
                 exact_zero=~m)


def test_grpo_flat_groups_are_exactly_zero():
    r = torch.tensor([0.3, 0.3, 0.3, 1.0, 0.0], dtype=torch.float64)
    b = tb.grpo_base(r, torch.tensor([4, 4, 4, -1, -1]))
    assert (b[:3] == 0).all() and b[3] == 1.0 and b[4] == -1.0


@pytest.mark.parametrize("device", DEVICES)
@SETTINGS
@given(batch=batches(), cfg_step=configs(), data=st.data())
def test_rlsd(device, batch, cfg_step, data):
    cfg, step = cfg_step
    params = dict(step=step, lam=data.draw(st.sampled_from([0.5, 0.0]) | st.floats(0, 2)),
                  lam_decay_steps=data.draw(st.sampled_from([0, 50, 3])),
                  eps_w=data.draw(st.sampled_from([0.2, 0.0, 1.0]) | st.floats(0, 1)))
    args = (batch["rewards"], batch["group_ids"], batch["gaps"], batch["mask"])
    actual = tb.rlsd_advantages(*(_on(a, device) for a in args), config=cfg, **params)
    assert_agree(actual, ref.rlsd_advantages(*args, config=cfg, **params), dtype=torch.float64,
                 what="rlsd_advantages", exact_zero=~batch["mask"])


def _entropies(n, t):
    inside = st.floats(0.0, 5.0) | st.just(0.0)
    pad = st.sampled_from([np.nan, np.inf, -1.0, 7.0])
    return st.tuples(arrays(np.float64, (n, t), elements=inside), arrays(np.float64, (n, t), elements=pad))


@pytest.mark.parametrize("device", DEVICES)
@SETTINGS
@given(batch=batches(gaps=False), cfg_step=configs(), data=st.data())
def test_rl_zvp(device, batch, cfg_step, data):
    cfg, _ = cfg_step
    m = batch["mask"]
    h_in, h_pad = data.draw(_entropies(*m.shape))
    h = np.where(m, h_in, h_pad)
    alpha = data.draw(st.sampled_from([0.1, 0.0]) | st.floats(0, 3))
    args = (batch["rewards"], batch["group_ids"], h, m)
    actual = tb.rl_zvp_advantages(*(_on(a, device) for a in args), alpha=alpha, config=cfg)
    assert_agree(actual, ref.rl_zvp_advantages(*args, alpha=alpha, config=cfg), dtype=torch.float64,
                 what="rl_zvp_advantages", exact_zero=~m)


@pytest.mark.parametrize("device", DEVICES)
@SETTINGS
@given(batch=batches(), data=st.data())
def test_opsd(device, batch, data):
    m = batch["mask"]
    g = np.where(m & ~np.isfinite(batch["gaps"]), 1.5, batch["gaps"])   # OPSD needs finite gaps in the mask
    assert_agree(tb.opsd_advantages(_on(g, device), _on(m, device)), ref.opsd_advantages(g, m),
                 dtype=torch.float64, what="opsd_advantages", exact_zero=~m)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@settings(max_examples=20, deadline=None)
@given(batch=batches(low_precision=True), cfg_step=configs(low_precision=True))
def test_baselines_low_precision(device, dtype, batch, cfg_step):
    """float32 out, equal to cast_core on the rounded inputs."""
    cfg, step = cfg_step
    m = batch["mask"]
    r, g = _on(batch["rewards"], device, dtype), _on(batch["gaps"], device, dtype)
    gid, tm = _on(batch["group_ids"], device), _on(m, device)
    r64, g64 = to_f64(r), to_f64(g)
    out = tb.grpo_advantages(r, gid, tm, cfg)
    assert out.dtype == torch.float32
    assert_agree(out, ref.grpo_advantages(r64, batch["group_ids"], m, cfg), dtype=dtype, what="grpo")
    out = tb.rlsd_advantages(r, gid, g, tm, step=step, config=cfg)
    assert out.dtype == torch.float32
    assert_agree(out, ref.rlsd_advantages(r64, batch["group_ids"], g64, m, step=step, config=cfg),
                 dtype=dtype, what="rlsd")
    h = g.abs().nan_to_num(posinf=3.0)
    assert_agree(tb.rl_zvp_advantages(r, gid, h, tm, config=cfg),
                 ref.rl_zvp_advantages(r64, batch["group_ids"], to_f64(h), m, config=cfg), dtype=dtype, what="rl_zvp")
    g_fin = g.nan_to_num(nan=0.0, posinf=2.0, neginf=-2.0)
    assert_agree(tb.opsd_advantages(g_fin, tm), ref.opsd_advantages(to_f64(g_fin), m), dtype=dtype, what="opsd")


def test_baselines_do_not_differentiate_their_inputs():
    g = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    r = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    gid = torch.tensor([0, 0, 1, 1])
    m = torch.ones(4, 3, dtype=torch.bool)
    assert not tb.rlsd_advantages(r, gid, g * 2, m).requires_grad
    assert not tb.rl_zvp_advantages(r, gid, g.abs(), m).requires_grad
    assert not tb.opsd_advantages(g * 1, m).requires_grad
