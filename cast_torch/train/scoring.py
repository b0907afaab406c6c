"""Per-token log-probabilities (and entropies) of given completion tokens, chunked.

For a prompt x (left-padded) and completion y (right-padded), with temperature τ:

    logp[i, t]    = log softmax(z_{i,t} / τ)[y_{i,t}]          z = the model's logits
    entropy[i, t] = −Σ_v p_v log p_v  of that same distribution

where z_{i,t} are the logits at the position that predicts y_{i,t}. Only the T + 1 last
positions' logits are requested from the model (``logits_to_keep``) and rows are
processed ``chunk_size`` at a time, so at most ``[chunk_size, T, V]`` float32 exists at
once — never the whole batch's ``[B, L, V]``. Position ids are computed from the
attention mask, so left padding does not shift positions (matching ``generate``).
"""

from __future__ import annotations

from typing import Optional

import torch

__all__ = ["token_logprobs", "position_ids_from_mask"]


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """``[B, L]`` positions counting only attended tokens (0 at the first real token)."""
    return (attention_mask.long().cumsum(dim=1) - 1).clamp_min(0)


def _forward_tail(model, ids: torch.Tensor, att: torch.Tensor, keep: int) -> torch.Tensor:
    pos = position_ids_from_mask(att)                                         # [b, L]
    try:
        out = model(input_ids=ids, attention_mask=att, position_ids=pos, logits_to_keep=keep, use_cache=False)
        logits = out.logits
    except TypeError:   # models without logits_to_keep: the full logits of this chunk only
        logits = model(input_ids=ids, attention_mask=att, position_ids=pos, use_cache=False).logits
    return logits[:, -keep:]                                                  # [b, keep, V]


def token_logprobs(model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, completion_ids: torch.Tensor,
                   completion_mask: torch.Tensor, *, temperature: float = 1.0, chunk_size: Optional[int] = None,
                   with_entropy: bool = False) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Log-probs ``[B, T]`` float32 of ``completion_ids`` under ``model`` (and entropies).

    Args:
        model: causal LM; called in its current mode, under the caller's grad mode
            (wrap in ``torch.no_grad()`` for scoring; leave grad on for the update).
        prompt_ids: [B, P] long, left-padded.   prompt_mask: [B, P] 0/1.
        completion_ids: [B, T] long.   completion_mask: [B, T] bool/0/1, the tokens
            the model attends to (padding after EOS is 0).
        temperature: τ > 0, the sampling temperature (log-probs of the sampled distribution).
        chunk_size: rows per forward (None: all rows at once).
        with_entropy: also return the detached entropy ``[B, T]`` float32.

    Returns:
        ``(logp, entropy_or_None)``. Values at masked-out positions are finite but meaningless.
    """
    b, t = completion_ids.shape
    if temperature <= 0:
        raise ValueError(f"temperature: must be > 0, got {temperature!r}")
    ids = torch.cat([prompt_ids, completion_ids], dim=1)                       # [B, P+T]
    att = torch.cat([prompt_mask.long(), completion_mask.long()], dim=1)       # [B, P+T]
    step = b if not chunk_size else chunk_size
    logps, ents = [], []
    for start in range(0, b, step):
        sl = slice(start, start + step)
        logits = _forward_tail(model, ids[sl], att[sl], t + 1)[:, :-1]         # [c, T, V] predicts y_t
        logits = logits.float() / temperature                                  # [c, T, V] float32 (chunk only)
        logp_all = torch.log_softmax(logits, dim=-1)                           # [c, T, V]
        logps.append(logp_all.gather(-1, completion_ids[sl].unsqueeze(-1)).squeeze(-1))   # [c, T]
        if with_entropy:
            with torch.no_grad():
                ents.append(-(logp_all.exp() * logp_all).sum(-1))             # [c, T]
        del logits, logp_all
    logp = torch.cat(logps, dim=0)                                             # [B, T]
    entropy = torch.cat(ents, dim=0) if with_entropy else None                 # [B, T]
    return logp, entropy
