"""benchmarks/bench_torch.py runs end to end on tiny sizes and prints ratios it measured."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_torch.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_torch", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_runs_and_reports_measured_ratios(capsys):
    bench = _bench()
    out = bench.main(["--n", "16", "--t", "64", "--reps", "2", "--device", "cpu", "--sizes", "8x32,16x64"])
    text = capsys.readouterr().out
    ratios = out["cpu_ratios"]
    assert ratios and all(np.isfinite(v) and v > 0 for v in ratios.values())
    assert "median torch/numpy" in text and "of copy" in text
    rows = out["bandwidth"]
    assert [(r["n"], r["t"]) for r in rows] == [(8, 32), (16, 64)]
    for r in rows:
        # bytes counted: float32 gaps read + 1-byte mask read + float32 advantages written
        assert r["gbps"] * 1e9 * r["ms"] / 1e3 == pytest.approx(r["n"] * r["t"] * 9, rel=1e-9)
        assert 0 < r["frac_of_copy"] and r["tokens_per_s"] > 0


def test_bench_batch_is_realistic():
    r, gid, g, m = _bench().make_batch(64, 100)
    assert set(np.unique(r)) <= {0.0, 1.0} and len(np.unique(gid)) == 8
    assert np.isnan(g[~m]).all() and np.isfinite(g[m]).mean() > 0.99
    assert 0.2 < m.mean() < 0.9
