"""The comparison's PNGs, drawn (matplotlib, Agg) from the per-seed series of ``summary.curves``.

Lines are the mean over seeds, bands the min..max over seeds; step metrics are a
trailing :data:`SMOOTH_WINDOW`-step moving average when a run has :data:`SMOOTH_MIN_STEPS`
or more steps. Teacher diagnostics are drawn only at lagged-teacher steps.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

__all__ = ["REPORT_NAME", "PLOTS", "SMOOTH_WINDOW", "SMOOTH_MIN_STEPS", "plot_curves", "plot_entries"]

REPORT_NAME = "method-comparison"
SMOOTH_WINDOW = 5
SMOOTH_MIN_STEPS = 15
# The plots, in report order: key (file method-comparison-<key>.png) -> caption ({arm}: the teacher arm).
PLOTS = {
    "eval-accuracy": "Greedy eval accuracy vs step",
    "reward": "Mean training reward",
    "zero-variance": "Zero-variance groups: all-correct (top), all-wrong (bottom)",
    "flip-rates": "{arm} flip rates: answer-free teacher vs what the privileged teacher would flip",
    "gaps": "Gap diagnostics of the {arm} runs, correct vs wrong completions, answer-free vs privileged teacher",
}
_COLORS = {"grpo": "#4c72b0", "rlsd": "#55a868", "rl_zvp": "#8172b2", "cast": "#c44e52", "opsd": "#937860",
           "cast_contract": "#dd8452"}
_SPARE = ("#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd", "#1f77b4", "#ff7f0e")
_TEACHER_COLORS = {"answer_free": "#c44e52", "privileged": "#2a9d8f"}


def plot_entries(paths: Sequence[Path], teacher_arm: Optional[str]) -> list[dict[str, str]]:
    """``[{"file", "key", "caption"}]`` of written plot files, for the summary."""
    out = []
    for p in paths:
        key = Path(p).stem[len(REPORT_NAME) + 1:]
        out.append({"file": Path(p).name, "key": key, "caption": PLOTS.get(key, key).format(arm=teacher_arm or "CAST")})
    return out


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing NaN-aware moving average (window 1: unchanged)."""
    if window <= 1 or y.size == 0:
        return y
    out = np.full_like(y, np.nan)
    for i in range(y.size):
        seg = y[max(0, i - window + 1):i + 1]
        seg = seg[np.isfinite(seg)]
        if seg.size:
            out[i] = seg.mean()
    return out


def _window(n_steps: int) -> int:
    return 1 if n_steps < SMOOTH_MIN_STEPS else SMOOTH_WINDOW


def _stack(curves: Sequence[Sequence[Sequence[Any]]]) -> tuple[np.ndarray, np.ndarray]:
    """Align per-seed ``[steps, values]`` curves on their common steps → ``(steps [S], values [seeds, S])``."""
    curves = [(np.asarray(s, dtype=np.int64), np.asarray(v, dtype=np.float64)) for s, v in curves]
    common = sorted(set.intersection(*(set(s.tolist()) for s, _ in curves))) if curves else []
    steps = np.array(common, dtype=np.int64)
    vals = np.stack([np.array([v[list(s).index(t)] for t in common], dtype=np.float64) for s, v in curves]) \
        if common else np.zeros((len(curves), 0))
    return steps, vals


def _band(ax, steps: np.ndarray, vals: np.ndarray, color: str, label: str, linestyle: str = "-") -> None:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(vals, axis=0)
        lo, hi = np.nanmin(vals, axis=0), np.nanmax(vals, axis=0)
    ax.plot(steps, mean, color=color, label=label, linestyle=linestyle, linewidth=1.6)
    if vals.shape[0] > 1:
        ax.fill_between(steps, lo, hi, color=color, alpha=0.15, linewidth=0)


