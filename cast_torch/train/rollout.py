"""Rollout: sample G completions per prompt and build the masks.

Layout of a rollout of B = prompts × G rows:

    prompt_ids      [B, P]  left-padded (padding where prompt_mask == 0)
    completion_ids  [B, T]  right-padded after the first EOS
    valid_mask      [B, T]  True on real completion tokens, the first EOS included
    loss_mask       [B, T]  valid_mask, minus truncated rows when mask_truncated

EOS is inside the masks (the policy must learn to stop); padding is outside. A row is
truncated when it has no EOS within ``max_new_tokens``.

Sampling (``engine="cast"``, the default where it applies) is an incremental decode loop
over the model's own forward with a KV cache, written for throughput:

- each distinct prompt is prefilled once and its cache repeated G times (transformers'
  ``generate`` prefills all B = n·G rows);
- a row that has produced EOS leaves the batch (its cache rows are dropped), and the loop
  stops when every row has ended or at ``max_new_tokens``;
- next tokens come from :mod:`cast_torch.train.sampling` (transformers' temperature /
  top-k / top-p semantics over k candidates instead of the full vocabulary);
- on CPU the linear layers multiply by oneDNN-prepacked weights (:mod:`.packing`);
- on an accelerator the "anyone still running?" check (a host sync) runs every
  ``sync_every`` steps, not every step.

``engine="hf"`` is transformers' ``generate``; ``"auto"`` falls back to it for models the
loop does not cover (encoder-decoders, or a generation config asking for logits
processors beyond temperature/top-k/top-p, e.g. a repetition penalty).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch

from .packing import packed_linears
from .sampling import next_tokens
from .scoring import cache_kwarg, new_kv_cache, position_ids_from_mask

__all__ = ["Rollout", "encode_prompts", "generate", "completion_masks", "eos_ids", "decode_completions",
           "ENGINES", "hf_only_settings"]

ENGINES = ("auto", "cast", "hf")


@dataclass
class Rollout:
    """One batch of sampled completions (see the module docstring for the layout)."""

    prompt_ids: torch.Tensor        # [B, P] long
    prompt_mask: torch.Tensor       # [B, P] long 0/1
    completion_ids: torch.Tensor    # [B, T] long
    valid_mask: torch.Tensor        # [B, T] bool
    loss_mask: torch.Tensor         # [B, T] bool
    truncated: torch.Tensor         # [B] bool
    texts: list[str]                # B decoded completions (EOS and padding removed)


def eos_ids(model, tokenizer) -> list[int]:
    """All token ids that end a completion (tokenizer EOS plus the generation config's)."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(gen, int):
        ids.add(gen)
    elif gen is not None:
        ids.update(int(i) for i in gen)
    if not ids:
        raise ValueError("model: no EOS token id in the tokenizer or the generation config")
    return sorted(ids)


def encode_prompts(tokenizer, texts: Sequence[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt ids and attention mask, both ``[B, P]`` long, on ``device``."""
    enc = tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
    if enc.input_ids.shape[1] == 0:
        raise ValueError("prompts: every prompt tokenized to zero tokens")
    return enc.input_ids.to(device), enc.attention_mask.to(device)


def completion_masks(completion_ids: torch.Tensor, eos: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(valid_mask [B, T] bool, truncated [B] bool)`` for right-padded completions.

    A position is valid when no EOS occurs strictly before it, so the first EOS is
    inside the mask and everything after it (padding, even if pad == EOS) is outside.
    """
    is_eos = torch.isin(completion_ids, torch.tensor(list(eos), device=completion_ids.device))  # [B, T]
    before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()                                 # [B, T] EOS strictly before
    valid = before == 0                                                                          # [B, T]
    truncated = ~is_eos.any(dim=1)                                                               # [B]
    return valid, truncated


def decode_completions(tokenizer, completion_ids: torch.Tensor, valid_mask: torch.Tensor,
                       eos: Sequence[int]) -> list[str]:
    """Text of each completion: the valid tokens without the EOS."""
    eos_set = set(eos)
    out = []
    for row, m in zip(completion_ids.tolist(), valid_mask.tolist()):
        toks = [t for t, keep in zip(row, m) if keep and t not in eos_set]
        out.append(tokenizer.decode(toks, skip_special_tokens=True))
    return out


# Generation-config settings that add logits processors the decode loop does not implement
# (their "off" values); a model whose generation config sets one is sampled by transformers.
_HF_ONLY = {
    "repetition_penalty": (None, 1.0), "encoder_repetition_penalty": (None, 1.0), "no_repeat_ngram_size": (None, 0),
    "encoder_no_repeat_ngram_size": (None, 0), "bad_words_ids": (None,), "force_words_ids": (None,),
    "suppress_tokens": (None,), "begin_suppress_tokens": (None,), "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,), "min_length": (None, 0), "min_p": (None,), "typical_p": (None, 1.0),
    "epsilon_cutoff": (None, 0.0), "eta_cutoff": (None, 0.0), "sequence_bias": (None,),
    "exponential_decay_length_penalty": (None,), "guidance_scale": (None, 1.0), "watermarking_config": (None,),
    "top_h": (None,), "renormalize_logits": (None, False), "num_beams": (None, 1), "penalty_alpha": (None,),
    "token_healing": (None, False), "dola_layers": (None,), "prompt_lookup_num_tokens": (None,),
}


def hf_only_settings(model) -> list[str]:
    """Names of ``model.generation_config`` settings only transformers' ``generate`` honours."""
    gen = getattr(model, "generation_config", None)
    if gen is None:
        return []
    return sorted(name for name, off in _HF_ONLY.items() if getattr(gen, name, None) not in off)


def _use_cast_engine(model, engine: str) -> bool:
    if engine not in ENGINES:
        raise ValueError(f"engine: must be one of {ENGINES}, got {engine!r}")
    if engine == "hf":
        return False
    config = getattr(model, "config", None)
    unsupported = []
    if getattr(config, "is_encoder_decoder", False):
        unsupported.append("an encoder-decoder model")
    unsupported += [f"generation_config.{name}" for name in hf_only_settings(model)]
    if unsupported and engine == "cast":
        raise ValueError(f"engine='cast': the decode loop does not cover {', '.join(unsupported)}; "
                         "use engine='hf' (transformers' generate) or 'auto'")
    return not unsupported


def _decode(model, ids: torch.Tensor, att: torch.Tensor, *, num_samples: int, max_new_tokens: int,
            min_new_tokens: int, eos: Sequence[int], pad_id: int, temperature: float, top_p: float, top_k: int,
            do_sample: bool, sync_every: int) -> torch.Tensor:
    """Completion ids ``[n·G, T]`` (T <= max_new_tokens; after a row's EOS: anything) for prompts ``[n, P]``."""
    n, device = ids.shape[0], ids.device
    eos_t = torch.tensor(list(eos), device=device)
    pos = position_ids_from_mask(att)                                         # [n, P]
    cache = new_kv_cache(model)
    kv = {cache_kwarg(model): cache, "use_cache": True}
    try:
        logits = model(input_ids=ids, attention_mask=att, position_ids=pos, logits_to_keep=1, **kv).logits
    except TypeError:   # a model without logits_to_keep: the prefill's full logits, once
        logits = model(input_ids=ids, attention_mask=att, position_ids=pos, **kv).logits
    logits = logits[:, -1].float()                                            # [n, V] prefill, distinct prompts
    rows = torch.arange(n, device=device).repeat_interleave(num_samples)      # [B] prompt of each row
    cache.reorder_cache(rows)                                                 # prefix cache repeated G times
    logits, att, last = logits[rows], att[rows], pos[rows, -1:]               # [B, V], [B, P], [B, 1]
    b = rows.shape[0]
    out = torch.full((b, max_new_tokens), pad_id, dtype=ids.dtype, device=device)   # [B, T]
    live = torch.arange(b, device=device)                                     # output row of each batch row
    ended = torch.zeros(b, dtype=torch.bool, device=device)                   # [b] EOS already produced
    steps = max_new_tokens
    for t in range(max_new_tokens):
        if t < min_new_tokens:
            logits[:, eos_t] = float("-inf")
        tok = next_tokens(logits, temperature=temperature, top_k=top_k, top_p=top_p, do_sample=do_sample)  # [b]
        out[live, t] = tok
        if t + 1 == max_new_tokens:
            break
        ended |= torch.isin(tok, eos_t)
        if (t + 1) % sync_every == 0:
            keep = (~ended).nonzero().squeeze(1)                              # host sync
            if keep.numel() == 0:
                steps = t + 1
                break
            if keep.numel() < live.numel():   # finished rows leave the batch and the cache
                cache.reorder_cache(keep)
                live, tok, att, last, ended = live[keep], tok[keep], att[keep], last[keep], ended[keep]
        att = torch.cat([att, att.new_ones((att.shape[0], 1))], dim=1)       # [b, L + 1]
        last = last + 1                                                       # [b, 1]
        logits = model(input_ids=tok[:, None], attention_mask=att, position_ids=last,
                       **kv).logits[:, -1].float()                            # [b, V]
    return out[:, :steps]


@torch.no_grad()
def generate(model, tokenizer, prompt_texts: Sequence[str], *, num_samples: int, max_new_tokens: int,
             temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0, do_sample: bool = True,
             mask_truncated: bool = False, device: Any = None, min_new_tokens: int = 0, engine: str = "auto",
             packed_weights: bool = True, sync_every: Optional[int] = None) -> Rollout:
    """Sample ``num_samples`` completions of every prompt (rows ``i*G .. i*G+G-1`` share prompt i).

    Args:
        model: a causal LM; switched to eval mode for sampling.
        tokenizer: left-padding tokenizer.
        prompt_texts: the rendered prompts (chat template already applied).
        num_samples: G. temperature/top_p/top_k: sampling (top_k = 0: off).
        do_sample: False gives greedy decoding (evaluation).
        mask_truncated: exclude rows without EOS from ``loss_mask``.
        min_new_tokens: EOS is banned before this many new tokens (fixed-length benchmarks).
        engine: "cast" (the decode loop above), "hf" (transformers' ``generate``) or "auto".
        packed_weights: on CPU, decode with prepacked linear weights (:mod:`.packing`).
        sync_every: steps between checks whether every row has ended (default: 1 on CPU, 8 elsewhere).

    Returns:
        :class:`Rollout` with B = len(prompt_texts) * num_samples rows.
    """
    device = device if device is not None else next(model.parameters()).device
    ids, att = encode_prompts(tokenizer, prompt_texts, device)              # [n, P]
    eos = eos_ids(model, tokenizer)
    was_training = model.training
    model.eval()
    try:
        if _use_cast_engine(model, engine):
            every = sync_every or (1 if device.type == "cpu" else 8)
            with packed_linears(model, batch_hint=ids.shape[0] * num_samples, enabled=packed_weights):
                completion = _decode(model, ids, att, num_samples=num_samples, max_new_tokens=max_new_tokens,
                                     min_new_tokens=min_new_tokens, eos=eos, pad_id=tokenizer.pad_token_id,
                                     temperature=temperature, top_p=top_p, top_k=top_k, do_sample=do_sample,
                                     sync_every=every)                           # [B, T]
            ids = ids.repeat_interleave(num_samples, dim=0)                     # [B, P]
            att = att.repeat_interleave(num_samples, dim=0)                     # [B, P]
        else:
            ids = ids.repeat_interleave(num_samples, dim=0)                     # [B, P]
            att = att.repeat_interleave(num_samples, dim=0)                     # [B, P]
            completion = _hf_generate(model, ids, att, tokenizer.pad_token_id, eos, max_new_tokens=max_new_tokens,
                                      min_new_tokens=min_new_tokens, temperature=temperature, top_p=top_p,
                                      top_k=top_k, do_sample=do_sample)          # [B, T]
    finally:
        model.train(was_training)
    if completion.shape[1] == 0:   # max_new_tokens == 0 cannot happen (validated); keep a column anyway
        completion = torch.full((ids.shape[0], 1), eos[0], dtype=ids.dtype, device=device)
    valid, truncated = completion_masks(completion, eos)                     # [B, T], [B]
    completion = torch.where(valid, completion, torch.full_like(completion, tokenizer.pad_token_id))
    loss_mask = valid & ~truncated[:, None] if mask_truncated else valid.clone()   # [B, T]
    texts = decode_completions(tokenizer, completion, valid, eos)
    return Rollout(ids, att, completion, valid, loss_mask, truncated, texts)


def _hf_generate(model, ids: torch.Tensor, att: torch.Tensor, pad_id: int, eos: Sequence[int], *,
                 max_new_tokens: int, min_new_tokens: int, temperature: float, top_p: float, top_k: int,
                 do_sample: bool) -> torch.Tensor:
    """transformers' ``generate`` on all B rows: completion ids ``[B, T]``."""
    from transformers import GenerationConfig

    kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, pad_token_id=pad_id,
                                  eos_token_id=list(eos), min_new_tokens=min_new_tokens or None)
    if do_sample:
        kwargs.update(temperature=temperature, top_p=top_p, top_k=top_k)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    out = model.generate(input_ids=ids, attention_mask=att, generation_config=GenerationConfig(**kwargs))
    return out[:, ids.shape[1]:]
