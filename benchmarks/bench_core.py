"""Benchmark cast_core.cast_advantages against a minimal NumPy expression of the positive-side rule.

    python benchmarks/bench_core.py [--n 512] [--t 4096] [--repeats 15]

Both are timed on the same arrays, interleaved, in one run (this machine is shared and
noisy, so only the ratio in one run means anything). The floor is what any
implementation must at least do: one exp, one clip, one affine map, one max and one
product per token, plus the mask. ``cast_advantages`` adds validation (NaN inside the
mask, 0/1 mask), grouping, both sides, flips and the final clip.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from cast_core import CASTConfig, cast_advantages


def positive_side_floor(b: np.ndarray, g: np.ndarray, mask: np.ndarray, lam: float, lo: float, hi: float) -> np.ndarray:
    w = np.maximum(0.0, 1.0 + lam * (np.clip(np.exp(g), lo, hi) - 1.0))
    return np.where(mask, b[:, None] * w, 0.0)


def make_batch(n: int, t: int, group_size: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    rewards = (rng.random(n) < 0.5).astype(np.float64)
    group_ids = np.arange(n) // group_size
    gaps = rng.normal(0.0, 0.3, (n, t))
    lengths = rng.integers(t // 4, t + 1, n)
    mask = np.arange(t)[None, :] < lengths[:, None]
    gaps[~mask] = np.nan                      # padding holds garbage, as in a real batch
    return rewards, group_ids, gaps, mask


def best_and_median(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--t", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    cfg = CASTConfig()
    r, gid, g, m = make_batch(args.n, args.t)
    b = np.where(r > 0.5, 1.0, -1.0)
    lo, hi = cfg.w_clip_correct
    cast_advantages(r, gid, g, m, cfg)        # warm caches / page in
    t_cast, t_floor = [], []
    for _ in range(args.repeats):             # interleave so drift hits both equally
        t_cast += best_and_median(lambda: cast_advantages(r, gid, g, m, cfg), 1)
        t_floor += best_and_median(lambda: positive_side_floor(b, g, m, cfg.lam, lo, hi), 1)
    tokens = args.n * args.t
    print(f"shape {args.n}x{args.t} ({tokens / 1e6:.2f} M tokens, {int(m.sum()) / 1e6:.2f} M masked), repeats {args.repeats}")
    print(f"{'':28s}{'min ms':>10s}{'median ms':>12s}{'Mtok/s (median)':>18s}")
    for name, ts in (("cast_advantages", t_cast), ("positive-side floor", t_floor)):
        med = statistics.median(ts)
        print(f"{name:28s}{min(ts) * 1e3:10.1f}{med * 1e3:12.1f}{tokens / med / 1e6:18.1f}")
    ratio_min = min(t_cast) / min(t_floor)
    ratio_med = statistics.median(t_cast) / statistics.median(t_floor)
    print(f"ratio cast / floor: min {ratio_min:.2f}, median {ratio_med:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
