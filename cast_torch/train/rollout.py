"""Rollout: sample G completions per prompt with ``generate`` and build the masks.

Layout of a rollout of B = prompts × G rows:

    prompt_ids      [B, P]  left-padded (padding where prompt_mask == 0)
    completion_ids  [B, T]  right-padded after the first EOS
    valid_mask      [B, T]  True on real completion tokens, the first EOS included
    loss_mask       [B, T]  valid_mask, minus truncated rows when mask_truncated

EOS is inside the masks (the policy must learn to stop); padding is outside. A row is
truncated when it has no EOS within ``max_new_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

__all__ = ["Rollout", "encode_prompts", "generate", "completion_masks", "eos_ids", "decode_completions"]


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


@torch.no_grad()
def generate(model, tokenizer, prompt_texts: Sequence[str], *, num_samples: int, max_new_tokens: int,
             temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0, do_sample: bool = True,
             mask_truncated: bool = False, device: Any = None) -> Rollout:
    """Sample ``num_samples`` completions of every prompt (rows ``i*G .. i*G+G-1`` share prompt i).

    Args:
        model: a causal LM (``generate``); switched to eval mode for sampling.
        tokenizer: left-padding tokenizer.
        prompt_texts: the rendered prompts (chat template already applied).
        num_samples: G. temperature/top_p/top_k: sampling (top_k = 0: off).
        do_sample: False gives greedy decoding (evaluation).
        mask_truncated: exclude rows without EOS from ``loss_mask``.

    Returns:
        :class:`Rollout` with B = len(prompt_texts) * num_samples rows.
    """
    from transformers import GenerationConfig

    device = device if device is not None else next(model.parameters()).device
    ids, att = encode_prompts(tokenizer, prompt_texts, device)              # [n, P]
    ids = ids.repeat_interleave(num_samples, dim=0)                          # [B, P]
    att = att.repeat_interleave(num_samples, dim=0)                          # [B, P]
    eos = eos_ids(model, tokenizer)
    kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, do_sample=do_sample,
                                  pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)
    if do_sample:
        kwargs.update(temperature=temperature, top_p=top_p, top_k=top_k)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    was_training = model.training
    model.eval()
    out = model.generate(input_ids=ids, attention_mask=att, generation_config=GenerationConfig(**kwargs))
    model.train(was_training)
    completion = out[:, ids.shape[1]:]                                       # [B, T]
    if completion.shape[1] == 0:   # max_new_tokens == 0 cannot happen (validated); keep a column anyway
        completion = torch.full((ids.shape[0], 1), eos[0], dtype=ids.dtype, device=device)
    valid, truncated = completion_masks(completion, eos)                     # [B, T], [B]
    completion = torch.where(valid, completion, torch.full_like(completion, tokenizer.pad_token_id))
    loss_mask = valid & ~truncated[:, None] if mask_truncated else valid.clone()   # [B, T]
    texts = decode_completions(tokenizer, completion, valid, eos)
    return Rollout(ids, att, completion, valid, loss_mask, truncated, texts)
