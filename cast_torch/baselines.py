"""Baseline advantage estimators on torch tensors — the mirror of ``cast_core.baselines``.

Same definitions, names and signatures as the NumPy reference (plus keyword ``validate``):

- GRPO: Â = (r − μ_g)/max(σ, eps) broadcast over tokens; exactly 0 for groups whose
  rewards are all equal.
- RLSD (arXiv 2604.03128): Â = A·((1 − λ) + λ·clip(exp(sign(A)·g), 1 − ε_w, 1 + ε_w)),
  λ = λ0·(1 − min(step, D)/D) (λ0 when D = 0).
- RL-ZVP (arXiv 2509.21880): mixed groups GRPO; all-correct Â = α·H_t; all-wrong
  Â = −α·(max_k H_k − H_t), the max over the row's masked tokens.
- OPSD sampled-token (arXiv 2601.18734): Â = g on masked tokens.

``config`` (a ``CASTConfig``) supplies scale / std_ddof / eps / correct_threshold. Groups
come from ``cast_torch.advantages.group_stats`` (sort-based, no ``torch.unique``); the
"all rewards equal" test is a scatter amax/amin into [N]-sized buffers, so nothing reads
a value back to the host unless ``validate=True`` (one sync per value check). Outputs are
on the [N, T] input's device; float64 when a float input is float64, else float32.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from cast_core.baselines import check_rl_zvp_alpha, check_rlsd_params, rlsd_lam_at
from cast_core.config import CASTConfig

from ._checks import (as_config, as_float_matrix, as_float_vector, as_group_ids, as_mask,
                      compute_dtype, raise_if_any)
from .advantages import _device_of, group_stats

__all__ = ["grpo_base", "grpo_advantages", "rlsd_advantages", "rl_zvp_advantages", "opsd_advantages"]


def _rows(rewards: Any, group_ids: Any, config: CASTConfig | None, device, validate: bool):
    config = as_config(config)
    r = as_float_vector("rewards", rewards, device=device, validate=validate)
    if r.shape[0] == 0:
        raise ValueError("rewards: empty batch (N = 0)")
    return r, as_group_ids(group_ids, r.shape[0], device=r.device, validate=validate), config


def _matrix(name: str, x: Any, mask: Any, n: int, device, validate: bool) -> tuple[torch.Tensor, torch.Tensor]:
    arr = as_float_matrix(name, x, device=device)
    if arr.shape[0] != n:
        raise ValueError(f"{name}: has {arr.shape[0]} rows but rewards has {n}")
    return arr, as_mask(mask, tuple(arr.shape), device=arr.device, validate=validate)


def _grpo(r: torch.Tensor, gid: torch.Tensor, config: CASTConfig, st=None) -> torch.Tensor:
    """GRPO base [N] of validated rewards ``r`` (already in the compute dtype)."""
    if st is None:
        st = group_stats(r, gid, config)
    n = r.shape[0]
    g_max = torch.full((n,), -math.inf, dtype=r.dtype, device=r.device)
    g_min = torch.full((n,), math.inf, dtype=r.dtype, device=r.device)
    g_max = g_max.scatter_reduce(0, st.inverse, r, "amax")
    g_min = g_min.scatter_reduce(0, st.inverse, r, "amin")
    flat = (g_max == g_min)[st.inverse]                           # [N]
    scaled = (r - st.mean) / st.std.clamp_min(config.eps)
    return torch.where(flat, torch.zeros((), dtype=r.dtype, device=r.device), scaled)


def grpo_base(rewards: Any, group_ids: Any, config: CASTConfig | None = None, *,
              validate: bool = True) -> torch.Tensor:
    """GRPO sequence advantage [N]: (r − μ_g)/max(σ, eps) per ``config.scale``; exactly 0
    for groups whose rewards are all equal.

    Args: rewards [N] float; group_ids [N] int; config for scale/std_ddof/eps; validate.
    Returns: [N] tensor on ``rewards``' device (float64 for float64 input, else float32).
    """
    r, gid, config = _rows(rewards, group_ids, config, None, validate)
    return _grpo(r.to(compute_dtype(r)), gid, config)


def grpo_advantages(rewards: Any, group_ids: Any, mask: Any, config: CASTConfig | None = None, *,
                    validate: bool = True) -> torch.Tensor:
    """GRPO: the sequence advantage broadcast over masked tokens.

    Args: rewards [N] float; group_ids [N] int; mask [N, T] bool or 0/1; config for
      scale/std_ddof/eps; validate: value checks (host syncs).
    Returns: [N, T] on ``mask``'s device, 0 outside the mask.
    """
    r, gid, config = _rows(rewards, group_ids, config, _device_of(mask, rewards), validate)
    b = _grpo(r.to(compute_dtype(r)), gid, config)
    m = as_mask(mask, device=r.device, validate=validate)
    if m.shape[0] != b.shape[0]:
        raise ValueError(f"mask: has {m.shape[0]} rows but rewards has {b.shape[0]}")
    return torch.where(m, b[:, None], torch.zeros((), dtype=b.dtype, device=b.device))


def rlsd_advantages(rewards: Any, group_ids: Any, gaps: Any, mask: Any, *, step: int = 0,
                    lam: float = 0.5, lam_decay_steps: int = 50, eps_w: float = 0.2,
                    config: CASTConfig | None = None, validate: bool = True) -> torch.Tensor:
    """RLSD: GRPO advantage reweighted per token by the (privileged) teacher ratio.

    Â = A·((1 − λ) + λ·clip(exp(sign(A)·g), 1 − ε_w, 1 + ε_w)), λ = λ0·(1 − min(step, D)/D).

    Args: rewards [N]; group_ids [N]; gaps [N, T] (±inf legal, NaN only in padding);
      mask [N, T]; step int >= 0; lam λ0 >= 0; lam_decay_steps D >= 0 (0: constant);
      eps_w in [0, 1]; config for the GRPO statistics; validate: value checks.
    Returns: [N, T] on ``gaps``' device, 0 outside the mask.
    """
    lam, lam_decay_steps, eps_w = check_rlsd_params(lam, lam_decay_steps, eps_w)
    lam_t = rlsd_lam_at(lam, lam_decay_steps, step)
    r, gid, config = _rows(rewards, group_ids, config, _device_of(gaps, rewards), validate)
    g, m = _matrix("gaps", gaps, mask, r.shape[0], r.device, validate)
    dt = compute_dtype(r, g)
    a = _grpo(r.to(dt), gid, config)
    zero = torch.zeros((), dtype=dt, device=g.device)
    g = torch.where(m, g.detach().to(dt), zero)
    if validate:
        raise_if_any(torch.isnan(g), "gaps: NaN inside the mask at index {index}")
    sign = torch.sign(a)[:, None]                                 # [N, 1]
    # sign = 0 rows would form 0·inf; their advantage is 0 whatever the weight, so use z = 0 there.
    z = torch.where(sign == 0, zero, sign * g)
    w = (1.0 - lam_t) + lam_t * torch.clamp(torch.exp(z), 1.0 - eps_w, 1.0 + eps_w)
    return torch.where(m, a[:, None] * w, zero)


def rl_zvp_advantages(rewards: Any, group_ids: Any, entropies: Any, mask: Any, *, alpha: float = 0.1,
                      config: CASTConfig | None = None, validate: bool = True) -> torch.Tensor:
    """RL-ZVP: entropy-shaped advantages for zero-variance groups, GRPO elsewhere.

    All-correct rows: Â = α·H_t. All-wrong rows: Â = −α·(max_k H_k − H_t), k over the row's
    masked tokens. Mixed groups: the GRPO advantage. Groups are classified by correctness
    (r > correct_threshold), as in CAST.

    Args: rewards [N]; group_ids [N]; entropies [N, T] float, finite and >= 0 inside the
      mask; mask [N, T]; alpha >= 0; config for the statistics; validate: value checks.
    Returns: [N, T] on ``entropies``' device, 0 outside the mask.
    """
    alpha = check_rl_zvp_alpha(alpha)
    r, gid, config = _rows(rewards, group_ids, config, _device_of(entropies, rewards), validate)
    h, m = _matrix("entropies", entropies, mask, r.shape[0], r.device, validate)
    dt = compute_dtype(r, h)
    zero = torch.zeros((), dtype=dt, device=h.device)
    h = torch.where(m, h.detach().to(dt), zero)
    if validate:
        raise_if_any(~torch.isfinite(h) | (h < 0),
                     "entropies: expected finite values >= 0 inside the mask, got {value!r} at index {index}", h)
    r = r.to(dt)
    st = group_stats(r, gid, config)
    grpo = _grpo(r, gid, config, st)[:, None]
    # Padding holds 0 <= every masked entropy, so the row max is the max over masked tokens.
    h_max = h.amax(dim=1, keepdim=True) if h.shape[1] else torch.zeros((h.shape[0], 1), dtype=dt, device=h.device)
    adv = torch.where(st.all_correct[:, None], alpha * h,
                      torch.where(st.all_wrong[:, None], -alpha * (h_max - h), grpo))
    return torch.where(m, adv, zero)


def opsd_advantages(gaps: Any, mask: Any, *, validate: bool = True) -> torch.Tensor:
    """OPSD sampled-token advantage: Â = g on masked tokens (no verifier).

    Args: gaps [N, T] float, finite inside the mask; mask [N, T]; validate: value check.
    Returns: [N, T] on ``gaps``' device (float64 for float64 gaps, else float32).
    """
    g = as_float_matrix("gaps", gaps)
    m = as_mask(mask, tuple(g.shape), device=g.device, validate=validate)
    dt = compute_dtype(g)
    g = torch.where(m, g.detach().to(dt), torch.zeros((), dtype=dt, device=g.device))
    if validate:
        raise_if_any(~torch.isfinite(g),
                     "gaps: OPSD needs finite gaps inside the mask, got {value!r} at index {index}", g)
    return g
