"""Per-token log-probabilities (and entropies) of given completion tokens, memory-lean.

For a prompt x (left-padded) and completion y (right-padded), with temperature τ:

    logp[i, t]    = log softmax(z_{i,t} / τ)[y_{i,t}]          z = the model's logits
    entropy[i, t] = −Σ_v p_v log p_v  of that same distribution

where z_{i,t} are the logits at the position that predicts y_{i,t}. Position ids are
computed from the attention mask, so left padding does not shift positions (matching
generation).

The ``[B, T, V]`` logits are never materialised, with or without gradient. The model is
split into its backbone (hidden states ``h [B, L, H]``) and its linear LM head ``W [V, H]``;
:class:`ChunkedLMHeadLogProb` projects only the completion positions that are attended,
``head_chunk`` positions at a time, and keeps only ``log Z`` per position. Its backward
recomputes each chunk's logits and forms ∂logp/∂z = (onehot(y) − softmax(z/τ)) / τ chunk
by chunk, so the memory beyond the backbone's own activations is one ``[head_chunk, V]``
float32 block, at the price of one more LM-head matmul in the backward. Models whose head
is not a plain linear layer (logit soft-capping or scaling, a LoRA-wrapped head, forward
hooks on the head, no separable backbone) take the generic path: their full logits, ``chunk_size`` rows at a time.

Rollouts come in groups: rows ``i·G .. i·G+G−1`` answer the same prompt. With
``group_size = G`` (and the prompts really identical within each group) the backbone runs
each prompt once, repeats its KV cache G times and runs only the completions against it:
``[n, P] + [N, T]`` positions instead of ``[N, P + T]`` — for a 96-token prompt, 48-token
completions and G = 4 that halves the forward (and, with gradient, the backward and the
activations kept for it). Gradients flow through the repeated cache into the shared
prompt pass. Not for a forward with gradient under gradient checkpointing (a checkpointed
layer cannot keep a cache: its replay would write it twice); the plain path is taken then.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Optional

import torch

__all__ = ["token_logprobs", "position_ids_from_mask", "ChunkedLMHeadLogProb", "split_lm_head",
           "HEAD_CHUNK_BYTES", "new_kv_cache", "cache_kwarg", "groups_share_prompt"]

HEAD_CHUNK_BYTES = 32 * 2 ** 20   # float32 logits of one LM-head chunk (head_chunk = this // (4 V))

# Config attributes that post-process the logits (soft-capping, scaling): the generic path handles those.
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier",
                     "logits_scaling")


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """``[B, L]`` positions counting only attended tokens (0 at the first real token)."""
    return (attention_mask.long().cumsum(dim=1) - 1).clamp_min(0)


def cache_kwarg(model) -> str:
    """The forward's name for the KV cache: ``cache`` (transformers >= 5.2x) or ``past_key_values``."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        params = inspect.signature(type(inner).forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def new_kv_cache(model):
    """An empty transformers ``DynamicCache`` for ``model``."""
    from transformers import DynamicCache
    try:
        return DynamicCache(config=model.config)    # transformers >= 4.56: per-layer types (sliding windows)
    except TypeError:
        return DynamicCache()


