"""The clipped policy-gradient loss CAST keeps from GRPO, and its analytic gradient.

Per token, with ρ = exp(logp − old_logp) and advantages Â:
    ℓ_t = −min(ρ·Â, clip(ρ, 1 − clip_low, 1 + clip_high)·Â) + β·k3,
    k3  = exp(ref − logp) − (ref − logp) − 1            (Schulman's unbiased KL estimator)
Aggregation over masked tokens (``agg``; the GRPO literature disagrees, so it is named):
    "token-mean"               Σ ℓ·m / Σ m                                 (DAPO; default)
    "seq-mean-token-mean"      mean over rows with ≥ 1 token of Σ_t ℓ·m / Σ_t m   (original GRPO)
    "seq-mean-token-sum-norm"  Σ ℓ·m / (N·L), L = max_len (default T)       (Dr. GRPO)
An empty mask gives 0.0 (denominators are clamped to 1), never NaN.

``policy_loss_grad`` is d loss / d logp in closed form, the oracle the torch mirror's
autograd is checked against. The surrogate's gradient is −ρ·Â except where the clipped
branch is strictly active (Â > 0 and ρ > 1 + clip_high, or Â < 0 and ρ < 1 − clip_low),
where it is 0; the KL term adds β·(1 − exp(ref − logp)).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ._checks import as_float_matrix, as_mask, first_index

__all__ = ["policy_loss", "policy_loss_grad", "AGGREGATIONS"]

AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")


def _check_scalar(name: str, value: Any, *, lo: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name}: must be a finite real number, got {value!r}")
    if lo is not None and value < lo:
        raise ValueError(f"{name}: must be >= {lo}, got {value!r}")
    return float(value)


def _prepare(logp, old_logp, advantages, mask, clip_low, clip_high, agg, ref_logp, beta, max_len):
    """Validate, mask and return the per-token pieces and the aggregation weights [N, T]."""
    if agg not in AGGREGATIONS:
        raise ValueError(f"agg: must be one of {AGGREGATIONS}, got {agg!r}")
    clip_low = _check_scalar("clip_low", clip_low, lo=0.0)
    clip_high = _check_scalar("clip_high", clip_high, lo=0.0)
    beta = _check_scalar("beta", beta, lo=0.0)
    lp = as_float_matrix("logp", logp)
    shape = lp.shape
    m = as_mask(mask, shape)
    arrays = {"logp": lp, "old_logp": as_float_matrix("old_logp", old_logp, shape),
              "advantages": as_float_matrix("advantages", advantages, shape)}
    if beta > 0:
        if ref_logp is None:
            raise ValueError("ref_logp: required when beta > 0")
        arrays["ref_logp"] = as_float_matrix("ref_logp", ref_logp, shape)
    # Padding may hold anything; inside the mask every input must be finite.
    for name, arr in arrays.items():
        arr = np.where(m, arr, 0.0)
        bad = ~np.isfinite(arr)
        if bad.any():
            i = first_index(bad)
            raise ValueError(f"{name}: non-finite value {float(arr[i])!r} inside the mask at index {i}")
        arrays[name] = arr

    n, t = shape
    mf = m.astype(np.float64)
    if agg == "token-mean":
        weight = mf / max(mf.sum(), 1.0)
    elif agg == "seq-mean-token-mean":
        row_len = mf.sum(axis=1, keepdims=True)                   # [N, 1]
        n_rows = max(int(np.count_nonzero(row_len)), 1)
        weight = mf / np.maximum(row_len, 1.0) / n_rows
    else:
        if max_len is None:
            max_len = max(t, 1)  # T = 0: nothing to sum; keep L a valid divisor
        if isinstance(max_len, bool) or not isinstance(max_len, numbers.Integral) or max_len <= 0:
            raise ValueError(f"max_len: must be a positive int, got {max_len!r}")
        weight = mf / max(n * int(max_len), 1)
    return arrays, weight, clip_low, clip_high, beta


def policy_loss(logp: Any, old_logp: Any, advantages: Any, mask: Any, *, clip_low: float = 0.2,
                clip_high: float = 0.28, agg: str = "token-mean", ref_logp: Any = None,
                beta: float = 0.0, max_len: int | None = None) -> float:
    """Clipped surrogate loss (to minimise), aggregated over masked tokens.

    Args:
      logp: [N, T] float, current policy log-probs of the sampled tokens.
      old_logp: [N, T] float, rollout-policy log-probs (ρ = exp(logp − old_logp)).
      advantages: [N, T] float, token advantages (e.g. ``cast_advantages``).
      mask: [N, T] bool or 0/1.
      clip_low, clip_high: ρ is clipped to [1 − clip_low, 1 + clip_high] (DAPO's asymmetric clip).
      agg: "token-mean" | "seq-mean-token-mean" | "seq-mean-token-sum-norm".
      ref_logp: [N, T] float, reference log-probs for the k3 KL term (needed when beta > 0).
      beta: KL coefficient (>= 0).
      max_len: L of "seq-mean-token-sum-norm" (default T).

    Returns:
      The loss as a Python float.
    """
    a, weight, cl, ch, beta = _prepare(logp, old_logp, advantages, mask, clip_low, clip_high,
                                       agg, ref_logp, beta, max_len)
    ratio = np.exp(a["logp"] - a["old_logp"])
    adv = a["advantages"]
    per_tok = -np.minimum(ratio * adv, np.clip(ratio, 1.0 - cl, 1.0 + ch) * adv)
    if beta > 0:
        d = a["ref_logp"] - a["logp"]
        per_tok = per_tok + beta * (np.exp(d) - d - 1.0)
    return float(np.sum(per_tok * weight))


def policy_loss_grad(logp: Any, old_logp: Any, advantages: Any, mask: Any, *, clip_low: float = 0.2,
                     clip_high: float = 0.28, agg: str = "token-mean", ref_logp: Any = None,
                     beta: float = 0.0, max_len: int | None = None) -> np.ndarray:
    """Analytic gradient of ``policy_loss`` with respect to ``logp``; same arguments.

    Returns:
      [N, T] float64, 0 outside the mask.
    """
    a, weight, cl, ch, beta = _prepare(logp, old_logp, advantages, mask, clip_low, clip_high,
                                       agg, ref_logp, beta, max_len)
    ratio = np.exp(a["logp"] - a["old_logp"])
    adv = a["advantages"]
    clipped = ((adv > 0) & (ratio > 1.0 + ch)) | ((adv < 0) & (ratio < 1.0 - cl))
    grad = np.where(clipped, 0.0, -ratio * adv)
    if beta > 0:
        grad = grad + beta * (1.0 - np.exp(a["ref_logp"] - a["logp"]))
    return grad * weight
