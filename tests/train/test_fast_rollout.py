"""The fast rollout and the lean scorer against the real alternatives they replace.

- sampling: the candidate distribution equals transformers' own warpers; draws follow it.
- rollout: greedy tokens equal transformers' ``generate`` (ragged prompts, rows ending at
  different steps, min_new_tokens, packed CPU weights, deferred stop checks).
- scoring: the chunked LM head and the once-per-group prompt give the generic path's
  log-probs, entropies and gradients, and save nothing of size [N, T, V] for backward.
"""

from __future__ import annotations

import pytest
import torch

from cast_torch.train.packing import packed_linears, packing_available
from cast_torch.train.rollout import generate, hf_only_settings
from cast_torch.train.sampling import candidate_probs, next_tokens, reference_probs
from cast_torch.train.scoring import groups_share_prompt, split_lm_head, token_logprobs
from cast_torch.train.tiny import make_tiny_model, make_tokenizer

SETTINGS = [  # (temperature, top_k, top_p)
    (1.0, 0, 1.0), (0.7, 20, 0.95), (0.7, 0, 0.95), (1.3, 5, 1.0), (0.5, 0, 0.5), (1.0, 3, 0.3), (2.0, 40, 0.9),
]


@pytest.fixture(scope="module")
def tok():
    t = make_tokenizer()
    t.padding_side = "left"
    return t


@pytest.fixture(scope="module")
def model(tok):
    """A tiny random model with large weights: varied greedy outputs, some rows ending early."""
    m = make_tiny_model(tok, hidden_size=32, num_layers=2, num_heads=2, seed=3).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.4)
    return m


def _dense(logits, **kw):
    fast = candidate_probs(logits, **kw)
    assert fast is not None
    ids, probs = fast
    dense = torch.zeros(logits.shape, dtype=torch.float32).scatter_(1, ids, probs)
    return dense / dense.sum(-1, keepdim=True)


@pytest.mark.parametrize("temperature, top_k, top_p", SETTINGS)
def test_candidate_distribution_equals_transformers_warpers(temperature, top_k, top_p):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 300, generator=gen) * 3                  # peaked enough for top-p's 256 candidates
    kw = dict(temperature=temperature, top_k=top_k, top_p=top_p)
    expected = reference_probs(logits, **kw)
    torch.testing.assert_close(_dense(logits, **kw), expected, rtol=0, atol=2e-6)
    assert torch.equal(_dense(logits, **kw) > 0, expected > 0)        # the same kept set


def test_ties_and_flat_distributions_take_the_exact_path():
    tied = torch.tensor([[3.0, 2.0, 2.0, 2.0, 1.0, 0.0]])             # top-2 boundary inside a tie
    assert candidate_probs(tied, top_k=2) is None
    probs = reference_probs(tied, top_k=2)
    assert torch.equal(probs > 0, torch.tensor([[True, True, True, True, False, False]]))   # ties kept
    flat = torch.zeros(2, 1000)                                       # top-p mass beyond 256 candidates
    assert candidate_probs(flat, top_p=0.9) is None
    torch.manual_seed(0)
    draws = next_tokens(tied.expand(4000, -1), top_k=2)
    assert set(draws.tolist()) == {0, 1, 2, 3}
    assert abs(float((draws == 0).float().mean()) - float(probs[0, 0])) < 0.03


@pytest.mark.parametrize("temperature, top_k, top_p", [(0.7, 3, 0.9), (1.0, 0, 0.8), (1.5, 0, 1.0)])
def test_draws_follow_the_distribution(temperature, top_k, top_p):
    logits = torch.tensor([[2.0, 1.5, 1.0, 0.2, -1.0, 0.7]])
    p = reference_probs(logits, temperature=temperature, top_k=top_k, top_p=top_p)[0]
    torch.manual_seed(1)
    n = 40000
    draws = next_tokens(logits.expand(n, -1), temperature=temperature, top_k=top_k, top_p=top_p)
    freq = torch.bincount(draws, minlength=6).double() / n
    sigma = (p.double() * (1 - p.double()) / n).sqrt()
    assert bool(((freq - p.double()).abs() <= 5 * sigma + 1e-12).all()), (freq, p)
    assert bool((freq[p == 0] == 0).all())                             # filtered tokens are never drawn


def test_greedy_is_argmax():
    logits = torch.randn(5, 50)
    assert torch.equal(next_tokens(logits, do_sample=False, temperature=0.3, top_k=2), logits.argmax(-1))


PROMPTS = ["12+7=", "3-1=", "45+45+1=", "9="]


