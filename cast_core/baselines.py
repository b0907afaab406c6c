"""Baseline advantage estimators shipped beside CAST, on the same inputs and shapes.

- GRPO (Shao et al., 2024): the group-normalised reward broadcast over tokens; groups
  whose rewards are all equal get exactly 0 (GRPO's zero gradient).
- RLSD (arXiv 2604.03128): Â = A·((1 − λ) + λ·clip(exp(sign(A)·g), 1 − ε_w, 1 + ε_w)),
  λ decaying linearly from λ0 to 0 over ``lam_decay_steps``; its teacher is privileged.
- RL-ZVP (arXiv 2509.21880): mixed groups GRPO; all-correct Â = α·H_t; all-wrong
  Â = −α·(max_k H_k − H_t), max over the row's masked tokens; H detached token entropy.
- OPSD sampled-token (arXiv 2601.18734): Â = g, no verifier.

``config`` (a ``CASTConfig``) supplies scale / std_ddof / eps / correct_threshold.
"""

from __future__ import annotations

import numbers
import math
from typing import Any

import numpy as np

from ._checks import (as_config, as_float_matrix, as_float_vector, as_group_ids, as_mask,
                      first_index)
from .advantages import group_stats
from .config import CASTConfig, check_step

__all__ = ["grpo_base", "grpo_advantages", "rlsd_advantages", "rl_zvp_advantages", "opsd_advantages"]


def _rows(rewards: Any, group_ids: Any, config: CASTConfig | None):
    config = as_config(config)
    r = as_float_vector("rewards", rewards, nonempty=True)
    return r, as_group_ids(group_ids, r.shape[0]), config