def groups_share_prompt(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, group_size: int) -> bool:
    """Whether rows ``i·G .. i·G+G−1`` hold one prompt each (ids and mask; one host sync)."""
    b = prompt_ids.shape[0]
    if group_size <= 1 or b % group_size:
        return False
    ids = prompt_ids.view(b // group_size, group_size, -1)
    mask = prompt_mask.view(b // group_size, group_size, -1)
    return bool((ids == ids[:, :1]).all()) and bool((mask == mask[:, :1]).all())


def split_lm_head(model) -> Optional[tuple[torch.nn.Module, torch.nn.Linear]]:
    """``(backbone, lm_head)`` when ``logits = lm_head(backbone(...).last_hidden_state)`` exactly, else None."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") and hasattr(model, "peft_config") else model
    get_head = getattr(inner, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    backbone = getattr(inner, "base_model", None)
    if type(head) is not torch.nn.Linear or backbone is None or backbone is inner:
        return None
    if head._forward_hooks or head._forward_pre_hooks:   # the lean path never calls the head: honour hooks
        return None
    config = getattr(inner, "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if any(getattr(text, name, None) not in (None, 1, 1.0) for name in _LOGIT_TRANSFORMS):
        return None
    return backbone, head


class ChunkedLMHeadLogProb(torch.autograd.Function):
    """``log softmax(h Wᵀ + b) / τ`` at the targets, chunked: ``(logp [M], entropy [M] or None)``.

    Inputs: ``hidden [M, H]``, ``weight [V, H]``, ``bias [V]`` or None, ``targets [M]`` long,
    ``inv_temp`` = 1/τ, ``chunk`` positions per block, ``with_entropy``. The matmul runs in
    the dtype of ``hidden``/``weight`` (the caller casts them), softmax in float32. The
    entropy output is not differentiable. Saved for backward: ``hidden``, ``weight``
    (references), ``targets`` and ``log Z [M]`` float32.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, inv_temp, chunk, with_entropy):
        m = hidden.shape[0]
        logp = hidden.new_empty(m, dtype=torch.float32)                          # [M]
        log_z = hidden.new_empty(m, dtype=torch.float32)                         # [M]
        entropy = hidden.new_empty(m, dtype=torch.float32) if with_entropy else None
        for s in range(0, m, chunk):
            z = torch.nn.functional.linear(hidden[s:s + chunk], weight, bias).float().mul_(inv_temp)   # [c, V]
            lz = torch.logsumexp(z, dim=-1)                                      # [c]
            logp[s:s + chunk] = z.gather(1, targets[s:s + chunk, None]).squeeze(1) - lz
            log_z[s:s + chunk] = lz
            if with_entropy:
                # H = log Z − Σ p z  (z already divided by τ)
                entropy[s:s + chunk] = lz - (torch.softmax(z, dim=-1) * z).sum(-1)
        ctx.save_for_backward(hidden, weight, bias, targets, log_z)
        ctx.inv_temp, ctx.chunk = inv_temp, chunk
        if entropy is not None:
            ctx.mark_non_differentiable(entropy)
        return logp, entropy

    @staticmethod
    def backward(ctx, grad_logp, _grad_entropy):
        hidden, weight, bias, targets, log_z = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        inv_temp, chunk = ctx.inv_temp, ctx.chunk
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        grad_b = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device) if need_b else None
        for s in range(0, hidden.shape[0], chunk):
            h, g = hidden[s:s + chunk], grad_logp[s:s + chunk].float()           # [c, H], [c]
            z = torch.nn.functional.linear(h, weight, bias).float().mul_(inv_temp)   # [c, V] recomputed
            # ∂logp/∂(z/τ) = onehot(y) − softmax; times g, times 1/τ for the scaling
            dz = z.sub_(log_z[s:s + chunk, None]).exp_().mul_(-g[:, None])     # −g·softmax
            dz.scatter_add_(1, targets[s:s + chunk, None], g[:, None])          # + g·onehot
            dz = dz.mul_(inv_temp).to(hidden.dtype)                             # [c, V]
            if need_h:
                grad_h[s:s + chunk] = dz @ weight.to(hidden.dtype)
            if need_w:
                grad_w.addmm_(dz.t().float(), h.float())
            if need_b:
                grad_b += dz.float().sum(0)
        if need_w:
            grad_w = grad_w.to(weight.dtype)
        if need_b:
            grad_b = grad_b.to(bias.dtype)
        return grad_h, grad_w, grad_b, None, None, None, None


def _autocast_dtype(device: torch.device) -> Optional[torch.dtype]:
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return None


def _gradient_checkpointing(module: torch.nn.Module) -> bool:
    """Whether a forward now would checkpoint layers (they drop the KV cache then; not under no_grad)."""
    return (torch.is_grad_enabled() and module.training
            and any(getattr(m, "gradient_checkpointing", False) for m in module.modules()))


