"""CAST advantages: verifier-signed base advantages shaped per token by a self-teacher.

Reference: Li, Xue, Guo, Yuan, Hu, Ma, "Non-Privileged Clipped Asymmetric Self-Teaching
with Advantage Flipping for GRPO" (CAST), arXiv 2606.00172; definitions in `spec/CAST.md`.

Step 1 (``base_advantages``). Completions are grouped by prompt; c_i = [r_i > threshold].
  all correct: b_i = +B+·s       all wrong: b_i = −B−·s      (s = clip(λ(step)/λ0, 0, 1))
  mixed:       b_i = (r_i − μ_g) / max(σ, eps)   (σ: group std, batch std, or 1 for "none")

Step 2 (``token_advantages``). With W(x, lo, hi) = max(0, 1 + λ·(clip(x, lo, hi) − 1)):
  b > 0, no flip:            Â = b·W(e^g,  lc, hc)
  b > 0, flip_correct, g<0:  Â = −|b|·W(e^−g, max(1, lw), hw)      (down-flip)
  b < 0, no flip:            Â = b·W(e^−g, lw, hw)
  b < 0, flip_wrong,  g>0:   Â = +|b|·W(e^g,  max(1, lc), hc)      (up-flip)
  then Â = clip(Â, adv_clip); Â = 0 where mask = 0 or b = 0.

Implementation note: with σ = sign(b), every case is ``x = exp(z)`` with ``z = σ·g``,
negated where the token flips (so flipped tokens use ``|g|``); the clip range is the
row side's own range or, for flipped tokens, the other side's range floored at 1; the
sign of Â is σ, negated where flipped. That turns four branches into one pass of
``np.where`` over [N, T] with per-row constants, and no Python loop.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._checks import (as_config, as_float_matrix, as_float_vector, as_group_ids, as_mask,
                      first_index)
from .config import CASTConfig, check_step, lam_at, zv_scale_at

__all__ = ["base_advantages", "token_advantages", "cast_advantages", "group_stats", "GroupStats"]


class GroupStats(NamedTuple):
    """Per-completion view of the group statistics (all [N])."""

    inverse: np.ndarray      # [N] int: dense group index of each completion
    n_groups: int
    correct: np.ndarray      # [N] bool: r_i > correct_threshold
    all_correct: np.ndarray  # [N] bool: the completion's group is all correct
    all_wrong: np.ndarray    # [N] bool: the completion's group is all wrong
    mean: np.ndarray         # [N] float: the group mean μ_g of each completion
    std: np.ndarray          # [N] float: the group (or batch) std used to scale


def group_stats(rewards: np.ndarray, group_ids: np.ndarray, config: CASTConfig) -> GroupStats:
    """Group means, stds and correctness classes, gathered back to [N] (validated inputs)."""
    _, inv = np.unique(group_ids, return_inverse=True)
    inv = inv.reshape(-1)                                         # [N], numpy 2 keeps input shape
    n_groups = int(inv.max()) + 1
    counts = np.bincount(inv, minlength=n_groups)                 # [G]
    mean_g = np.bincount(inv, weights=rewards, minlength=n_groups) / counts   # [G]
    mean = mean_g[inv]                                            # [N]
    correct = rewards > config.correct_threshold                  # [N]
    n_correct = np.bincount(inv, weights=correct, minlength=n_groups)  # [G]
    all_correct = (n_correct == counts)[inv]
    all_wrong = (n_correct == 0)[inv]
    ddof = config.std_ddof
    if config.scale == "group":
        sq = np.bincount(inv, weights=(rewards - mean) ** 2, minlength=n_groups)
        # Mixed groups have >= 2 members, so counts - ddof >= 1 wherever the std is used.
        std = np.sqrt(sq / np.maximum(counts - ddof, 1))[inv]
    elif config.scale == "batch":
        n = rewards.shape[0]
        std_b = np.sqrt(np.sum((rewards - rewards.mean()) ** 2) / max(n - ddof, 1))
        std = np.full_like(rewards, std_b)
    else:  # "none"
        std = np.ones_like(rewards)
    return GroupStats(inv, n_groups, correct, all_correct, all_wrong, mean, std)


def base_advantages(rewards: Any, group_ids: Any, config: CASTConfig | None = None,
                    step: int = 0) -> np.ndarray:
    """Step 1: one base advantage per completion.

    Args:
      rewards: [N] float, finite verifier scores.
      group_ids: [N] int, the prompt each completion answers (any integers; groups need
        not be contiguous or equal-sized).
      config: ``CASTConfig`` (default ``CASTConfig()``).
      step: int >= 0, the optimizer step (λ schedule, zero-variance scaling).

    Returns:
      b: [N] float64. All-correct groups +B+·s, all-wrong −B−·s, mixed groups the
      (scaled) centred reward.
    """
    config = as_config(config)
    step = check_step(step)
    r = as_float_vector("rewards", rewards, nonempty=True)
    st = group_stats(r, as_group_ids(group_ids, r.shape[0]), config)
    return base_from_stats(r, st, config, step)


def base_from_stats(rewards: np.ndarray, st: GroupStats, config: CASTConfig, step: int) -> np.ndarray:
    """Step 1 from already computed group statistics (validated rewards [N] -> b [N])."""
    s = zv_scale_at(config, step)
    mixed = (rewards - st.mean) / np.maximum(st.std, config.eps)  # [N]
    return np.where(st.all_correct, config.zv_pos_base * s,
                    np.where(st.all_wrong, -config.zv_neg_base * s, mixed))


class _TokenParts(NamedTuple):
    """Intermediate results of Step 2, shared with `cast_core.diagnostics`."""

    adv: np.ndarray        # [N, T] final advantages
    pre_clip: np.ndarray | None   # [N, T] advantages before adv_clip (masked positions 0)
    flipped: np.ndarray | None    # [N, T] bool, tokens whose sign flipped (inside the mask)
    g: np.ndarray | None          # [N, T] gaps after masking (0 outside) and the deadband
    mask: np.ndarray       # [N, T] bool


def _token_parts(base: Any, gaps: Any, mask: Any, config: CASTConfig | None,
                 step: int, with_parts: bool = False) -> _TokenParts:
    config = as_config(config)
    step = check_step(step)
    b = as_float_vector("base", base, nonempty=True)
    n = b.shape[0]
    g_in = as_float_matrix("gaps", gaps)
    if g_in.shape[0] != n:
        raise ValueError(f"gaps: has {g_in.shape[0]} rows but base has {n}")
    m = as_mask(mask, g_in.shape)
    lam = lam_at(config, step)

    # Padding is never read: replace it before any arithmetic so NaN/inf there cannot leak.
    g = np.where(m, g_in, 0.0)                                    # [N, T], owned: updated in place below
    with np.errstate(over="ignore", invalid="ignore"):  # exp(±inf), exp(>709) saturate; the clips bound them
        # One reduction finds NaN cheaply; a NaN sum can also come from +inf + -inf, so confirm.
        if np.isnan(np.add.reduce(g, axis=None)) and np.isnan(g).any():
            raise ValueError(f"gaps: NaN inside the mask at index {first_index(np.isnan(g))}")
        lo_db, hi_db = config.deadband
        if lo_db < hi_db:
            e = np.exp(g)
            g[(e >= lo_db) & (e <= hi_db)] = 0.0
        g_seen = g.copy() if with_parts else None

        # Per-row constants [N, 1]. Rows with b = 0 take the negative side's; |b| = 0 zeroes them.
        pos = (b > 0)[:, None]
        sgn = np.where(pos, 1.0, -1.0)
        flip_row = np.where(pos, config.flip_correct, config.flip_wrong)
        (lc, hc), (lw, hw) = config.w_clip_correct, config.w_clip_wrong
        lo_own, hi_own = np.where(pos, lc, lw), np.where(pos, hc, hw)
        lo_flip, hi_flip = np.where(pos, max(1.0, lw), max(1.0, lc)), np.where(pos, hw, hc)

        # The branch choice is data-dependent and unpredictable, so it is done with arithmetic
        # on f = 1.0 where a token flips (not with np.where, several times slower on it).
        all_flip = bool(flip_row.all())
        # Every row flip-enabled: x = exp(|z|) >= 1, so lower clip bounds <= 1 cannot bind.
        lows_idle = all_flip and max(lo_own.max(), lo_flip.max()) <= 1.0
        z = np.multiply(g, sgn, out=g)                            # [N, T]: > 0 where the teacher agrees with b
        flipped = z < 0                                           # [N, T]; z = 0 in padding, never flipped
        if not all_flip:
            flipped &= flip_row
        f = flipped.view(np.uint8).astype(np.float64)             # [N, T] 0/1
        # Flipped tokens see exp(−z) = exp(|g|), the others exp(z). With every row flip-enabled
        # the exponent is |z| everywhere; else z·(1 − 2f). In place: z becomes the ratio x.
        if all_flip:
            np.abs(z, out=z)
        else:
            z *= 1.0 - 2.0 * f
        x = np.exp(z, out=z)                                      # [N, T]
        # Clip x to [lo, hi], the flipped tokens to the other side's range: bound = own + f·(flip − own),
        # built in one reused buffer; lower bounds are skipped when they cannot bind.
        buf = np.empty_like(x)
        if not lows_idle:
            np.maximum(x, np.add(np.multiply(f, lo_flip - lo_own, out=buf), lo_own, out=buf), out=x)
        np.minimum(x, np.add(np.multiply(f, hi_flip - hi_own, out=buf), hi_own, out=buf), out=x)
        # W = max(0, 1 + λ(x − 1)), in place. x >= min(1, every hi) here, so when 1 + λ(that − 1) >= 0
        # the max cannot bind and is skipped.
        w = np.add(np.multiply(np.subtract(x, 1.0, out=x), lam, out=x), 1.0, out=x)
        x_floor = min(1.0, float(hi_own.min()), float(hi_flip.min()))
        if not lows_idle or 1.0 + lam * (x_floor - 1.0) < 0.0:
            np.maximum(w, 0.0, out=w)
    # Â = W·b·(1 − 2f) = W·(b − 2f·b): flipped tokens take the other sign; padding (m = 0) is exactly 0.
    signed_b = np.add(np.multiply(f, -2.0 * b[:, None], out=f), b[:, None], out=f)   # [N, T]
    pre = np.multiply(w, signed_b, out=w)
    np.multiply(pre, m, out=pre)
    if with_parts:
        return _TokenParts(np.clip(pre, *config.adv_clip), pre, flipped, g_seen, m)
    return _TokenParts(np.clip(pre, *config.adv_clip, out=pre), None, None, None, m)


def token_advantages(base: Any, gaps: Any, mask: Any, config: CASTConfig | None = None,
                     step: int = 0) -> np.ndarray:
    """Step 2: shape base advantages per token with the self-teacher's gaps.

    Args:
      base: [N] float, finite base advantages (from ``base_advantages``).
      gaps: [N, T] float, g = log π_teacher(y_t) − log π_old(y_t). ±inf is legal inside
        the mask; outside it the values are never read (NaN padding is fine).
      mask: [N, T] bool or 0/1, real completion tokens.
      config: ``CASTConfig`` (default ``CASTConfig()``).
      step: int >= 0 (λ schedule).

    Returns:
      [N, T] float64 token advantages, exactly 0 where mask = 0 or base = 0.
    """
    return _token_parts(base, gaps, mask, config, step).adv


def cast_advantages(rewards: Any, group_ids: Any, gaps: Any, mask: Any,
                    config: CASTConfig | None = None, step: int = 0) -> np.ndarray:
    """CAST token advantages: ``token_advantages(base_advantages(rewards, group_ids), gaps, mask)``.

    Args:
      rewards: [N] float, finite.   group_ids: [N] int.
      gaps: [N, T] float (see ``token_advantages``).   mask: [N, T] bool or 0/1.
      config: ``CASTConfig``.   step: int >= 0.

    Returns:
      [N, T] float64.
    """
    r = as_float_vector("rewards", rewards)
    g = as_float_matrix("gaps", gaps)
    if g.shape[0] != r.shape[0]:
        raise ValueError(f"gaps: has {g.shape[0]} rows but rewards has {r.shape[0]}")
    base = base_advantages(r, group_ids, config, step)
    return token_advantages(base, g, mask, config, step)