def _matrix(name: str, x: Any, mask: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    arr = as_float_matrix(name, x)
    if arr.shape[0] != n:
        raise ValueError(f"{name}: has {arr.shape[0]} rows but rewards has {n}")
    return arr, as_mask(mask, arr.shape)


def grpo_base(rewards: Any, group_ids: Any, config: CASTConfig | None = None) -> np.ndarray:
    """GRPO sequence advantage [N]: (r − μ_g)/max(σ, eps) per ``config.scale``; 0 for groups
    whose rewards are all equal (set exactly, not left to rounding)."""
    r, gid, config = _rows(rewards, group_ids, config)
    st = group_stats(r, gid, config)
    g_max = np.full(st.n_groups, -np.inf)
    g_min = np.full(st.n_groups, np.inf)
    np.maximum.at(g_max, st.inverse, r)
    np.minimum.at(g_min, st.inverse, r)
    flat = (g_max == g_min)[st.inverse]                           # [N]
    return np.where(flat, 0.0, (r - st.mean) / np.maximum(st.std, config.eps))


def grpo_advantages(rewards: Any, group_ids: Any, mask: Any, config: CASTConfig | None = None) -> np.ndarray:
    """GRPO: the sequence advantage broadcast over masked tokens.

    Args: rewards [N] float; group_ids [N] int; mask [N, T]; config for scale/std_ddof/eps.
    Returns: [N, T] float64.
    """
    b = grpo_base(rewards, group_ids, config)
    m = as_mask(mask)
    if m.shape[0] != b.shape[0]:
        raise ValueError(f"mask: has {m.shape[0]} rows but rewards has {b.shape[0]}")
    return np.where(m, b[:, None], 0.0)


def rlsd_advantages(rewards: Any, group_ids: Any, gaps: Any, mask: Any, *, step: int = 0,
                    lam: float = 0.5, lam_decay_steps: int = 50, eps_w: float = 0.2,
                    config: CASTConfig | None = None) -> np.ndarray:
    """RLSD: GRPO advantage reweighted per token by the (privileged) teacher ratio.

    Â = A·((1 − λ) + λ·clip(exp(sign(A)·g), 1 − ε_w, 1 + ε_w)), λ = λ0·(1 − min(step, D)/D).

    Args: rewards [N]; group_ids [N]; gaps [N, T] (±inf legal, NaN only in padding);
      mask [N, T]; step int >= 0; lam λ0 >= 0; lam_decay_steps D >= 0 (0: constant);
      eps_w in [0, 1]; config for the GRPO statistics.
    Returns: [N, T] float64.
    """
    step = check_step(step)
    for name, v in (("lam", lam), ("eps_w", eps_w)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{name}: must be a finite number >= 0, got {v!r}")
    if eps_w > 1:
        raise ValueError(f"eps_w: must be <= 1, got {eps_w!r}")
    if isinstance(lam_decay_steps, bool) or not isinstance(lam_decay_steps, numbers.Integral) or lam_decay_steps < 0:
        raise ValueError(f"lam_decay_steps: must be an int >= 0, got {lam_decay_steps!r}")
    a = grpo_base(rewards, group_ids, config)
    g, m = _matrix("gaps", gaps, mask, a.shape[0])
    g = np.where(m, g, 0.0)
    if np.isnan(g).any():
        raise ValueError(f"gaps: NaN inside the mask at index {first_index(np.isnan(g))}")
    lam_t = lam * (1.0 - min(step, lam_decay_steps) / lam_decay_steps) if lam_decay_steps else float(lam)
    sign = np.sign(a)[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        # sign = 0 rows would form 0·inf; their advantage is 0 whatever the weight, so use z = 0 there.
        z = np.where(sign == 0, 0.0, sign * g)
        w = (1.0 - lam_t) + lam_t * np.clip(np.exp(z), 1.0 - eps_w, 1.0 + eps_w)
    return np.where(m, a[:, None] * w, 0.0)


def rl_zvp_advantages(rewards: Any, group_ids: Any, entropies: Any, mask: Any, *, alpha: float = 0.1,
                      config: CASTConfig | None = None) -> np.ndarray:
    """RL-ZVP: entropy-shaped advantages for zero-variance groups, GRPO elsewhere.

    All-correct rows: Â = α·H_t. All-wrong rows: Â = −α·(max_k H_k − H_t), k over the row's
    masked tokens. Mixed groups: the GRPO advantage. Groups are classified by correctness
    (r > correct_threshold), as in CAST.

    Args: rewards [N]; group_ids [N]; entropies [N, T] float, finite and >= 0 inside the mask;
      mask [N, T]; alpha >= 0; config for the statistics.
    Returns: [N, T] float64.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha: must be a finite number >= 0, got {alpha!r}")
    r, gid, config = _rows(rewards, group_ids, config)
    h, m = _matrix("entropies", entropies, mask, r.shape[0])
    h = np.where(m, h, 0.0)
    bad = ~np.isfinite(h) | (h < 0)
    if bad.any():
        i = first_index(bad)
        raise ValueError(f"entropies: expected finite values >= 0 inside the mask, got {float(h[i])!r} at index {i}")
    st = group_stats(r, gid, config)
    grpo = grpo_base(r, gid, config)[:, None]
    h_max = h.max(axis=1, keepdims=True) if h.shape[1] else np.zeros((h.shape[0], 1))
    adv = np.where(st.all_correct[:, None], alpha * h,
                   np.where(st.all_wrong[:, None], -alpha * (h_max - h), grpo))
    return np.where(m, adv, 0.0)


def opsd_advantages(gaps: Any, mask: Any) -> np.ndarray:
    """OPSD sampled-token advantage: Â = g on masked tokens (no verifier).

    Args: gaps [N, T] float, finite inside the mask; mask [N, T].
    Returns: [N, T] float64.
    """
    g = as_float_matrix("gaps", gaps)
    m = as_mask(mask, g.shape)
    g = np.where(m, g, 0.0)
    bad = ~np.isfinite(g)
    if bad.any():
        i = first_index(bad)
        raise ValueError(f"gaps: OPSD needs finite gaps inside the mask, got {float(g[i])!r} at index {i}")
    return g
