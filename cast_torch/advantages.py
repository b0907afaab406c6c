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
- Works under ``no_grad``/``inference_mode`` and ``torch.compile``. The inputs are
  read, never differentiated: the advantages are stop-gradient constants.
- A float32 tensor compared with a Python float would round the float to float32
  (``float32(0.1) > 0.1`` is False in torch, True in numpy); the comparisons with config
  thresholds go through ``_gt``/``_ge``/``_le``, which decide exactly as float64 would.
- The token pass is written for few [N, T] buffers (fresh ones cost page faults on CPU
  and bandwidth on GPU): it works in place in the masked-gaps buffer plus one buffer
  that holds the token sign and, in turn, each per-token clip bound. It avoids
  ``torch.where`` on [N, T] except to clear the padding (CPU ``where`` is ~4x slower than
  an arithmetic pass): the token sign is one factor k in {+1, −1, 0} (own side, flipped,
  padding), and the per-token choice between the two sides' clip bounds is one fused
  ``mid + k·(±half)``, used only where that reproduces both bounds exactly. On CPU in
  float64 the token step equals the NumPy reference bit for bit for the default ranges
  (and to the last bit otherwise); the base step can differ in the last bit (torch's CPU
  float64 ``sqrt`` is not always correctly rounded, and the "batch" mean sums in another
  order). The tests compare at 1e-12.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

import torch

from cast_core.config import CASTConfig, check_step, lam_at, zv_scale_at

from ._checks import (as_config, as_float_matrix, as_float_vector, as_group_ids, as_mask,
                      compute_dtype, raise_if_any)

__all__ = ["base_advantages", "token_advantages", "cast_advantages", "group_stats", "GroupStats"]


def _f32(v: float) -> float:
    """``v`` rounded to the nearest float32 (±inf beyond its range), as a Python float."""
    return struct.unpack("f", struct.pack("f", v))[0]


def _gt(t: torch.Tensor, v: float) -> torch.Tensor:
    """``t > v`` decided exactly for a float64 ``v``, also when ``t`` is float32.

    For float32 t, let v32 be v rounded to float32. No float32 lies strictly between v
    and v32 (v32 is the nearest), so t > v  <=>  t >= v32 if v32 > v, t > v32 otherwise.
    """
    if t.dtype == torch.float64:
        return t > v
    v32 = _f32(v)
    return t >= v32 if v32 > v else t > v32


def _ge(t: torch.Tensor, v: float) -> torch.Tensor:
    """``t >= v`` decided exactly (see ``_gt``)."""
    if t.dtype == torch.float64:
        return t >= v
    v32 = _f32(v)
    return t > v32 if v32 < v else t >= v32


def _le(t: torch.Tensor, v: float) -> torch.Tensor:
    """``t <= v`` decided exactly (see ``_gt``)."""
    if t.dtype == torch.float64:
        return t <= v
    v32 = _f32(v)
    return t < v32 if v32 > v else t <= v32


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
    # scatter, not ``inverse[order] = ...``: a permutation write that is sync-free and
    # deterministic on every backend.
    inverse = torch.empty_like(dense_sorted).scatter_(0, order, dense_sorted)
    first = torch.zeros(n, dtype=torch.bool, device=gid.device).scatter_(0, order, new)
    return inverse, new.sum(), first


def group_stats(rewards: torch.Tensor, group_ids: torch.Tensor, config: CASTConfig) -> GroupStats:
    """Group means, stds and correctness classes gathered back to [N] (validated inputs)."""
    n = rewards.shape[0]
    inv, n_groups, first = _dense_groups(group_ids)
    zeros = torch.zeros(n, dtype=rewards.dtype, device=rewards.device)
    counts = zeros.index_add(0, inv, torch.ones_like(rewards))    # [N] (first G entries used)
    mean = (zeros.index_add(0, inv, rewards) / counts.clamp_min(1))[inv]   # [N]
    correct = _gt(rewards, config.correct_threshold)
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


def _device_of(*xs: Any) -> torch.device | None:
    """The device of the first tensor among ``xs`` (the [N, T] input is passed first)."""
    for x in xs:
        if isinstance(x, torch.Tensor):
            return x.device
    return None


def _prepare_rewards(rewards: Any, group_ids: Any, device, validate: bool):
    """Validated rewards [N] (dtype unchanged) and int64 group ids, both on ``device``."""
    r = as_float_vector("rewards", rewards, device=device, validate=validate)
    if r.shape[0] == 0:
        raise ValueError("rewards: empty batch (N = 0)")
    gid = as_group_ids(group_ids, r.shape[0], device=r.device, validate=validate)
    return r, gid


