"""The clipped policy loss on tensors — the mirror of ``cast_core.loss``.

    ℓ_t = −min(ρ·Â, clip(ρ, 1 − clip_low, 1 + clip_high)·Â) + β·k3,   ρ = exp(logp − old_logp)
    k3  = exp(ref − logp) − (ref − logp) − 1
aggregated by ``agg`` ("token-mean" | "seq-mean-token-mean" | "seq-mean-token-sum-norm").
Returns a scalar tensor whose autograd gradient with respect to ``logp`` equals
``cast_core.policy_loss_grad`` (checked in float64, and by ``torch.autograd.gradcheck``).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from cast_core.loss import AGGREGATIONS

from ._checks import as_float_matrix, as_mask, raise_if_any

__all__ = ["policy_loss", "per_token_loss", "aggregate", "AGGREGATIONS"]


def _scalar(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: must be a finite real number >= 0, got {value!r}")
    return float(value)


def per_token_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, *,
                   clip_low: float = 0.2, clip_high: float = 0.28, ref_logp: torch.Tensor | None = None,
                   beta: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Unaggregated loss ℓ [N, T] and the ratio ρ [N, T] (no validation; padding included)."""
    ratio = torch.exp(logp - old_logp)                            # [N, T]
    surrogate = torch.minimum(ratio * advantages,
                              torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high) * advantages)
    loss = -surrogate
    if beta > 0:
        d = ref_logp - logp
        loss = loss + beta * (torch.exp(d) - d - 1.0)
    return loss, ratio


def aggregate(per_tok: torch.Tensor, mask: torch.Tensor, agg: str = "token-mean",
              max_len: int | None = None) -> torch.Tensor:
    """Aggregate [N, T] per-token values over the bool mask; empty denominators clamp to 1."""
    mf = mask.to(per_tok.dtype)
    masked = torch.where(mask, per_tok, torch.zeros((), dtype=per_tok.dtype, device=per_tok.device))
    if agg == "token-mean":
        return masked.sum() / mf.sum().clamp_min(1.0)
    if agg == "seq-mean-token-mean":
        row_len = mf.sum(dim=1)                                   # [N]
        n_rows = (row_len > 0).sum().clamp_min(1)
        return (masked.sum(dim=1) / row_len.clamp_min(1.0)).sum() / n_rows
    if agg == "seq-mean-token-sum-norm":
        n, t = per_tok.shape
        if max_len is None:
            max_len = max(t, 1)  # T = 0: nothing to sum; keep L a valid divisor
        if isinstance(max_len, bool) or not isinstance(max_len, numbers.Integral) or max_len <= 0:
            raise ValueError(f"max_len: must be a positive int, got {max_len!r}")
        return masked.sum() / max(n * int(max_len), 1)
    raise ValueError(f"agg: must be one of {AGGREGATIONS}, got {agg!r}")


def policy_loss(logp: Any, old_logp: Any, advantages: Any, mask: Any, *, clip_low: float = 0.2,
                clip_high: float = 0.28, agg: str = "token-mean", ref_logp: Any = None, beta: float = 0.0,
                max_len: int | None = None, validate: bool = True) -> torch.Tensor:
    """Clipped surrogate loss as a scalar tensor (differentiable in ``logp``).

    Args:
      logp: [N, T] float tensor with grad, current log-probs of the sampled tokens.
      old_logp: [N, T] rollout-policy log-probs (treated as constants).
      advantages: [N, T] token advantages (constants).
      mask: [N, T] bool or 0/1.
      clip_low, clip_high: ρ clipped to [1 − clip_low, 1 + clip_high].
      agg: aggregation, see module docstring.   max_len: L for "seq-mean-token-sum-norm" (default T).
      ref_logp: [N, T] reference log-probs, required when beta > 0.   beta: k3 KL weight.
      validate: check that inputs are finite inside the mask (one host sync).

    Returns:
      Scalar tensor in ``logp``'s dtype (float32 for half inputs).
    """
    if agg not in AGGREGATIONS:
        raise ValueError(f"agg: must be one of {AGGREGATIONS}, got {agg!r}")
    clip_low, clip_high, beta = _scalar("clip_low", clip_low), _scalar("clip_high", clip_high), _scalar("beta", beta)
    lp = as_float_matrix("logp", logp)
    shape = tuple(lp.shape)
    m = as_mask(mask, shape, device=lp.device, validate=validate)
    dtype = torch.float64 if lp.dtype == torch.float64 else torch.float32
    inputs = {"logp": lp, "old_logp": as_float_matrix("old_logp", old_logp, shape, device=lp.device),
              "advantages": as_float_matrix("advantages", advantages, shape, device=lp.device)}
    if beta > 0:
        if ref_logp is None:
            raise ValueError("ref_logp: required when beta > 0")
        inputs["ref_logp"] = as_float_matrix("ref_logp", ref_logp, shape, device=lp.device)
    zero = torch.zeros((), dtype=dtype, device=lp.device)
    for name, t in inputs.items():
        # Padding may hold anything: replace it before arithmetic so it cannot reach the gradient.
        t = torch.where(m, t.to(dtype), zero)
        if name != "logp":
            t = t.detach()
        if validate:
            raise_if_any(~torch.isfinite(t.detach()),
                         f"{name}: non-finite value {{value!r}} inside the mask at index {{index}}", t.detach())
        inputs[name] = t
    per_tok, _ = per_token_loss(inputs["logp"], inputs["old_logp"], inputs["advantages"],
                                clip_low=clip_low, clip_high=clip_high, ref_logp=inputs.get("ref_logp"),
                                beta=beta)
    return aggregate(per_tok, m, agg, max_len)
