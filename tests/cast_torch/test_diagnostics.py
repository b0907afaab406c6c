"""cast_torch.diagnostics against cast_core.diagnostics, through the one comparator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from cast_core import CASTConfig
from cast_core.diagnostics import DIAGNOSTIC_KEYS
from cast_core.diagnostics import cast_diagnostics as ref_diagnostics
from cast_torch.diagnostics import cast_diagnostics

from _torch_compare import DEVICES, assert_agree, to_f64
from _torch_strategies import batches, configs


def _on(x, device, dtype=None):
    t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    return t if dtype is None else t.to(dtype)


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=50, deadline=None)
@given(batch=batches(), cfg_step=configs())
def test_diagnostics_float64(device, batch, cfg_step):
    cfg, step = cfg_step
    args = (batch["rewards"], batch["group_ids"], batch["gaps"], batch["mask"])
    expected = ref_diagnostics(*args, cfg, step)
    actual = cast_diagnostics(*(_on(a, device) for a in args), cfg, step)
    assert tuple(actual) == DIAGNOSTIC_KEYS
    assert all(type(v) is float for v in actual.values())
    assert_agree(actual, expected, dtype=torch.float64, what="diagnostics")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_diagnostics_low_precision_realistic_batch(device, dtype):
    """A GRPO-like batch (8 prompts x 8 samples, 0/1 rewards, ragged lengths) in low precision
    gives cast_core's diagnostics of the rounded inputs: counts exactly, means to float32 accuracy."""
    rng = np.random.default_rng(7)
    n, t = 64, 40
    rewards = rng.integers(0, 2, n).astype(np.float64)
    rewards[:8], rewards[8:16] = 1.0, 0.0                  # one all-correct, one all-wrong group
    gid = np.repeat(rng.permutation(1000)[:8], 8)
    mask = np.arange(t)[None, :] < rng.integers(1, t + 1, n)[:, None]
    gaps = np.round(rng.normal(0, 0.2, (n, t)) * 64) / 64     # away from the deadband edges
    gaps[0, 0], gaps[20, 1] = np.inf, -np.inf
    gaps = np.where(mask, gaps, np.nan)
    for cfg in (CASTConfig(), CASTConfig(deadband=(0.95, 1.05), lam_decay_steps=10)):
        r, g = _on(rewards, device, dtype), _on(gaps, device, dtype)
        actual = cast_diagnostics(r, _on(gid, device), g, _on(mask, device), cfg, 3)
        expected = ref_diagnostics(to_f64(r), gid, to_f64(g), mask, cfg, 3)
        assert_agree(actual, expected, dtype=dtype, what=f"diagnostics[{dtype}]")
        assert actual["frac_all_correct"] == expected["frac_all_correct"] == 1 / 8


def test_diagnostics_of_an_empty_mask_are_zero_not_nan():
    out = cast_diagnostics(torch.tensor([1.0, 0.0]), torch.tensor([0, 0]), torch.full((2, 3), float("nan")),
                           torch.zeros(2, 3, dtype=torch.bool))
    assert all(np.isfinite(v) for v in out.values())
    assert out["adv_mean"] == 0.0 and out["flip_rate_correct"] == 0.0 and out["frac_mixed"] == 1.0