def _hidden_full(backbone, ids: torch.Tensor, att: torch.Tensor, t: int) -> torch.Tensor:
    """``[B, T, H]`` hidden states predicting the T completion tokens of ``ids [B, P+T]``."""
    out = backbone(input_ids=ids, attention_mask=att, position_ids=position_ids_from_mask(att), use_cache=False)
    return out.last_hidden_state[:, -(t + 1):-1]


def _hidden_shared_prefix(backbone, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                          completion_ids: torch.Tensor, completion_mask: torch.Tensor,
                          group_size: int) -> torch.Tensor:
    """The same ``[B, T, H]`` with each group's prompt run once (its KV cache repeated G times)."""
    t = completion_ids.shape[1]
    n = prompt_ids.shape[0] // group_size
    p_ids, p_mask = prompt_ids[::group_size], prompt_mask[::group_size].long()  # [n, P]
    pos = position_ids_from_mask(p_mask)                                        # [n, P]
    cache = new_kv_cache(backbone)
    kv = {cache_kwarg(backbone): cache, "use_cache": True}
    first = backbone(input_ids=p_ids, attention_mask=p_mask, position_ids=pos,
                     **kv).last_hidden_state[:, -1:]                            # [n, 1, H] predicts y_0
    rows = torch.arange(n, device=prompt_ids.device).repeat_interleave(group_size)   # [B]
    first = first[rows]                                                         # [B, 1, H]
    if t == 1:
        return first
    cache.reorder_cache(rows)                                                   # differentiable index_select
    att = torch.cat([p_mask[rows], completion_mask[:, :-1].long()], dim=1)      # [B, P + T − 1]
    cpos = pos[rows, -1:] + 1 + torch.arange(t - 1, device=pos.device)          # [B, T − 1]
    rest = backbone(input_ids=completion_ids[:, :-1], attention_mask=att, position_ids=cpos,
                    **kv).last_hidden_state                                     # [B, T − 1, H] predicts y_1..
    return torch.cat([first, rest], dim=1)                                      # [B, T, H]


def _head_logprobs(head, hidden, completion_ids, completion_mask, temperature, head_chunk, with_entropy):
    """The chunked LM head on the attended completion positions of ``hidden [B, T, H]`` only."""
    b, t = completion_ids.shape
    keep = completion_mask.bool()                                               # [B, T]
    h = hidden[keep]                                                            # [M, H]
    weight, bias = head.weight, head.bias
    low = _autocast_dtype(h.device)
    if low is not None:   # the head's matmul in autocast's dtype in forward and backward alike
        h, weight = h.to(low), weight.to(low)
        bias = None if bias is None else bias.to(low)
    elif h.dtype != weight.dtype:
        h = h.to(weight.dtype)
    chunk = head_chunk or max(1, HEAD_CHUNK_BYTES // (4 * weight.shape[0]))
    ctx = torch.autocast(h.device.type, enabled=False) if low is not None else contextlib.nullcontext()
    with ctx:
        lp, ent = ChunkedLMHeadLogProb.apply(h, weight, bias, completion_ids[keep], 1.0 / temperature, chunk,
                                             with_entropy)                      # [M], [M]
    # masked_scatter keeps the result attached to the graph even when no position is attended.
    logp = lp.new_zeros((b, t)).masked_scatter(keep, lp)                        # [B, T]
    entropy = None if ent is None else ent.new_zeros((b, t)).masked_scatter(keep, ent)
    return logp, entropy


def _forward_tail(model, ids: torch.Tensor, att: torch.Tensor, keep: int) -> torch.Tensor:
    pos = position_ids_from_mask(att)                                         # [b, L]
    try:
        out = model(input_ids=ids, attention_mask=att, position_ids=pos, logits_to_keep=keep, use_cache=False)
        logits = out.logits
    except TypeError:   # models without logits_to_keep: the full logits of this chunk only
        logits = model(input_ids=ids, attention_mask=att, position_ids=pos, use_cache=False).logits
    return logits[:, -keep:]                                                  # [b, keep, V]


def _generic_logprobs(model, ids, att, completion_ids, temperature, with_entropy):
    t = completion_ids.shape[1]
    logits = _forward_tail(model, ids, att, t + 1)[:, :-1]                    # [c, T, V] predicts y_t
    logits = logits.float() / temperature                                     # [c, T, V] float32 (chunk only)
    logp_all = torch.log_softmax(logits, dim=-1)                              # [c, T, V]
    logp = logp_all.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)      # [c, T]
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = -(logp_all.exp() * logp_all).sum(-1)                    # [c, T]
    return logp, entropy


