"""``cast-train plot OUT``: PNG curves of a run's ``metrics.jsonl`` (matplotlib, headless).

Writes ``OUT/plots/<metric>.png`` for each plotted metric and ``OUT/plots/summary.png``
(a grid of the main curves). Per-step series are drawn raw (thin) with a moving average.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Sequence

from .metrics import read_metrics

__all__ = ["plot_run", "main", "DEFAULT_METRICS"]

DEFAULT_METRICS = (
    "reward_mean", "eval_accuracy", "frac_all_correct", "frac_all_wrong", "frac_mixed", "flip_rate_correct",
    "flip_rate_wrong", "loss", "grad_norm", "approx_kl", "clip_frac", "entropy", "step_time", "tokens_per_s",
)


def _series(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in records:
        v = r.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            xs.append(int(r["step"]))
            ys.append(float(v))
    return xs, ys


def _smooth(ys: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, y in enumerate(ys):
        acc += y
        if i >= window:
            acc -= ys[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot_run(out_dir: str | Path, metrics: Sequence[str] = DEFAULT_METRICS, smooth: int = 5) -> list[Path]:
    """Write the PNGs for ``out_dir``; returns their paths (metrics absent from the run are skipped)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(out_dir)
    if not records:
        raise ValueError(f"plot: {out_dir}/metrics.jsonl has no records")
    plots = Path(out_dir) / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    present = [m for m in metrics if _series(records, m)[0]]
    if not present:
        raise ValueError(f"plot: none of {list(metrics)} is in {out_dir}/metrics.jsonl")
    written = []

    def draw(ax, key: str) -> None:
        xs, ys = _series(records, key)
        if len(xs) > smooth and key != "eval_accuracy":
            ax.plot(xs, ys, lw=0.6, alpha=0.4, color="C0")
            ax.plot(xs, _smooth(ys, smooth), lw=1.6, color="C0", label=f"{smooth}-step mean")
        else:
            ax.plot(xs, ys, marker="o", lw=1.4, color="C1")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)

    for key in present:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        draw(ax, key)
        fig.tight_layout()
        path = plots / f"{key}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    cols = 4
    rows = math.ceil(len(present) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    for ax, key in zip(axes.flat, present):
        draw(ax, key)
    for ax in list(axes.flat)[len(present):]:
        ax.axis("off")
    fig.suptitle(str(out_dir), fontsize=10)
    fig.tight_layout()
    path = plots / "summary.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(path)
    return written


def main(argv: Sequence[str]) -> int:
    """``cast-train plot OUT [--metrics a,b] [--smooth N]``."""
    p = argparse.ArgumentParser(prog="cast-train plot", description="Write PNG curves of a run.")
    p.add_argument("out", help="run directory (holds metrics.jsonl)")
    p.add_argument("--metrics", help="comma-separated metric names (default: the main curves)")
    p.add_argument("--smooth", type=int, default=5, help="moving-average window (default 5)")
    args = p.parse_args(list(argv))
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else DEFAULT_METRICS
    if args.smooth < 1:
        print("cast-train: error: --smooth must be >= 1", file=sys.stderr)
        return 2
    try:
        paths = plot_run(args.out, metrics, smooth=args.smooth)
    except ValueError as e:
        print(f"cast-train: error: {e}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0