def _styles(arms: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """Arm -> (colour, line style): a method's own colour, dashed for a variant arm (name != method)."""
    spare = iter(_SPARE)
    out = {}
    for a in arms:
        color = _COLORS.get(a["name"]) or next(spare, "k")
        out[a["name"]] = (color, "-" if a["name"] == a["method"] else "--")
    return out


def plot_curves(curves: Mapping[str, Any], arms: Sequence[Mapping[str, Any]], report_dir: str | os.PathLike,
                title_suffix: str = "") -> list[Path]:
    """Write the comparison PNGs into ``report_dir``; returns their paths (in :data:`PLOTS` order).

    Args:
        curves: ``summary.curves`` output (or the same dict read back from JSON).
        arms: the grid's arms as dicts with ``name`` and ``method`` (legend order and styles).
        report_dir: output folder.   title_suffix: appended to each panel title.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    presets = list(curves)
    ncol = len(presets)
    styles = _styles(arms)
    paths: list[Path] = []

    def finish(fig, name: str) -> None:
        fig.tight_layout()
        path = report_dir / f"{REPORT_NAME}-{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    def arm_panel(ax, preset: str, key: str, ylabel: str) -> None:
        by_arm = curves[preset]["arms"]
        for a in arms:
            if a["name"] not in by_arm:
                continue
            steps, vals = _stack(list(by_arm[a["name"]][key].values()))
            if key != "eval_accuracy" and vals.size:
                vals = np.stack([_smooth(v, _window(steps.size)) for v in vals])
            color, style = styles[a["name"]]
            _band(ax, steps, vals, color, a["name"], style)
        ax.set_title(f"{preset}{title_suffix}", fontsize=10)
        ax.set_xlabel("RL step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        # Below the axes, so the legend never hides a curve (five arms fill the panel).
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(5, max(1, len(by_arm))),
                  frameon=False)

    def figure(rows: int, height: float):
        return plt.subplots(rows, ncol, figsize=(5.2 * ncol, height), squeeze=False)

    fig, axes = figure(1, 3.8)
    for j, preset in enumerate(presets):
        arm_panel(axes[0, j], preset, "eval_accuracy", "greedy eval accuracy")
    finish(fig, "eval-accuracy")

    fig, axes = figure(1, 3.8)
    for j, preset in enumerate(presets):
        arm_panel(axes[0, j], preset, "reward_mean", "train reward (mean of N)")
    finish(fig, "reward")

    fig, axes = figure(2, 6.6)
    for j, preset in enumerate(presets):
        arm_panel(axes[0, j], preset, "frac_all_correct", "frac. all-correct groups")
        arm_panel(axes[1, j], preset, "frac_all_wrong", "frac. all-wrong groups")
    finish(fig, "zero-variance")

    if not any(curves[p]["teacher"] for p in presets):
        return paths

    def teacher_panel(ax, preset: str, key_pairs: Sequence[tuple[str, str, str]], ylabel: str,
                      hline: Optional[float] = None, teachers: Sequence[str] = ("answer_free", "privileged")) -> None:
        by_teacher = curves[preset]["teacher"]
        for teacher in teachers:
            for key, style, label in key_pairs:
                series = list(by_teacher.get(teacher, {}).get(key, {}).values())
                if not series:
                    continue
                steps, vals = _stack(series)
                if vals.size:
                    vals = np.stack([_smooth(v, _window(steps.size)) for v in vals])
                _band(ax, steps, vals, _TEACHER_COLORS[teacher], f"{teacher.replace('_', '-')} {label}", style)
        if hline is not None:
            ax.axhline(hline, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(f"{preset}: {curves[preset]['teacher_arm']} runs{title_suffix}", fontsize=10)
        ax.set_xlabel("RL step (lagged-teacher steps only)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)

    fig, axes = figure(2, 6.6)
    for j, preset in enumerate(presets):
        teacher_panel(axes[0, j], preset, [("flip_rate_correct", "-", "down-flips (correct)")],
                      "flip rate, correct completions")
        teacher_panel(axes[1, j], preset, [("flip_rate_wrong", "-", "up-flips (wrong)")],
                      "flip rate, wrong completions")
    finish(fig, "flip-rates")

    # The two teachers' mean gaps differ by orders of magnitude, so each gets its own row.
    fig, axes = figure(4, 12.4)
    gap_pairs = [("gap_mean_correct", "-", "correct"), ("gap_mean_wrong", "--", "wrong")]
    for j, preset in enumerate(presets):
        teacher_panel(axes[0, j], preset, gap_pairs, "mean token gap g (answer-free)", hline=0.0,
                      teachers=("answer_free",))
        teacher_panel(axes[1, j], preset, gap_pairs, "mean token gap g* (privileged)", hline=0.0,
                      teachers=("privileged",))
        teacher_panel(axes[2, j], preset, [("teacher_pos_frac_correct", "-", "correct"),
                                           ("teacher_pos_frac_wrong", "--", "wrong")],
                      "frac. tokens with g > 0")
        teacher_panel(axes[3, j], preset, [("seq_gap_auc", "-", "AUC")], "AUC: sum g, correct vs wrong", hline=0.5)
    finish(fig, "gaps")
    return paths
