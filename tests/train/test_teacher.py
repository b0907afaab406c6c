"""The LoRA self-teacher is an adapter on the one model: it scores as the base, then as the snapshot."""

from __future__ import annotations

import pytest
import torch

from cast_torch.train import Trainer
from cast_torch.train.model import load_policy
from cast_torch.train.scoring import token_logprobs
from cast_torch.train.teacher import TEACHER_ADAPTER

pytest.importorskip("peft")


def _batch(vocab: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(4, vocab, (3, 5), generator=g)                 # [B, P]
    completion = torch.randint(4, vocab, (3, 6), generator=g)             # [B, T]
    return prompt, torch.ones_like(prompt), completion, torch.ones_like(completion, dtype=torch.bool)


def _logp(model, batch):
    with torch.no_grad():
        return token_logprobs(model, *batch)[0]                           # [B, T]


def _lora_trainer(make_config, **changes):
    cfg = make_config(lora=True, lora_r=4, lora_alpha=8.0, lr=3e-2, max_steps=3, **changes)
    return cfg, Trainer(cfg, log=lambda s: None)


def test_snapshot_adapter_scores_as_base_then_as_the_refreshed_policy(make_config):
    cfg, tr = _lora_trainer(make_config, teacher="snapshot", teacher_refresh_steps=2, kl_beta=0.1)
    base, _, _ = load_policy(cfg, log=lambda s: None)          # an independent copy of the starting model
    batch = _batch(len(tr.tokenizer))
    lp_base = _logp(base, batch)
    n_base = sum(p.numel() for p in base.parameters())
    n_adapter = sum(p.numel() for n, p in tr.model.named_parameters() if ".default." in n)
    # one model: the base weights once, plus the policy adapter and the teacher adapter
    assert tr.teacher.copy is None and tr.teacher.base is None
    assert sum(p.numel() for p in tr.model.parameters()) == n_base + 2 * n_adapter

    def teacher_logp():
        with tr.teacher.weights(tr.model) as m:
            return _logp(m, batch)

    def reference_logp():
        with tr.teacher.reference(tr.model) as m:
            return _logp(m, batch)

    torch.testing.assert_close(teacher_logp(), lp_base, rtol=0, atol=1e-6)   # before any step: the base
    tr.step()
    lp_policy = _logp(tr.model, batch)
    assert (lp_policy - lp_base).abs().max() > 1e-3                           # the policy moved
    torch.testing.assert_close(teacher_logp(), lp_base, rtol=0, atol=1e-6)   # no refresh yet: still the base
    torch.testing.assert_close(reference_logp(), lp_base, rtol=0, atol=1e-6)  # KL reference: the base, no copy
    tr.step()                                                                  # step 2: refresh
    lp_policy = _logp(tr.model, batch)
    torch.testing.assert_close(teacher_logp(), lp_policy, rtol=0, atol=1e-6)
    tr.step()
    assert (teacher_logp() - _logp(tr.model, batch)).abs().max() > 1e-4       # lags again
    torch.testing.assert_close(reference_logp(), lp_base, rtol=0, atol=1e-6)  # the base never changed
    tr.close()


def test_scoring_with_the_teacher_restores_the_trainable_adapter(make_config):
    _, tr = _lora_trainer(make_config, teacher="snapshot")
    trainable = {n for n, p in tr.model.named_parameters() if p.requires_grad}
    assert trainable and all(".default." in n for n in trainable)
    with pytest.raises(RuntimeError, match="boom"):
        with tr.teacher.weights(tr.model):
            assert tr.model.active_adapter == TEACHER_ADAPTER
            raise RuntimeError("boom")
    assert tr.model.active_adapter == "default"
    assert {n for n, p in tr.model.named_parameters() if p.requires_grad} == trainable
    assert {id(p) for p in tr.params} == {id(p) for n, p in tr.model.named_parameters() if n in trainable}
    tr.close()


def test_ema_adapter_averages_the_factors(make_config):
    _, tr = _lora_trainer(make_config, teacher="ema", teacher_ema_decay=0.75)
    start = [t.detach().clone() for t, _ in tr.teacher._pairs(tr.model)]
    tr.step()
    pairs = tr.teacher._pairs(tr.model)
    assert len(pairs) == len(start) > 0
    moved = 0
    for (t, p), t0 in zip(pairs, start):
        torch.testing.assert_close(t, 0.75 * t0 + 0.25 * p.detach(), rtol=0, atol=1e-7)
        moved += int(not torch.equal(t, t0))
    assert moved > 0
    tr.close()


def test_teacher_scores_without_dropout_and_keeps_the_policy_mode(make_config):
    _, tr = _lora_trainer(make_config, teacher="snapshot", teacher_refresh_steps=1, lora_dropout=0.5)
    tr.step()   # refresh: the teacher adapter is non-zero, so dropout on its input would show
    batch = _batch(len(tr.tokenizer), seed=1)
    tr.model.train()
    with tr.teacher.weights(tr.model) as m:
        first, second = _logp(m, batch), _logp(m, batch)
    assert torch.equal(first, second) and tr.model.training
    tr.model.eval()
    with tr.teacher.weights(tr.model) as m:
        assert torch.equal(_logp(m, batch), first)
    assert not tr.model.training
    tr.close()