@pytest.mark.parametrize("packed, sync_every, min_new", [(False, 1, 0), (True, 1, 0), (False, 3, 0), (False, 1, 4)])
def test_greedy_tokens_equal_transformers_generate(model, tok, packed, sync_every, min_new):
    if packed and not packing_available():
        pytest.skip("this torch build has no oneDNN packed linear")
    kw = dict(num_samples=2, max_new_tokens=10, do_sample=False, min_new_tokens=min_new)
    ref = generate(model, tok, PROMPTS, engine="hf", **kw)
    ours = generate(model, tok, PROMPTS, engine="cast", packed_weights=packed, sync_every=sync_every, **kw)
    ends = ref.valid_mask.sum(1)
    assert len(set(ends.tolist())) > 1 and not ref.truncated.all()    # rows really end at different steps
    assert torch.equal(ours.completion_ids, ref.completion_ids)
    assert torch.equal(ours.valid_mask, ref.valid_mask) and torch.equal(ours.truncated, ref.truncated)
    assert torch.equal(ours.prompt_ids, ref.prompt_ids) and ours.texts == ref.texts
    if min_new:
        assert int(ends.min()) >= min_new + 1                           # EOS banned for min_new tokens


def test_sampled_rollout_is_seeded_and_respects_top_k(model, tok):
    kw = dict(num_samples=4, max_new_tokens=8, temperature=1.5, top_k=3, engine="cast")
    torch.manual_seed(5)
    a = generate(model, tok, PROMPTS, **kw)
    torch.manual_seed(5)
    b = generate(model, tok, PROMPTS, **kw)
    assert torch.equal(a.completion_ids, b.completion_ids)
    # Every sampled token is among the 3 most likely under the model at its position.
    with torch.no_grad():
        ids = torch.cat([a.prompt_ids, a.completion_ids], 1)
        att = torch.cat([a.prompt_mask, a.valid_mask.long()], 1)
        pos = (att.cumsum(1) - 1).clamp_min(0)
        logits = model(input_ids=ids, attention_mask=att, position_ids=pos).logits[:, -9:-1]
    top3 = logits.topk(3, dim=-1).indices
    hit = (top3 == a.completion_ids[..., None]).any(-1)
    assert bool(hit[a.valid_mask].all())


def test_engine_choice_and_errors(model, tok):
    with pytest.raises(ValueError, match="engine"):
        generate(model, tok, PROMPTS, num_samples=1, max_new_tokens=2, engine="vllm")
    model.generation_config.repetition_penalty = 1.3
    try:
        assert hf_only_settings(model) == ["repetition_penalty"]
        with pytest.raises(ValueError, match="repetition_penalty"):
            generate(model, tok, PROMPTS, num_samples=1, max_new_tokens=2, engine="cast")
        greedy = generate(model, tok, PROMPTS, num_samples=1, max_new_tokens=4, do_sample=False)   # auto -> hf
        hf = generate(model, tok, PROMPTS, num_samples=1, max_new_tokens=4, do_sample=False, engine="hf")
        assert torch.equal(greedy.completion_ids, hf.completion_ids)
    finally:
        model.generation_config.repetition_penalty = None
    assert hf_only_settings(model) == []


@pytest.mark.skipif(not packing_available(), reason="this torch build has no oneDNN packed linear")
def test_packed_linears_compute_the_same_product_and_restore(model):
    head = model.get_output_embeddings()
    x = torch.randn(3, 4, head.in_features)
    with torch.no_grad():
        ref = head(x)
        with packed_linears(model) as n:
            assert n == sum(type(m) is torch.nn.Linear for m in model.modules())
            got = head(x)
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
        assert "forward" not in head.__dict__
        with packed_linears(model) as n:
            pass
    with packed_linears(model) as n:      # grad mode on: the packed ops have no backward
        assert n == 0


@pytest.mark.skipif(not packing_available(), reason="this torch build has no oneDNN packed linear")
def test_packed_copies_follow_the_weights_and_are_dropped(tok):
    m = make_tiny_model(tok, hidden_size=32, num_layers=1, num_heads=2, seed=4).eval()
    lin = m.model.layers[0].mlp.down_proj
    x = torch.randn(2, lin.in_features)
    with torch.no_grad():
        with packed_linears(m):
            packed = lin.forward.__defaults__[0]
        lin.weight.mul_(2.0)                                           # the next block packs the new weights
        with packed_linears(m):
            assert lin.forward.__defaults__[0] is not packed
            torch.testing.assert_close(lin(x), x @ lin.weight.t(), rtol=1e-5, atol=1e-5)
    assert "forward" not in lin.__dict__                               # nothing of the block is kept


# -- the lean scorer --------------------------------------------------------------------------

def _rollout(model, tok):
    torch.manual_seed(0)
    ro = generate(model, tok, PROMPTS[:3], num_samples=2, max_new_tokens=6, temperature=1.5)
    mask = ro.valid_mask.clone()
    mask[0, 3:] = False                       # a short row
    mask[1] = False                           # an empty row
    return ro, mask


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("lora, group_size, chunk_size", [(False, 1, None), (True, 1, None), (False, 2, 3),
                                                        (True, 2, None), (False, 2, 1)])
