"""Next-token choice with transformers' sampling semantics, without its full-vocabulary passes.

For logits ``z [n, V]`` (float32) and the settings of ``TrainConfig`` the distribution a
token is drawn from is exactly the one ``transformers`` ``generate`` samples from with
``TemperatureLogitsWarper`` → ``TopKLogitsWarper`` → ``TopPLogitsWarper`` (in that order):

    s        = z / τ
    top-k    keep s_v ≥ s_(k)          (the k-th largest; ties at the boundary are kept)
    top-p    with the kept tokens sorted by probability, keep a token when the mass of the
             tokens ranked strictly above it is < p (the most likely token always stays)
    p_v      = softmax(s over the kept tokens)

``transformers`` sorts the whole vocabulary for top-p and draws V exponentials per row
(``torch.multinomial``) at every step; at V = 49,152 that is ~40 ms of a ~100 ms CPU
decode step for a batch of 8. Here only ``k`` candidates are ranked (``torch.topk``; top-p
alone ranks the best ``TOP_P_CANDIDATES`` and checks they carry mass ≥ p, else falls back
to the full sort), and one uniform per row picks the token by inverse CDF. The kept set
and the probabilities are the same up to float rounding (the cumulative mass is summed
in another order, so a token sitting exactly on the top-p boundary can land on the other
side by one ulp); the random stream is consumed differently, so a seed does not reproduce
``generate``'s tokens — greedy decoding does (``argmax``), and
:func:`reference_probs` is the full-vocabulary pipeline the tests compare against.

Greedy (``do_sample=False``) is ``argmax`` of ``z`` after the EOS ban of ``min_new_tokens``.
"""

from __future__ import annotations

import torch

__all__ = ["next_tokens", "candidate_probs", "reference_probs", "TOP_P_CANDIDATES"]

TOP_P_CANDIDATES = 256   # top-p without top-k: candidates ranked before falling back to a full sort


def _inverse_cdf(probs: torch.Tensor) -> torch.Tensor:
    """One draw per row from unnormalised ``probs [n, K]`` (≥ 0): index of the first cdf > u."""
    cdf = probs.double().cumsum(dim=-1)                                         # [n, K]
    u = torch.rand((probs.shape[0], 1), dtype=torch.float64, device=probs.device) * cdf[:, -1:]
    # cdf is non-decreasing: a zero-probability token never has cdf > u while its predecessor does not.
    return torch.searchsorted(cdf, u, right=True).clamp_max(probs.shape[-1] - 1).squeeze(1)   # [n]


def reference_probs(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int = 0,
                    top_p: float = 1.0) -> torch.Tensor:
    """The sampling distribution ``[n, V]`` float32 from transformers' own warpers.

    ``TemperatureLogitsWarper`` → ``TopKLogitsWarper`` → ``TopPLogitsWarper`` (each only when
    it is on, as ``generate`` builds them), then softmax over the full vocabulary: the slow
    path of :func:`next_tokens` and the reference its tests compare against.
    """
    from transformers.generation.logits_process import (TemperatureLogitsWarper, TopKLogitsWarper,
                                                        TopPLogitsWarper)

    scores = logits.float()                                                     # [n, V]
    if temperature != 1.0:
        scores = TemperatureLogitsWarper(temperature)(None, scores)
    if top_k:
        scores = TopKLogitsWarper(top_k=top_k)(None, scores)
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p=top_p)(None, scores)
    return torch.softmax(scores, dim=-1)


def candidate_probs(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int = 0,
                    top_p: float = 1.0) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The fast path: ``(token ids [n, K], unnormalised probabilities [n, K])``, or None.

    None means the candidates cannot represent the distribution exactly (a tie at the
    k-th score, or top-p mass beyond the ranked candidates): use :func:`reference_probs`.
    With neither top-k nor top-p the candidates are the whole vocabulary.
    """
    scores = logits.float() / temperature if temperature != 1.0 else logits.float()   # [n, V]
    v = scores.shape[-1]
    k = top_k if 0 < top_k < v else 0
    if not k and top_p >= 1.0:
        ids = torch.arange(v, device=scores.device).expand(scores.shape[0], v)
        return ids, torch.softmax(scores, dim=-1)
    vals, ids = torch.topk(scores, k or min(v, TOP_P_CANDIDATES), dim=-1)       # [n, K] descending
    if k:
        # transformers keeps every token tied with the k-th score: rare, and exact only on the slow path.
        if bool(((scores >= vals[:, -1:]).sum(dim=-1) > k).any()):
            return None
        log_z = torch.logsumexp(vals, dim=-1, keepdim=True)                     # all kept mass is in vals
    else:
        log_z = torch.logsumexp(scores, dim=-1, keepdim=True)                   # full-vocabulary normaliser
    probs = torch.exp(vals - log_z)                                             # [n, K]
    if top_p < 1.0:
        cum = probs.cumsum(dim=-1)
        if not k and bool((cum[:, -1] < top_p).any()):
            return None   # a kept token may lie beyond the candidates
        keep = (cum - probs) < top_p          # mass ranked strictly above the token < p
        keep[:, 0] = True
        probs = probs * keep
    return ids, probs


def next_tokens(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                do_sample: bool = True) -> torch.Tensor:
    """The next token of every row: ``[n]`` long, drawn from the distribution above.

    Args:
        logits: ``[n, V]`` float (read, never modified), EOS already banned where
            ``min_new_tokens`` asks. temperature: τ > 0. top_k: 0 = off. top_p: 1 = off.
        do_sample: False is greedy (``argmax``), the settings are then ignored.

    Uses the global torch RNG of ``logits``' device (one uniform per row per call).
    """
    if not do_sample:
        return logits.argmax(dim=-1)
    fast = candidate_probs(logits, temperature=temperature, top_k=top_k, top_p=top_p)
    if fast is None:
        return _inverse_cdf(reference_probs(logits, temperature=temperature, top_k=top_k, top_p=top_p))
    ids, probs = fast
    return ids.gather(1, _inverse_cdf(probs).unsqueeze(1)).squeeze(1)