def token_logprobs(model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, completion_ids: torch.Tensor,
                   completion_mask: torch.Tensor, *, temperature: float = 1.0, chunk_size: Optional[int] = None,
                   with_entropy: bool = False, head_chunk: Optional[int] = None, group_size: int = 1,
                   lean: bool = True) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Log-probs ``[B, T]`` float32 of ``completion_ids`` under ``model`` (and entropies).

    Args:
        model: causal LM; called in its current mode, under the caller's grad mode
            (wrap in ``torch.no_grad()`` for scoring; leave grad on for the update).
        prompt_ids: [B, P] long, left-padded.   prompt_mask: [B, P] 0/1.
        completion_ids: [B, T] long.   completion_mask: [B, T] bool/0/1, the tokens
            the model attends to (padding after EOS is 0).
        temperature: τ > 0, the sampling temperature (log-probs of the sampled distribution).
        chunk_size: rows per backbone forward (None: all rows at once; rounded to whole groups).
        with_entropy: also return the detached entropy ``[B, T]`` float32.
        head_chunk: positions per LM-head block (None: ``HEAD_CHUNK_BYTES`` of float32 logits).
        group_size: G when rows ``i·G .. i·G+G−1`` share prompt i: each prompt runs once
            (checked; rows that do not share prompts take the plain path).
        lean: use the chunked LM head (and the shared prompt) where the model allows it
            (False: the generic path, full logits per row chunk; for comparisons).

    Returns:
        ``(logp, entropy_or_None)``. Values where ``completion_mask`` is 0 are finite but
        meaningless (0 on the lean path).
    """
    b, t = completion_ids.shape
    if temperature <= 0:
        raise ValueError(f"temperature: must be > 0, got {temperature!r}")
    split = split_lm_head(model) if lean else None
    shared = (split is not None and not _gradient_checkpointing(split[0])
              and groups_share_prompt(prompt_ids, prompt_mask, group_size))
    g = group_size if shared else 1
    step = b if not chunk_size else max(g, chunk_size // g * g)
    logps, ents = [], []
    for start in range(0, b, step):
        sl = slice(start, start + step)
        if shared:
            hidden = _hidden_shared_prefix(split[0], prompt_ids[sl], prompt_mask[sl], completion_ids[sl],
                                           completion_mask[sl], g)                      # [c, T, H]
        else:
            ids = torch.cat([prompt_ids[sl], completion_ids[sl]], dim=1)               # [c, P+T]
            att = torch.cat([prompt_mask[sl].long(), completion_mask[sl].long()], dim=1)
        if split is None:
            lp, ent = _generic_logprobs(model, ids, att, completion_ids[sl], temperature, with_entropy)
        else:
            if not shared:
                hidden = _hidden_full(split[0], ids, att, t)                           # [c, T, H]
            lp, ent = _head_logprobs(split[1], hidden, completion_ids[sl], completion_mask[sl], temperature,
                                     head_chunk, with_entropy)                         # [c, T] x2
        logps.append(lp)
        if with_entropy:
            ents.append(ent.detach())
    logp = torch.cat(logps, dim=0)                                             # [B, T]
    entropy = torch.cat(ents, dim=0) if with_entropy else None                 # [B, T]
    return logp, entropy
