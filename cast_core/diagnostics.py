"""CAST diagnostics: one flat dict of floats with stable names, for logging every step.

Keys (all fractions are in [0, 1]; a ratio with an empty denominator is 0.0, never NaN):
  frac_all_correct, frac_all_wrong, frac_mixed   share of groups in each class
  flip_rate_correct    down-flips / masked tokens of positive-base rows
  flip_rate_wrong      up-flips / masked tokens of negative-base rows
  teacher_pos_frac_correct, teacher_neg_frac_correct   share of masked tokens of correct
  teacher_pos_frac_wrong,   teacher_neg_frac_wrong     (resp. wrong) completions with g > 0 / g < 0
  gap_mean_correct, gap_mean_wrong   mean g over those tokens (g clamped to ±50 so ±inf
                                     gaps stay finite; the paper's motivating diagnostic)
  sign_disagree_frac   share of masked tokens whose Â sign disagrees with the verifier
                       (Â < 0 on a correct completion or Â > 0 on a wrong one)
  adv_clip_frac        share of masked tokens whose advantage adv_clip changed
  adv_mean, adv_abs_mean   mean of Â and |Â| over masked tokens
  lam, zv_scale        λ(step) and s(step)
The gaps are read after the deadband, as the estimator sees them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import as_config, as_float_vector, as_group_ids
from .advantages import _token_parts, base_from_stats, group_stats
from .config import CASTConfig, check_step, lam_at, zv_scale_at

__all__ = ["cast_diagnostics", "DIAGNOSTIC_KEYS"]

DIAGNOSTIC_KEYS = (
    "frac_all_correct", "frac_all_wrong", "frac_mixed", "flip_rate_correct", "flip_rate_wrong",
    "teacher_pos_frac_correct", "teacher_neg_frac_correct", "teacher_pos_frac_wrong",
    "teacher_neg_frac_wrong", "gap_mean_correct", "gap_mean_wrong", "sign_disagree_frac",
    "adv_clip_frac", "adv_mean", "adv_abs_mean", "lam", "zv_scale",
)


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else 0.0


def cast_diagnostics(rewards: Any, group_ids: Any, gaps: Any, mask: Any,
                     config: CASTConfig | None = None, step: int = 0) -> dict[str, float]:
    """Diagnostics of one CAST batch (same inputs as ``cast_advantages``).

    Args: rewards [N] float; group_ids [N] int; gaps [N, T] float; mask [N, T]; config; step.
    Returns: dict with exactly the keys in ``DIAGNOSTIC_KEYS``, values Python floats.
    """
    config = as_config(config)
    step = check_step(step)
    r = as_float_vector("rewards", rewards, nonempty=True)
    st = group_stats(r, as_group_ids(group_ids, r.shape[0]), config)
    base = base_from_stats(r, st, config, step)
    parts = _token_parts(base, gaps, mask, config, step, with_parts=True)
    m = parts.mask
    n_groups = st.n_groups
    # One representative per group: count groups, not completions.
    rep = np.unique(st.inverse, return_index=True)[1]
    n_ac = int(st.all_correct[rep].sum())
    n_aw = int(st.all_wrong[rep].sum())

    pos_rows, neg_rows = (base > 0)[:, None], (base < 0)[:, None]
    tok_pos = m & pos_rows
    tok_neg = m & neg_rows
    flips = parts.flipped & m
    correct = st.correct[:, None]
    tok_c, tok_w = m & correct, m & ~correct
    g = np.clip(parts.g, -50.0, 50.0)
    n_tok = int(m.sum())
    adv = parts.adv
    clipped = (parts.pre_clip != adv) & m
    disagree = ((adv < 0) & tok_c) | ((adv > 0) & tok_w)
    return {
        "frac_all_correct": _ratio(n_ac, n_groups),
        "frac_all_wrong": _ratio(n_aw, n_groups),
        "frac_mixed": _ratio(n_groups - n_ac - n_aw, n_groups),
        "flip_rate_correct": _ratio((flips & tok_pos).sum(), tok_pos.sum()),
        "flip_rate_wrong": _ratio((flips & tok_neg).sum(), tok_neg.sum()),
        "teacher_pos_frac_correct": _ratio(((g > 0) & tok_c).sum(), tok_c.sum()),
        "teacher_neg_frac_correct": _ratio(((g < 0) & tok_c).sum(), tok_c.sum()),
        "teacher_pos_frac_wrong": _ratio(((g > 0) & tok_w).sum(), tok_w.sum()),
        "teacher_neg_frac_wrong": _ratio(((g < 0) & tok_w).sum(), tok_w.sum()),
        "gap_mean_correct": _ratio(np.where(tok_c, g, 0.0).sum(), tok_c.sum()),
        "gap_mean_wrong": _ratio(np.where(tok_w, g, 0.0).sum(), tok_w.sum()),
        "sign_disagree_frac": _ratio(disagree.sum(), n_tok),
        "adv_clip_frac": _ratio(clipped.sum(), n_tok),
        "adv_mean": _ratio(adv.sum(), n_tok),
        "adv_abs_mean": _ratio(np.abs(adv).sum(), n_tok),
        "lam": float(lam_at(config, step)),
        "zv_scale": float(zv_scale_at(config, step)),
    }
