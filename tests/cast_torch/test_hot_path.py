"""The hot path (``validate=False``) never reads a value back to the host, and compiles."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

import cast_torch
from cast_core import CASTConfig
from cast_torch import baselines as tb
from cast_torch.diagnostics import cast_diagnostics

from _torch_compare import DEVICES, assert_agree

_HOST_READS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__", "__array__")

CONFIGS = [CASTConfig(), CASTConfig(deadband=(0.95, 1.05), lam_decay_steps=10, flip_wrong=False),
           CASTConfig(lam=0.0, scale="batch"), CASTConfig(w_clip_correct=(1.1, 1.3), lam=1.5, flip_correct=False,
                                                          flip_wrong=False, scale="none", std_ddof=1)]


def _batch(device, dtype=torch.float64, n=24, t=17, seed=0):
    gen = torch.Generator().manual_seed(seed)
    r = torch.randint(0, 2, (n,), generator=gen).to(dtype)
    gid = torch.tensor([-5, 11, 2 ** 40]).repeat_interleave(8)[:n]
    g = torch.randn(n, t, generator=gen, dtype=torch.float64).to(dtype)
    m = torch.arange(t)[None, :] < torch.randint(1, t + 1, (n, 1), generator=gen)
    g[~m] = float("nan")
    g[0, 0] = float("inf")
    return r.to(device), gid.to(device), g.to(device), m.to(device)


def _hot_calls(r, gid, g, m, cfg):
    """Every torch function's validate=False path, on one batch."""
    h = g.abs().nan_to_num(posinf=1.0)
    lp = torch.log_softmax(g.nan_to_num(posinf=3.0, neginf=-3.0), dim=-1)
    return [
        cast_torch.cast_advantages(r, gid, g, m, cfg, 3, validate=False),
        cast_torch.base_advantages(r, gid, cfg, 3, validate=False),
        cast_torch.token_advantages(r - 0.5, g, m, cfg, 3, validate=False),
        tb.grpo_advantages(r, gid, m, cfg, validate=False),
        tb.rlsd_advantages(r, gid, g, m, step=4, config=cfg, validate=False),
        tb.rl_zvp_advantages(r, gid, h, m, config=cfg, validate=False),
        tb.opsd_advantages(g.nan_to_num(posinf=1.0), m, validate=False),
        cast_torch.policy_loss(lp, lp.detach() + 0.1, g.nan_to_num(posinf=1.0), m, validate=False,
                               agg="seq-mean-token-mean", beta=0.1, ref_logp=lp.detach()),
    ]


@contextlib.contextmanager
def _no_host_reads(monkeypatch):
    def forbidden(name):
        def raiser(self, *args, **kwargs):
            raise AssertionError(f"host read Tensor.{name} in the hot path")
        return raiser
    with monkeypatch.context() as mp:
        for name in _HOST_READS:
            mp.setattr(torch.Tensor, name, forbidden(name))
        yield


@pytest.mark.parametrize("cfg", CONFIGS, ids=range(len(CONFIGS)))
def test_cpu_hot_path_never_reads_a_tensor_value(monkeypatch, cfg):
    r, gid, g, m = _batch("cpu")
    expected = _hot_calls(r, gid, g, m, cfg)
    with _no_host_reads(monkeypatch):
        with pytest.raises(AssertionError, match="host read"):   # the trap is armed
            bool(torch.ones(()))
        outs = _hot_calls(r, gid, g, m, cfg)
    for a, e in zip(outs, expected):
        assert torch.equal(a, e)
    # validate=True does read values (that is its job): the trap must catch it.
    with _no_host_reads(monkeypatch), pytest.raises(AssertionError, match="host read"):
        cast_torch.cast_advantages(r, gid, g, m, cfg)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cfg", CONFIGS, ids=range(len(CONFIGS)))
def test_cuda_hot_path_does_not_synchronize(cfg):
    r, gid, g, m = _batch("cuda")
    _hot_calls(r, gid, g, m, cfg)                 # warm-up: lazy CUDA init may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        _hot_calls(r, gid, g, m, cfg)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("device", DEVICES)
def test_diagnostics_read_back_once(device, monkeypatch):
    r, gid, g, m = _batch(device)
    calls = []
    real = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: calls.append(1) or real(self))
    cast_diagnostics(r, gid, g, m, validate=False)
    assert len(calls) == 1


def _compiled_cast(backend):
    def fn(r, gid, g, m):
        return cast_torch.cast_advantages(r, gid, g, m, CASTConfig(deadband=(0.95, 1.05)), 5, validate=False)
    return torch.compile(fn, backend=backend, fullgraph=True, dynamic=False)


def test_compile_traces_without_graph_breaks():
    """fullgraph=True fails on any graph break; aot_eager traces through dynamo and AOTAutograd
    in seconds (the inductor run, which compiles C++, is the slow test below)."""
    r, gid, g, m = _batch("cpu")
    out = _compiled_cast("aot_eager")(r, gid, g, m)
    eager = cast_torch.cast_advantages(r, gid, g, m, CASTConfig(deadband=(0.95, 1.05)), 5)
    assert torch.equal(out, eager)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_inductor_compiled_matches_eager(dtype):
    """torch.compile (inductor, CPU) fuses the pass into one loop; FMA contraction may move
    the last bit, so compare through the comparator, not bit for bit."""
    r, gid, g, m = _batch("cpu", dtype)
    fn = _compiled_cast("inductor")
    out = fn(r, gid, g, m)
    eager = cast_torch.cast_advantages(r, gid, g, m, CASTConfig(deadband=(0.95, 1.05)), 5)
    assert out.dtype == eager.dtype
    assert_agree(out, eager, dtype=dtype, what="compiled vs eager", exact_zero=~m)
    r2, gid2, g2, m2 = _batch("cpu", dtype, seed=1)        # same shapes: no recompile, new values
    eager2 = cast_torch.cast_advantages(r2, gid2, g2, m2, CASTConfig(deadband=(0.95, 1.05)), 5)
    assert_agree(fn(r2, gid2, g2, m2), eager2, dtype=dtype, what="compiled vs eager, second batch", exact_zero=~m2)


def test_hot_path_results_do_not_depend_on_validation():
    r, gid, g, m = _batch("cpu")
    for cfg in CONFIGS:
        a = cast_torch.cast_advantages(r, gid, g, m, cfg, validate=False)
        b = cast_torch.cast_advantages(r, gid, g, m, cfg, validate=True)
        assert torch.equal(a, b)
        assert np.isfinite(a.numpy()).all()