def base_advantages(rewards: Any, group_ids: Any, config: CASTConfig | None = None, step: int = 0,
                    *, validate: bool = True) -> torch.Tensor:
    """Step 1: base advantage per completion (see ``cast_core.base_advantages``).

        all correct: b = +B+·s    all wrong: b = −B−·s    mixed: b = (r − μ_g) / max(σ, eps)

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
    return _base(r.to(compute_dtype(r)), gid, config, step)


def _base(r: torch.Tensor, gid: torch.Tensor, config: CASTConfig, step: int,
          st: GroupStats | None = None) -> torch.Tensor:
    if st is None:
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
                 step: int, validate: bool, *, keep: bool = True) -> _TokenParts:
    """Step 2 on same-device, same-dtype tensors: b [N], gaps [N, T], m [N, T] bool.

    With ``keep=False`` only ``adv`` is meaningful: ``g`` and ``pre_clip`` alias the one
    [N, T] buffer the result is computed in. Fresh [N, T] buffers cost page faults on CPU
    and bandwidth on GPU, so the hot path allocates two float buffers and three 1-byte ones.
    """
    lam = lam_at(config, step)
    dt, dev = gaps.dtype, gaps.device
    g = torch.where(m, gaps.detach(), torch.zeros((), dtype=dt, device=dev))   # [N, T]; padding -> 0
    if validate:
        raise_if_any(torch.isnan(g), "gaps: NaN inside the mask at index {index}")
    lo_db, hi_db = config.deadband
    if lo_db < hi_db:
        e = torch.exp(g)
        g.masked_fill_(_ge(e, lo_db) & _le(e, hi_db), 0.0)

    b = b.detach()
    pos = b > 0                                                   # [N]
    sgn = pos.to(dt).mul_(2.0).sub_(1.0)[:, None]                 # [N, 1] ±1 (−1 where b = 0; b zeroes it)
    z = g * sgn if keep else g.mul_(sgn)                          # [N, T] > 0: teacher agrees with b's side
    fc, fw = config.flip_correct, config.flip_wrong
    if fc and fw:
        flipped = z < 0
    elif fc or fw:
        flipped = (z < 0) & (pos if fc else ~pos)[:, None]
    else:
        flipped = torch.zeros_like(m)
    # Token sign factor k: +1 own side, −1 flipped, 0 padding (flipped implies the mask).
    # Built in int8 (1-byte passes; ``flipped`` is ours, so its bytes are 0/1), then held in
    # one float buffer that also serves, in turn, as each per-token clip bound.
    k8 = torch.sub(m.to(torch.int8), flipped.view(torch.int8), alpha=2)   # [N, T]
    k = k8.to(dt)

    if lam == 0.0:
        # W = max(0, 1 + 0·(x − 1)) = 1 exactly for every finite clipped x.
        pre = k.mul_(b[:, None])
    else:
        # The teacher ratio seen by W: exp(−z) on flipped tokens, exp(z) elsewhere (padding:
        # z = 0). In all-flip mode that is exp(|z|).
        x = (z.abs_() if fc and fw else z.mul_(k)).exp_()
        # Tokens weighted on the correct side (own tokens of positive rows, flipped tokens
        # of negative rows: k·sgn = +1) use its clip range, the others the wrong side's.
        # Flipped tokens have x >= 1, so the contract's floor max(1, lo) equals lo for them;
        # in all-flip mode every x >= 1, and lows <= 1 never bind.
        (lc, hc), (lw, hw) = config.w_clip_correct, config.w_clip_wrong
        if not (fc and fw and max(lc, lw) <= 1.0):
            _clamp_per_side(x, k, k8, sgn, lc, lw, torch.Tensor.clamp_min_)
        _clamp_per_side(x, k, k8, sgn, hc, hw, torch.Tensor.clamp_max_)
        w = x.sub_(1.0).mul_(lam).add_(1.0)                       # 1 + λ·(x − 1)
        if lam > 1.0:  # for λ <= 1, 1 + λ·(x − 1) >= 1 − λ >= 0 already (x >= 0)
            w.clamp_min_(0.0)
        pre = w.mul_(k).mul_(b[:, None])                          # (W·k)·b: ±W·b, 0 in padding
    lo_a, hi_a = config.adv_clip
    adv = pre.clamp(lo_a, hi_a) if keep else pre.clamp_(lo_a, hi_a)
    return _TokenParts(adv, pre, flipped, g, m)


def _clamp_per_side(x: torch.Tensor, k: torch.Tensor, k8: torch.Tensor, sgn: torch.Tensor,
                    a: float, c: float, clamp_) -> None:
    """``clamp_(x, bound)`` in place, bound = ``a`` where k·sgn = +1 (weighted on the correct
    side) and ``c`` where k·sgn = −1; padding (k = 0) gets (a + c)/2, and is zeroed later.

    k [N, T] float in {+1, −1, 0} (its int8 copy ``k8``), sgn [N, 1] ±1. The bound is
    built in k's own buffer as mid + k·(sgn·half), which k8 then restores, when that
    reproduces a and c exactly in k's dtype (it does for the default ranges); else with a
    ``torch.where`` (a fresh buffer and about 4x slower on CPU).
    """
    if a == c:
        clamp_(x, a)
        return
    dt = k.dtype
    mid, half = (a + c) / 2, (a - c) / 2
    if dt == torch.float64:
        exact = mid + half == a and mid - half == c
    else:
        exact = _f32(_f32(mid) + _f32(half)) == _f32(a) and _f32(_f32(mid) - _f32(half)) == _f32(c)
    if exact:
        clamp_(x, k.mul_(sgn * half).add_(mid))
        k.copy_(k8)
    else:
        full = lambda v: torch.full((), v, dtype=dt, device=k.device)   # noqa: E731
        clamp_(x, torch.where(k * sgn > 0, full(a), full(c)))


def _prepare_tokens(device, gaps: Any, mask: Any, n: int, validate: bool, name_b: str = "base"):
    g = as_float_matrix("gaps", gaps, device=device)
    if g.shape[0] != n:
        raise ValueError(f"gaps: has {g.shape[0]} rows but {name_b} has {n}")
    m = as_mask(mask, tuple(g.shape), device=g.device, validate=validate)
    return g, m


def token_advantages(base: Any, gaps: Any, mask: Any, config: CASTConfig | None = None, step: int = 0,
                     *, validate: bool = True) -> torch.Tensor:
    """Step 2: token advantages from base advantages and teacher gaps (see ``cast_core``).

    With W(x, lo, hi) = max(0, 1 + λ·(clip(x, lo, hi) − 1)):
        b > 0: Â = b·W(e^g, lc, hc), or −|b|·W(e^−g, max(1, lw), hw) when flip_correct and g < 0
        b < 0: Â = b·W(e^−g, lw, hw), or +|b|·W(e^g, max(1, lc), hc) when flip_wrong and g > 0
        then Â = clip(Â, adv_clip), and 0 where mask = 0 or b = 0.

    Args:
      base: [N] float tensor, finite.
      gaps: [N, T] float tensor, g = log π_teacher − log π_old; ±inf legal in the mask,
        padding never read.
      mask: [N, T] bool or 0/1.   config: ``CASTConfig``.   step: int >= 0.
      validate: check values (host sync); see ``cast_torch._checks``.

    Returns:
      [N, T] tensor on ``gaps``' device, exactly 0 where mask = 0 or base = 0; float64 if
      base or gaps is float64, else float32.
    """
    config = as_config(config)
    step = check_step(step)
    b = as_float_vector("base", base, device=_device_of(gaps, base), validate=validate)
    if b.shape[0] == 0:
        raise ValueError("base: empty batch (N = 0)")
    g, m = _prepare_tokens(b.device, gaps, mask, b.shape[0], validate)
    dtype = compute_dtype(b, g)
    return _token_parts(b.to(dtype), g.to(dtype), m, config, step, validate, keep=False).adv


def cast_advantages(rewards: Any, group_ids: Any, gaps: Any, mask: Any, config: CASTConfig | None = None,
                    step: int = 0, *, validate: bool = True) -> torch.Tensor:
    """CAST token advantages [N, T]: ``token_advantages(base_advantages(rewards, group_ids), gaps, mask)``.

    Args:
      rewards: [N] float.   group_ids: [N] int.   gaps: [N, T] float.   mask: [N, T] bool or 0/1.
      config: ``CASTConfig``.   step: int >= 0.   validate: value checks (one host sync each).

    Returns:
      [N, T] tensor on ``gaps``' device (rewards and group ids are moved there: they are
      small); float64 if rewards or gaps are float64, else float32.
    """
    config = as_config(config)
    step = check_step(step)
    r, gid = _prepare_rewards(rewards, group_ids, _device_of(gaps, rewards), validate)
    g, m = _prepare_tokens(r.device, gaps, mask, r.shape[0], validate, name_b="rewards")
    dtype = compute_dtype(r, g)
    b = _base(r.to(dtype), gid, config, step)
    return _token_parts(b, g.to(dtype), m, config, step, validate, keep=False).adv
