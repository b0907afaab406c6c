"""CAST diagnostics on torch tensors — the mirror of ``cast_core.diagnostics``.

One flat ``dict[str, float]`` with exactly ``cast_core.diagnostics.DIAGNOSTIC_KEYS``
(see that module for the definition of every key; a ratio with an empty denominator is
0.0, never NaN). Everything is computed on the inputs' device and read back with one
``.tolist()``: the only host sync, apart from the optional value checks. Counts are
exact integers; sums are accumulated in float64 (float32 on devices without float64),
so float32 inputs give the statistics of their own values, not of a float32 sum.
"""

from __future__ import annotations

from typing import Any

import torch

from cast_core.config import CASTConfig, check_step, lam_at, zv_scale_at
from cast_core.diagnostics import DIAGNOSTIC_KEYS

from ._checks import as_config, compute_dtype
from .advantages import _base, _device_of, _prepare_rewards, _prepare_tokens, _token_parts, group_stats

__all__ = ["cast_diagnostics", "DIAGNOSTIC_KEYS"]


def cast_diagnostics(rewards: Any, group_ids: Any, gaps: Any, mask: Any, config: CASTConfig | None = None,
                     step: int = 0, *, validate: bool = True) -> dict[str, float]:
    """Diagnostics of one CAST batch (same inputs as ``cast_advantages``).

    Args:
      rewards: [N] float.   group_ids: [N] int.   gaps: [N, T] float.   mask: [N, T] bool or 0/1.
      config: ``CASTConfig``.   step: int >= 0.   validate: value checks (host syncs).

    Returns:
      dict with exactly the keys of ``DIAGNOSTIC_KEYS`` (in that order), Python floats.
    """
    config = as_config(config)
    step = check_step(step)
    r, gid = _prepare_rewards(rewards, group_ids, _device_of(gaps, rewards), validate)
    g_in, m = _prepare_tokens(r.device, gaps, mask, r.shape[0], validate, name_b="rewards")
    dt = compute_dtype(r, g_in)
    r = r.to(dt)
    st = group_stats(r, gid, config)
    base = _base(r, gid, config, step, st)
    parts = _token_parts(base, g_in.to(dt), m, config, step, validate, keep=True)
    dev = r.device
    acc = torch.float32 if dev.type == "mps" else torch.float64   # MPS has no float64

    def count(x: torch.Tensor) -> torch.Tensor:
        return x.sum().to(acc)

    def total(x: torch.Tensor) -> torch.Tensor:
        return x.to(acc).sum()

    def ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
        return torch.where(den > 0, num / den.clamp_min(1), torch.zeros((), dtype=acc, device=dev))

    n_groups = st.n_groups.to(acc)
    n_ac = count(st.all_correct & st.first)                       # one representative per group
    n_aw = count(st.all_wrong & st.first)
    tok_pos = m & (base > 0)[:, None]
    tok_neg = m & (base < 0)[:, None]
    flips = parts.flipped & m
    correct = st.correct[:, None]
    tok_c, tok_w = m & correct, m & ~correct
    g = parts.g.clamp(-50.0, 50.0)                                # ±inf gaps stay finite in the means
    adv = parts.adv
    n_tok = count(m)
    n_c, n_w = count(tok_c), count(tok_w)
    zero = torch.zeros((), dtype=g.dtype, device=dev)
    clipped = (parts.pre_clip != adv) & m
    disagree = ((adv < 0) & tok_c) | ((adv > 0) & tok_w)
    on_device = {
        "frac_all_correct": ratio(n_ac, n_groups),
        "frac_all_wrong": ratio(n_aw, n_groups),
        "frac_mixed": ratio(n_groups - n_ac - n_aw, n_groups),
        "flip_rate_correct": ratio(count(flips & tok_pos), count(tok_pos)),
        "flip_rate_wrong": ratio(count(flips & tok_neg), count(tok_neg)),
        "teacher_pos_frac_correct": ratio(count((g > 0) & tok_c), n_c),
        "teacher_neg_frac_correct": ratio(count((g < 0) & tok_c), n_c),
        "teacher_pos_frac_wrong": ratio(count((g > 0) & tok_w), n_w),
        "teacher_neg_frac_wrong": ratio(count((g < 0) & tok_w), n_w),
        "gap_mean_correct": ratio(total(torch.where(tok_c, g, zero)), n_c),
        "gap_mean_wrong": ratio(total(torch.where(tok_w, g, zero)), n_w),
        "sign_disagree_frac": ratio(count(disagree), n_tok),
        "adv_clip_frac": ratio(count(clipped), n_tok),
        "adv_mean": ratio(total(adv), n_tok),
        "adv_abs_mean": ratio(total(adv.abs()), n_tok),
    }
    host = dict(zip(on_device, torch.stack(list(on_device.values())).tolist()))   # the one device -> host read
    host["lam"] = float(lam_at(config, step))
    host["zv_scale"] = float(zv_scale_at(config, step))
    return {key: host[key] for key in DIAGNOSTIC_KEYS}
