"""cast_torch.{base,token,cast}_advantages against cast_core, through the one comparator."""

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
from cast_core import CASTConfig
from cast_torch.advantages import _clamp_per_side, _ge, _gt, _le

from _torch_compare import DEVICES, assert_agree, to_f64
from _torch_strategies import batches, configs

SETTINGS = settings(max_examples=60, deadline=None)
LOW = [torch.float32, torch.bfloat16, torch.float16]


def _on(x: np.ndarray, device: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    return t if dtype is None else t.to(dtype)


# ---------------------------------------------------------------------------- float64
@pytest.mark.parametrize("device", DEVICES)
@SETTINGS
@given(batch=batches(), cfg_step=configs())
def test_cast_advantages_float64(device, batch, cfg_step):
    cfg, step = cfg_step
    expected = cast_core.cast_advantages(batch["rewards"], batch["group_ids"], batch["gaps"], batch["mask"], cfg, step)
    actual = cast_torch.cast_advantages(*(_on(batch[k], device) for k in ("rewards", "group_ids", "gaps", "mask")),
                                        cfg, step)
    assert actual.dtype == torch.float64 and actual.device.type == device
    assert_agree(actual, expected, dtype=torch.float64, what="cast_advantages", exact_zero=~batch["mask"])


@pytest.mark.parametrize("device", DEVICES)
@SETTINGS
@given(batch=batches(gaps=False), cfg_step=configs())
def test_base_advantages_float64(device, batch, cfg_step):
    cfg, step = cfg_step
    expected = cast_core.base_advantages(batch["rewards"], batch["group_ids"], cfg, step)
    actual = cast_torch.base_advantages(_on(batch["rewards"], device), _on(batch["group_ids"], device), cfg, step)
    assert actual.dtype == torch.float64 and actual.device.type == device
    assert_agree(actual, expected, dtype=torch.float64, what="base_advantages")


@pytest.mark.parametrize("device", DEVICES)
@SETTINGS
@given(batch=batches(), cfg_step=configs(), data=st.data())
def test_token_advantages_float64(device, batch, cfg_step, data):
    cfg, step = cfg_step
    n = batch["rewards"].shape[0]
    base = data.draw(arrays(np.float64, n, elements=st.sampled_from([0.0, -0.0, 1.0, -1.0]) | st.floats(-3, 3)))
    expected = cast_core.token_advantages(base, batch["gaps"], batch["mask"], cfg, step)
    actual = cast_torch.token_advantages(_on(base, device), _on(batch["gaps"], device), _on(batch["mask"], device),
                                         cfg, step)
    assert_agree(actual, expected, dtype=torch.float64, what="token_advantages", exact_zero=~batch["mask"])


# ---------------------------------------------------------------------- low precision
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", LOW, ids=str)
@settings(max_examples=30, deadline=None)
@given(batch=batches(low_precision=True), cfg_step=configs(low_precision=True))
def test_cast_advantages_low_precision(device, dtype, batch, cfg_step):
    """Computed and returned in float32; compared with cast_core on the rounded inputs."""
    cfg, step = cfg_step
    r, g = _on(batch["rewards"], device, dtype), _on(batch["gaps"], device, dtype)
    actual = cast_torch.cast_advantages(r, _on(batch["group_ids"], device), g, _on(batch["mask"], device), cfg, step)
    assert actual.dtype == torch.float32 and actual.device.type == device
    expected = cast_core.cast_advantages(to_f64(r), batch["group_ids"], to_f64(g), batch["mask"], cfg, step)
    assert_agree(actual, expected, dtype=dtype, what=f"cast_advantages[{dtype}]", exact_zero=~batch["mask"])


def test_float32_threshold_is_decided_as_in_float64():
    """float32(0.1) > 0.1 in float64 (it is 0.10000000149); torch's own comparison would say no."""
    cfg = CASTConfig(correct_threshold=0.1)
    r = np.array([0.1, 0.1, 0.0, 0.0], dtype=np.float32)
    gid = np.array([0, 0, 1, 1])
    expected = cast_core.base_advantages(r.astype(np.float64), gid, cfg)
    actual = cast_torch.base_advantages(torch.from_numpy(r), torch.from_numpy(gid), cfg)
    assert (torch.from_numpy(r) > 0.1).sum() == 0            # the pitfall being avoided
    assert_agree(actual, expected, dtype=torch.float32, what="threshold")
    assert expected[0] > 0 and actual[0] > 0


@given(v=st.floats(-1e39, 1e39, allow_nan=False, allow_infinity=False), k=st.integers(-3, 3))
@settings(max_examples=200, deadline=None)
def test_exact_scalar_comparisons(v, k):
    """_gt/_ge/_le on float32 tensors decide exactly as float64 arithmetic would."""
    v32 = np.float32(v) if abs(v) < 3.4e38 else np.float32(np.sign(v) * 3.4e38)
    vals = [v32]
    for _ in range(abs(k)):
        vals.append(np.nextafter(vals[-1], np.float32(np.inf if k > 0 else -np.inf), dtype=np.float32))
    t = torch.tensor(np.array(vals, dtype=np.float32))
    t64 = t.double()
    assert torch.equal(_gt(t, v), t64 > v)
    assert torch.equal(_ge(t, v), t64 >= v)
    assert torch.equal(_le(t, v), t64 <= v)


# ---------------------------------------------------------------------- contract edges
def test_worked_example_from_the_contract():
    gaps = torch.tensor([[0.5, -0.3, 0.0, -0.02], [0.5, -0.3, 0.0, 0.02]], dtype=torch.float64)
    rewards = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    g = torch.cat([gaps[:1], gaps[:1], gaps[1:], gaps[1:]])
    adv = cast_torch.cast_advantages(rewards, torch.tensor([7, 7, 7, 7]), g, torch.ones(4, 4, dtype=torch.bool))
    assert_agree(adv[0], [1.025, -1.1, 1.0, -1.0 - 0.5 * (math.exp(0.02) - 1)], dtype=torch.float64, what="correct row")
    assert_agree(adv[2], [1.025, -1.1, -1.0, 1.0 + 0.5 * (math.exp(0.02) - 1)], dtype=torch.float64, what="wrong row")


@pytest.mark.parametrize("device", DEVICES)
def test_dtype_and_device_policy(device):
    n, t = 4, 3
    r = torch.tensor([1.0, 0.0, 1.0, 1.0], device=device)
    gid = torch.tensor([0, 0, 5, 5], device=device)
    g = torch.randn(n, t, device=device)
    m = torch.ones(n, t, dtype=torch.bool, device=device)
    for rd, gd, out in [(torch.float64, torch.float64, torch.float64), (torch.float32, torch.float32, torch.float32),
                        (torch.bfloat16, torch.bfloat16, torch.float32), (torch.float16, torch.float16, torch.float32),
                        (torch.float32, torch.float64, torch.float64), (torch.float64, torch.bfloat16, torch.float64)]:
        adv = cast_torch.cast_advantages(r.to(rd), gid, g.to(gd), m)
        assert adv.dtype == out and adv.device == g.device and adv.shape == (n, t)
        assert cast_torch.token_advantages(r.to(rd), g.to(gd), m).dtype == out
    assert cast_torch.base_advantages(r.to(torch.bfloat16), gid).dtype == torch.float32
    # The [N, T] input decides the device: rewards/group ids (small) are moved to it.
    adv = cast_torch.cast_advantages(r.cpu(), gid.cpu(), g, m)
    assert adv.device == g.device
    # T = 0 gives an [N, 0] tensor; N = 0 is an error.
    assert cast_torch.cast_advantages(r, gid, g[:, :0], m[:, :0]).shape == (n, 0)
    with pytest.raises(ValueError, match="empty batch"):
        cast_torch.cast_advantages(r[:0], gid[:0], g[:0], m[:0])


def test_padding_and_zero_base_rows_are_exactly_zero():
    r = torch.tensor([1.0, 1.0, 0.0, 0.5])
    gid = torch.tensor([0, 0, 1, 2])
    g = torch.tensor([[math.nan, 1.0], [math.inf, -math.inf], [-math.inf, math.nan], [2.0, 3.0]], dtype=torch.float64)
    m = torch.tensor([[False, True], [False, True], [True, False], [True, True]])
    cfg = CASTConfig(zv_pos_base=0.0)   # rows 0, 1 (all-correct group) get base 0
    adv = cast_torch.cast_advantages(r.double(), gid, g, m, cfg)
    assert torch.isfinite(adv).all()
    assert (adv[:2] == 0).all() and adv[2, 1] == 0
    assert adv[2, 0] == -1.0 * (1 + 0.5 * (1.2 - 1))       # all-wrong row, g = -inf: own side, clipped at hw


# ------------------------------------------------------------------- autograd & modes
@pytest.mark.parametrize("device", DEVICES)
def test_no_grad_inference_mode_and_stop_gradient(device):
    gen = torch.Generator().manual_seed(0)
    r = torch.randint(0, 2, (8,), generator=gen).double().to(device)
    gid = torch.arange(8).div(4, rounding_mode="floor").to(device)
    g = torch.randn(8, 5, generator=gen, dtype=torch.float64).to(device)
    m = (torch.rand(8, 5, generator=gen) < 0.8).to(device)
    eager = cast_torch.cast_advantages(r, gid, g, m)
    with torch.no_grad():
        assert torch.equal(cast_torch.cast_advantages(r, gid, g, m), eager)
    with torch.inference_mode():
        out = cast_torch.cast_advantages(r, gid, g, m)
        assert torch.equal(out, eager)
        assert torch.equal(cast_torch.cast_advantages(r.clone(), gid.clone(), g.clone(), m.clone()), eager)
    # Gaps that carry a graph are read as constants: the advantages are stop-gradient.
    g_req = g.clone().requires_grad_(True)
    out = cast_torch.cast_advantages(r, gid, g_req * 1.0, m)
    assert not out.requires_grad and torch.equal(out, eager)
    # Inputs are never written to.
    g0 = g.clone()
    cast_torch.cast_advantages(r, gid, g, m, validate=False)
    assert torch.equal(g, g0)


@pytest.mark.parametrize("device", DEVICES)
def test_branch_edges(device):
    """Edges a random search rarely lands on exactly: inclusive deadband bounds, W floored
    at 0 for λ > 1, lows > 1 on flipped tokens, b = 0 rows with ±inf gaps."""
    lo, hi = 0.95, 1.05
    g_lo, g_hi = math.log(lo), math.log(hi)
    assert math.exp(g_lo) == lo and math.exp(g_hi) == hi          # the edges are representable here
    assert torch.exp(torch.tensor([g_lo, g_hi], dtype=torch.float64)).tolist() == [lo, hi]
    rewards = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0])
    gid = np.array([0, 0, 1, 1, 2, 2])
    gaps = np.array([[g_lo, g_hi, -g_lo, 5.0, -5.0, math.inf, -math.inf]] * 6)
    mask = np.ones_like(gaps, dtype=bool)
    cases = [
        (CASTConfig(deadband=(lo, hi)), 0),
        (CASTConfig(lam=1.5, w_clip_wrong=(0.1, 1.2), w_clip_correct=(0.05, 1.4), flip_wrong=False,
                    flip_correct=False), 0),                       # W = max(0, 1 + 1.5·(0.1 − 1)) = 0
        (CASTConfig(w_clip_correct=(1.1, 1.3), w_clip_wrong=(1.05, 1.25), lam=2.0), 0),   # lows > 1
        (CASTConfig(zv_pos_base=0.0, lam_decay_steps=4), 2),      # all-correct group 2: b = 0
        (CASTConfig(lam=0.0, adv_clip=(-0.5, 2.0)), 0),
    ]
    for cfg, step in cases:
        expected = cast_core.cast_advantages(rewards, gid, gaps, mask, cfg, step)
        actual = cast_torch.cast_advantages(*(_on(x, device) for x in (rewards, gid, gaps, mask)), cfg, step)
        assert_agree(actual, expected, dtype=torch.float64, what=f"edges {cfg}")
    # The λ > 1 case really floors at 0 (a negative weight would flip the sign instead).
    cfg = cases[1][0]
    wrong_row = cast_torch.cast_advantages(*(_on(x, device) for x in (rewards, gid, gaps, mask)), cfg)[1]
    assert wrong_row[3] == 0.0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@settings(max_examples=150, deadline=None)
@given(a=st.floats(0.0, 1e3), c=st.floats(0.0, 1e3))
def test_per_side_clip_bounds_are_exact(dtype, a, c):
    """The fused bound mid + k·(sgn·half) is used only where it reproduces a and c exactly:
    clamping +inf must give exactly a on correct-side tokens and c on the others."""
    k8 = torch.tensor([[1, -1, 0], [1, -1, 0]], dtype=torch.int8)
    k = k8.to(dtype)
    sgn = torch.tensor([[1.0], [-1.0]], dtype=dtype)
    x = torch.full((2, 3), math.inf, dtype=dtype)
    _clamp_per_side(x, k, k8, sgn, a, c, torch.Tensor.clamp_max_)
    a_, c_ = (a, c) if dtype == torch.float64 else (float(np.float32(a)), float(np.float32(c)))
    assert x[0, 0].item() == a_ and x[1, 1].item() == a_      # k·sgn = +1: correct side
    assert x[0, 1].item() == c_ and x[1, 0].item() == c_      # k·sgn = −1
    assert torch.equal(k, k8.to(dtype))                       # the sign buffer is restored
