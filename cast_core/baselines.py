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
from .config import CASTConfig, linear_decay

__all__ = ["grpo_base", "grpo_advantages", "rlsd_advantages", "rl_zvp_advantages", "opsd_advantages",
           "check_rlsd_params", "rlsd_lam_at", "check_rl_zvp_alpha"]

RLSD_PARAM_NAMES = ("lam", "lam_decay_steps", "eps_w")


def _check_nonneg(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{name}: must be a finite number >= 0, got {v!r}")
    return float(v)


def check_rlsd_params(lam: Any, lam_decay_steps: Any, eps_w: Any, *,
                      names: tuple[str, str, str] = RLSD_PARAM_NAMES) -> tuple[float, int, float]:
    """Validate RLSD's scalars; returns ``(lam, lam_decay_steps, eps_w)`` as float, int, float.

    lam λ0: a finite number >= 0; lam_decay_steps D: an int >= 0 (0: λ constant);
    eps_w ε_w: a finite number in [0, 1]. A bad value is a ``ValueError`` naming it by
    ``names`` (e.g. ``("TrainConfig.rlsd_lam", ...)`` for a config's fields). The one
    home of this rule: ``cast_torch.baselines`` and ``TrainConfig`` call it.
    """
    lam = _check_nonneg(names[0], lam)
    eps_w = _check_nonneg(names[2], eps_w)
    if eps_w > 1:
        raise ValueError(f"{names[2]}: must be <= 1, got {eps_w!r}")
    if isinstance(lam_decay_steps, bool) or not isinstance(lam_decay_steps, numbers.Integral) or lam_decay_steps < 0:
        raise ValueError(f"{names[1]}: must be an int >= 0, got {lam_decay_steps!r}")
    return lam, int(lam_decay_steps), eps_w


def rlsd_lam_at(lam: float, lam_decay_steps: int, step: int) -> float:
    """RLSD's λ(step) = λ0·(1 − min(step, D)/D) (λ0 when D = 0): CAST's schedule, :func:`linear_decay`."""
    return linear_decay(lam, lam_decay_steps, step)


def check_rl_zvp_alpha(alpha: Any, *, name: str = "alpha") -> float:
    """Validate RL-ZVP's entropy coefficient α (a finite number >= 0); returns it as a float."""
    return _check_nonneg(name, alpha)


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
    lam, lam_decay_steps, eps_w = check_rlsd_params(lam, lam_decay_steps, eps_w)
    lam_t = rlsd_lam_at(lam, lam_decay_steps, step)
    a = grpo_base(rewards, group_ids, config)
    g, m = _matrix("gaps", gaps, mask, a.shape[0])
    g = np.where(m, g, 0.0)
    if np.isnan(g).any():
        raise ValueError(f"gaps: NaN inside the mask at index {first_index(np.isnan(g))}")
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
    alpha = check_rl_zvp_alpha(alpha)
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
