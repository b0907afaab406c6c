"""CAST advantages on torch tensors — the mirror of ``cast_core.advantages``.

Same definitions, names and signatures as the NumPy reference (see its module docstring
and ``spec/CAST.md``); tested to agree with it through one comparator. Differences that
come from living on an accelerator:

- Output is on the input's device. float64 in → float64 out; float32/bf16/fp16 in →
  computed and returned in float32 (``gaps`` and ``rewards`` together decide).
- Groups are found without ``torch.unique`` (whose output size would force a host sync):
  sort the ids, mark where they change, cumsum → dense ids; per-group buffers are sized N
  (there are at most N groups). Nothing in the math reads a value back to the host;
  only the optional value checks (``validate=True``) do, once each.
- Works under ``no_grad``/``inference_mode`` and ``torch.compile``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from cast_core.config import CASTConfig, check_step, lam_at, zv_scale_at

from ._checks import (as_config, as_float_matrix, as_float_vector, as_group_ids, as_mask,
                      compute_dtype, raise_if_any)

__all__ = ["base_advantages", "token_advantages", "cast_advantages", "group_stats", "GroupStats"]


class GroupStats(NamedTuple):
    inverse: torch.Tensor      # [N] long, dense group index (0..G-1 in sorted-id order)
    n_groups: torch.Tensor     # [] long (a tensor: reading it would sync)
    correct: torch.Tensor      # [N] bool
    all_correct: torch.Tensor  # [N] bool
    all_wrong: torch.Tensor    # [N] bool
    mean: torch.Tensor         # [N]
    std: torch.Tensor          # [N]
    first: torch.Tensor        # [N] bool, True for one representative per group


def _dense_groups(gid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Dense group index per element, the group count, and one-representative flags."""
    n = gid.shape[0]
    sorted_ids, order = torch.sort(gid, stable=True)
    new = torch.ones(n, dtype=torch.bool, device=gid.device)
    new[1:] = sorted_ids[1:] != sorted_ids[:-1]
    dense_sorted = torch.cumsum(new, 0) - 1                       # [N]
    inverse = torch.empty_like(dense_sorted)
    inverse[order] = dense_sorted
    first = torch.zeros(n, dtype=torch.bool, device=gid.device)
    first[order] = new
    return inverse, new.sum(), first


def group_stats(rewards: torch.Tensor, group_ids: torch.Tensor, config: CASTConfig) -> GroupStats:
    """Group means, stds and correctness classes gathered back to [N] (validated inputs)."""
    n = rewards.shape[0]
    inv, n_groups, first = _dense_groups(group_ids)
    zeros = torch.zeros(n, dtype=rewards.dtype, device=rewards.device)
    counts = zeros.index_add(0, inv, torch.ones_like(rewards))    # [N] (first G entries used)
    mean = (zeros.index_add(0, inv, rewards) / counts.clamp_min(1))[inv]   # [N]
    correct = rewards > config.correct_threshold
    n_correct = zeros.index_add(0, inv, correct.to(rewards.dtype))
    all_correct = (n_correct == counts)[inv]
    all_wrong = (n_correct == 0)[inv]
    ddof = config.std_ddof
    if config.scale == "group":
        sq = zeros.index_add(0, inv, (rewards - mean) ** 2)
        # Mixed groups have >= 2 members, so counts - ddof >= 1 wherever the std is used.
        std = torch.sqrt(sq / (counts - ddof).clamp_min(1))[inv]
    elif config.scale == "batch":
        std_b = torch.sqrt(((rewards - rewards.mean()) ** 2).sum() / max(n - ddof, 1))
        std = std_b.expand(n)
    else:
        std = torch.ones_like(rewards)
    return GroupStats(inv, n_groups, correct, all_correct, all_wrong, mean, std, first)


def _prepare_rewards(rewards: Any, group_ids: Any, device, validate: bool, dtype=None):
    r = as_float_vector("rewards", rewards, device=device, validate=validate)
    if r.shape[0] == 0:
        raise ValueError("rewards: empty batch (N = 0)")
    gid = as_group_ids(group_ids, r.shape[0], device=r.device, validate=validate)
    return r.to(dtype or compute_dtype(r)), gid


def base_advantages(rewards: Any, group_ids: Any, config: CASTConfig | None = None, step: int = 0,
                    *, validate: bool = True) -> torch.Tensor:
    """Step 1: base advantage per completion (see ``cast_core.base_advantages``).

    Args:
      rewards: [N] float tensor (or array-like), finite.
      group_ids: [N] integer tensor, any integers.
      config: ``CASTConfig`` (default ``CASTConfig()``).   step: int >= 0.
      validate: check values (one host sync); shapes and dtypes are always checked.

    Returns:
      [N] tensor on ``rewards``' device, float64 for float64 input, else float32.
    """
    config = as_config(config)
    step = check_step(step)
    r, gid = _prepare_rewards(rewards, group_ids, None, validate)
    return _base(r, gid, config, step)


def _base(r: torch.Tensor, gid: torch.Tensor, config: CASTConfig, step: int) -> torch.Tensor:
    st = group_stats(r, gid, config)
    s = zv_scale_at(config, step)
    mixed = (r - st.mean) / st.std.clamp_min(config.eps)
    pos = torch.full_like(r, config.zv_pos_base * s)
    neg = torch.full_like(r, -config.zv_neg_base * s)
    return torch.where(st.all_correct, pos, torch.where(st.all_wrong, neg, mixed))