def test_lean_logprobs_entropy_and_grads_equal_the_generic_path(tok, lora, group_size, chunk_size):
    model = make_tiny_model(tok, hidden_size=32, num_layers=2, num_heads=2, seed=3)
    if lora:
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
        for n, p in model.named_parameters():   # B != 0, so adapter gradients are not trivially equal
            if "lora_B" in n:
                torch.nn.init.normal_(p, std=0.1)
    assert split_lm_head(model) is not None
    ro, mask = _rollout(model, tok)
    weights = torch.randn(mask.shape)
    model.train()
    out = {}
    for lean in (False, True):
        model.zero_grad(set_to_none=True)
        lp, ent = token_logprobs(model, ro.prompt_ids, ro.prompt_mask, ro.completion_ids, mask, temperature=1.3,
                                 with_entropy=True, lean=lean, head_chunk=4, group_size=group_size,
                                 chunk_size=chunk_size)
        (lp * weights * mask).sum().backward()
        out[lean] = (lp.detach(), ent, _grads(model))
    (lp0, e0, g0), (lp1, e1, g1) = out[False], out[True]
    torch.testing.assert_close(lp1[mask], lp0[mask], rtol=0, atol=1e-5)
    torch.testing.assert_close(e1[mask], e0[mask], rtol=0, atol=1e-5)
    assert set(g0) == set(g1) and g1
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=1e-4, atol=1e-6, msg=name)
    assert bool((lp1[~mask] == 0).all())


def test_shared_prompt_needs_identical_prompts_per_group(tok, model):
    ro, mask = _rollout(model, tok)                       # 3 prompts x 2 samples
    assert groups_share_prompt(ro.prompt_ids, ro.prompt_mask, 2)
    assert not groups_share_prompt(ro.prompt_ids, ro.prompt_mask, 3)      # groups of 3 mix prompts
    assert not groups_share_prompt(ro.prompt_ids[:5], ro.prompt_mask[:5], 2)
    with torch.no_grad():
        ref, _ = token_logprobs(model, ro.prompt_ids, ro.prompt_mask, ro.completion_ids, mask)
        got, _ = token_logprobs(model, ro.prompt_ids, ro.prompt_mask, ro.completion_ids, mask, group_size=3)
    torch.testing.assert_close(got, ref, rtol=0, atol=0)  # not shared: the plain path, bit for bit


def test_lean_forward_saves_no_full_logits_for_backward(tok):
    model = make_tiny_model(tok, hidden_size=32, num_layers=1, num_heads=2, seed=3).train()
    ro, mask = _rollout(model, tok)
    vocab = model.config.vocab_size
    logits_saved = {}
    for lean in (False, True):
        shapes = []

        def pack(x):
            shapes.append(tuple(x.shape))
            return x

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
            token_logprobs(model, ro.prompt_ids, ro.prompt_mask, ro.completion_ids, mask, lean=lean, head_chunk=4)
        assert shapes
        logits_saved[lean] = [s for s in shapes if s[-1] == vocab]     # anything shaped like logits
    assert any(len(s) == 3 and s[0] * s[1] == mask.numel() for s in logits_saved[False])   # [N, T, V] kept
    assert logits_saved[True] == []                                    # the lean path keeps none


def test_lean_path_under_cpu_bf16_autocast_is_close(tok):
    model = make_tiny_model(tok, hidden_size=32, num_layers=1, num_heads=2, seed=3)
    ro, mask = _rollout(model, tok)
    with torch.no_grad():
        ref, _ = token_logprobs(model, ro.prompt_ids, ro.prompt_mask, ro.completion_ids, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low, _ = token_logprobs(model, ro.prompt_ids, ro.prompt_mask, ro.completion_ids, mask)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low[mask], ref[mask], rtol=0, atol=0.1)


def test_hooked_or_wrapped_heads_take_the_generic_path(tok):
    model = make_tiny_model(tok, hidden_size=32, num_layers=1, num_heads=2, seed=3)
    handle = model.get_output_embeddings().register_forward_hook(lambda m, i, o: o)
    assert split_lm_head(model) is None
    handle.remove()
    model.config.final_logit_softcapping = 30.0
    assert split_lm_head(model) is None


def test_trainer_fixed_length_and_engine_settings(make_config, tmp_path):
    from cast_torch.train import Trainer

    with pytest.raises(ValueError, match="min_new_tokens"):
        make_config(min_new_tokens=7)                                   # > max_new_tokens = 6
    with pytest.raises(ValueError, match="generation_engine"):
        make_config(generation_engine="vllm")
    for engine in ("cast", "hf"):
        tr = Trainer(make_config(min_new_tokens=6, generation_engine=engine, out=str(tmp_path / engine)),
                     log=lambda s: None)
        m = tr.step()
        tr.close()
        assert m["completion_len"] == 6.0 and m["truncated_frac"] == 1.0   # EOS banned for all 6 tokens