class _TokenParts(NamedTuple):
    adv: torch.Tensor        # [N, T] final advantages
    pre_clip: torch.Tensor   # [N, T] before adv_clip (0 outside the mask)
    flipped: torch.Tensor    # [N, T] bool
    g: torch.Tensor          # [N, T] gaps after masking and the deadband
    mask: torch.Tensor       # [N, T] bool


def _token_parts(b: torch.Tensor, gaps: torch.Tensor, m: torch.Tensor, config: CASTConfig,
                 step: int, validate: bool) -> _TokenParts:
    """Step 2 on validated, same-device, same-dtype tensors: b [N], gaps [N, T], m [N, T] bool."""
    lam = lam_at(config, step)
    g = torch.where(m, gaps, torch.zeros((), dtype=gaps.dtype, device=gaps.device))   # [N, T]
    if validate:
        raise_if_any(torch.isnan(g), "gaps: NaN inside the mask at index {index}")
    lo_db, hi_db = config.deadband
    if lo_db < hi_db:
        e = torch.exp(g)
        g = torch.where((e >= lo_db) & (e <= hi_db), torch.zeros_like(g), g)

    pos = b > 0                                                   # [N]
    one = torch.ones_like(b)
    sgn = torch.where(pos, one, -one)[:, None]                    # [N, 1]
    flip_row = (pos & config.flip_correct) | (~pos & config.flip_wrong)   # [N]
    z = sgn * g                                                   # [N, T]
    flipped = (z < 0) & flip_row[:, None]                         # [N, T]
    x = torch.exp(torch.where(flipped, -z, z))                    # [N, T]

    (lc, hc), (lw, hw) = config.w_clip_correct, config.w_clip_wrong
    def per_row(if_pos: float, if_neg: float) -> torch.Tensor:  # [N, 1], built in g's dtype (no float32 detour)
        return torch.where(pos, torch.full_like(b, if_pos), torch.full_like(b, if_neg))[:, None]

    lo_own, hi_own = per_row(lc, lw), per_row(hc, hw)
    lo_flip, hi_flip = per_row(max(1.0, lw), max(1.0, lc)), per_row(hw, hc)
    xc = torch.clamp(x, torch.where(flipped, lo_flip, lo_own), torch.where(flipped, hi_flip, hi_own))
    w = (1.0 + lam * (xc - 1.0)).clamp_min(0.0)                   # [N, T]
    signed_b = b.abs()[:, None] * torch.where(flipped, -sgn, sgn)  # [N, T]
    pre = torch.where(m, w * signed_b, torch.zeros((), dtype=g.dtype, device=g.device))
    adv = pre.clamp(*config.adv_clip)
    return _TokenParts(adv, pre, flipped, g, m)


def _prepare_tokens(b: torch.Tensor, gaps: Any, mask: Any, validate: bool, name_b: str = "base"):
    g = as_float_matrix("gaps", gaps, device=b.device)
    if g.shape[0] != b.shape[0]:
        raise ValueError(f"gaps: has {g.shape[0]} rows but {name_b} has {b.shape[0]}")
    m = as_mask(mask, tuple(g.shape), device=b.device, validate=validate)
    return g, m


def token_advantages(base: Any, gaps: Any, mask: Any, config: CASTConfig | None = None, step: int = 0,
                     *, validate: bool = True) -> torch.Tensor:
    """Step 2: token advantages from base advantages and teacher gaps (see ``cast_core``).

    Args:
      base: [N] float tensor, finite.
      gaps: [N, T] float tensor, g = log π_teacher − log π_old; ±inf legal in the mask,
        padding never read.
      mask: [N, T] bool or 0/1.   config: ``CASTConfig``.   step: int >= 0.
      validate: check values (host sync); see ``cast_torch._checks``.

    Returns:
      [N, T] tensor, exactly 0 where mask = 0 or base = 0.
    """
    config = as_config(config)
    step = check_step(step)
    b = as_float_vector("base", base, validate=validate)
    if b.shape[0] == 0:
        raise ValueError("base: empty batch (N = 0)")
    g, m = _prepare_tokens(b, gaps, mask, validate)
    dtype = compute_dtype(b, g)
    return _token_parts(b.to(dtype), g.to(dtype), m, config, step, validate).adv


def cast_advantages(rewards: Any, group_ids: Any, gaps: Any, mask: Any, config: CASTConfig | None = None,
                    step: int = 0, *, validate: bool = True) -> torch.Tensor:
    """CAST token advantages [N, T] (see ``cast_core.cast_advantages``).

    Args:
      rewards: [N] float.   group_ids: [N] int.   gaps: [N, T] float.   mask: [N, T] bool or 0/1.
      config: ``CASTConfig``.   step: int >= 0.   validate: value checks (one host sync each).

    Returns:
      [N, T] tensor on the inputs' device; float64 if rewards or gaps are float64, else float32.
    """
    config = as_config(config)
    step = check_step(step)
    r, gid = _prepare_rewards(rewards, group_ids, None, validate)
    g, m = _prepare_tokens(r, gaps, mask, validate, name_b="rewards")
    dtype = compute_dtype(r, g)
    b = _base(r.to(dtype), gid, config, step)
    return _token_parts(b, g.to(dtype), m, config, step, validate).adv
