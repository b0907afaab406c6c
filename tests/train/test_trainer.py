"""Trainer behaviour on a tiny random model: updates, advantages, teacher, skips, resume, checkpoints."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import cast_torch
from cast_torch import baselines
from cast_torch.train import Trainer, read_metrics
from cast_torch.train.checkpoint import latest_checkpoint, list_checkpoints, load_trainer_state
from cast_torch.train.metrics import REQUIRED_STEP_KEYS


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_one_step_changes_parameters_and_logs_every_key(make_config):
    tr = Trainer(make_config(max_steps=1), log=lambda s: None)
    before = _params(tr.model)
    metrics = tr.step()
    tr.close()
    assert not _same(before, _params(tr.model))
    for key in REQUIRED_STEP_KEYS + ("lam", "zv_scale", "sign_disagree_frac", "adv_abs_mean"):
        assert key in metrics, key
    assert metrics["skipped"] == 0 and metrics["grad_norm"] > 0
    line = read_metrics(tr.out)[-1]
    assert line["step"] == 1 and set(REQUIRED_STEP_KEYS) <= set(line)


@pytest.mark.parametrize("method,expect_zero", [("cast", False), ("grpo", True)])
def test_all_wrong_group_gradient(make_config, all_wrong_reward, method, expect_zero):
    tr = Trainer(make_config(method=method, reward=all_wrong_reward, max_steps=1), log=lambda s: None)
    before = _params(tr.model)
    m = tr.step()
    tr.close()
    assert m["frac_all_wrong"] == 1.0
    if expect_zero:   # GRPO: zero-variance groups carry no signal at all
        assert m["grad_norm"] == 0.0 and _same(before, _params(tr.model))
    else:             # CAST: all-wrong groups get the bounded negative base -B-
        assert m["grad_norm"] > 0 and not _same(before, _params(tr.model))


def test_current_teacher_gives_zero_gap(make_config):
    tr = Trainer(make_config(teacher="current", max_steps=1), log=lambda s: None)
    m = tr.step()
    tr.close()
    assert m["gap_abs_mean"] == 0.0 and m["flip_rate_correct"] == 0.0 and m["flip_rate_wrong"] == 0.0


def test_snapshot_refresh_schedule(make_config):
    tr = Trainer(make_config(teacher="snapshot", teacher_refresh_steps=2, max_steps=5), log=lambda s: None)
    base = _params(tr.model)
    assert _same(base, list(tr.teacher.copy.parameters()))       # the base until the first refresh
    refreshed = []
    for step in range(1, 6):
        m = tr.step()
        teacher = list(tr.teacher.copy.parameters())
        refreshed.append(m["teacher_refreshed"])
        if step % 2 == 0:
            assert _same(teacher, _params(tr.model)), step        # refreshed to the policy
        elif step == 1:
            assert _same(teacher, base)                           # still the base model
        else:
            assert not _same(teacher, _params(tr.model)), step    # lags behind the policy
    tr.close()
    assert refreshed == [0, 1, 0, 1, 0]
    assert tr.teacher.refreshes == 2


def test_ema_teacher_moves_towards_policy(make_config):
    tr = Trainer(make_config(teacher="ema", teacher_ema_decay=0.9, max_steps=1), log=lambda s: None)
    base = _params(tr.model)
    tr.step()
    tr.close()
    policy = _params(tr.model)
    for t, b, p in zip(tr.teacher.copy.parameters(), base, policy):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * p, rtol=1e-6, atol=1e-7)


def _one_mixed_one_all_wrong(completions, answers, **row):
    """Group 0 (rows 0-3): one correct completion; group 1 (rows 4-7): all wrong — whatever the text."""
    return [1.0 if i == 0 else 0.0 for i in range(len(completions))]


# What each method name must run, on the inputs the trainer hands its advantage step.
ESTIMATORS = {
    "cast": lambda c, r, gid, g, m, h, step: cast_torch.cast_advantages(r, gid, g, m, config=c.cast, step=step),
    "grpo": lambda c, r, gid, g, m, h, step: baselines.grpo_advantages(r, gid, m, config=c.cast),
    "rlsd": lambda c, r, gid, g, m, h, step: baselines.rlsd_advantages(
        r, gid, g, m, step=step, lam=c.rlsd_lam, lam_decay_steps=c.rlsd_lam_decay_steps, eps_w=c.rlsd_eps_w,
        config=c.cast),
    "rl_zvp": lambda c, r, gid, g, m, h, step: baselines.rl_zvp_advantages(r, gid, h, m, alpha=c.zvp_alpha,
                                                                          config=c.cast),
    "opsd": lambda c, r, gid, g, m, h, step: baselines.opsd_advantages(g, m),
}


@pytest.mark.parametrize("method, accum", [(m, 1) for m in sorted(ESTIMATORS)] + [(m, 2) for m in sorted(ESTIMATORS)])
def test_each_method_trains_on_its_own_estimator(make_config, method, accum):
    """The advantages the update receives are the named estimator's on the step's rollout, and
    differ from the other estimators' there (a mixed and an all-wrong group, non-zero gaps).
    With accum = 2 the on-policy update forms them micro-batch by micro-batch from its own
    forward: still the full-batch estimator's values."""
    cfg = make_config(method=method, max_steps=1, reward=_one_mixed_one_all_wrong, teacher="base",
                      teacher_context="Solve: {prompt}",   # another context: the teacher's gap is not 0
                      grad_accum_steps=accum)
    tr = Trainer(cfg, log=lambda s: None)
    seen = {}
    advantages, update = tr._advantages, tr._update

    def spy_advantages(*args):
        seen["inputs"] = [a.detach().clone() for a in args]     # rewards, group_ids, gaps, mask, entropy
        return advantages(*args)

    def spy_update(ro, old_logp, ref_logp, adv, mask, **kw):
        out = update(ro, old_logp, ref_logp, adv, mask, **kw)
        seen["adv"] = adv.detach().clone()      # on-policy the update fills adv from its own forward
        return out

    tr._advantages, tr._update = spy_advantages, spy_update
    m = tr.step()
    tr.close()
    assert m["skipped"] == 0 and m["frac_mixed"] == 0.5 and m["frac_all_wrong"] == 0.5
    r, gid, g, mask, h = seen["inputs"]
    assert (g.abs() > 0).any() == (method in ("cast", "rlsd", "opsd"))   # only they score the teacher
    outs = {name: est(cfg, r, gid, g, mask, h, 0).to(torch.float32) for name, est in ESTIMATORS.items()}
    assert torch.equal(seen["adv"], outs[method])
    others = [n for n in outs if n != method and not torch.equal(outs[n], outs[method])]
    # every other estimator differs here, except RLSD and GRPO, equal when g = 0 (grpo, rl_zvp runs)
    assert len(others) >= (4 if method in ("cast", "rlsd", "opsd") else 3), others


@pytest.mark.parametrize("minibatches, accum, agg", [(1, 1, "token-mean"), (2, 2, "token-mean"),
                                                     (2, 2, "seq-mean-token-mean")])
def test_logged_loss_is_the_surrogate_of_the_logged_tensors(make_config, monkeypatch, minibatches, accum, agg):
    """``loss`` in metrics.jsonl equals cast_core's clipped surrogate recomputed in float64 from the
    tensors every loss call saw, aggregated per minibatch and averaged over minibatches."""
    from cast_core.loss import policy_loss as reference_loss
    calls = []
    real = cast_torch.policy_loss

    def spy(logp, old_logp, adv, mask, **kw):
        calls.append([x.detach().double().numpy() for x in (logp, old_logp, adv, mask)])
        return real(logp, old_logp, adv, mask, **kw)

    monkeypatch.setattr(cast_torch, "policy_loss", spy)
    # seed 2, 12 tokens: some completions end early, so micro-batches hold different token counts
    cfg = make_config(max_steps=1, num_minibatches=minibatches, grad_accum_steps=accum, loss_agg=agg,
                      clip_low=0.1, clip_high=0.1, seed=2, max_new_tokens=12)
    tr = Trainer(cfg, log=lambda s: None)
    m = tr.step()
    tr.close()
    assert len(calls) == minibatches * accum
    if accum > 1:
        assert len({int(c[3].sum()) for c in calls}) > 1   # the micro-batch weights matter here
    per_mb = []
    for k in range(minibatches):
        parts = calls[k * accum:(k + 1) * accum]
        logp, old, adv, mask = (np.concatenate([p[i] for p in parts]) for i in range(4))
        per_mb.append(reference_loss(logp, old, adv, mask.astype(bool), clip_low=0.1, clip_high=0.1, agg=agg,
                                     max_len=cfg.max_new_tokens))
    logged = read_metrics(tr.out)[-1]["loss"]
    assert logged == m["loss"] and abs(logged) > 0
    assert logged == pytest.approx(float(np.mean(per_mb)), rel=1e-5, abs=1e-7)


def test_teacher_template_and_kl_and_minibatches(make_config):
    cfg = make_config(teacher="base", teacher_context="Solve: {prompt}", kl_beta=0.1, ppo_epochs=2,
                      num_minibatches=2, grad_accum_steps=2, loss_agg="seq-mean-token-mean", max_steps=1)
    tr = Trainer(cfg, log=lambda s: None)
    m = tr.step()
    tr.close()
    assert m["skipped"] == 0 and m["approx_kl"] >= 0 and m["gap_abs_mean"] > 0


def test_on_policy_update_is_the_only_policy_forward(make_config, monkeypatch):
    """On-policy (one epoch, one minibatch) the policy is never scored apart from the update's
    own micro-batch forwards (with gradient); the teacher's scoring pass runs without."""
    import cast_torch.train.trainer as trainer_module
    calls = []
    real = trainer_module.token_logprobs

    def spy(model, *args, **kwargs):
        calls.append((model is tr.model, torch.is_grad_enabled(), kwargs.get("with_entropy", False)))
        return real(model, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "token_logprobs", spy)
    tr = Trainer(make_config(grad_accum_steps=2, max_steps=1, teacher="current", teacher_context="Q: {prompt}"),
                 log=lambda s: None)
    m = tr.step()
    tr.close()
    assert m["skipped"] == 0 and m["approx_kl"] == 0.0 and m["clip_frac"] == 0.0   # ρ = 1 exactly
    grad_calls = [c for c in calls if c[1]]
    assert grad_calls == [(True, True, True)] * 2                     # one forward per micro-batch
    assert [c for c in calls if not c[1]] == [(True, False, False)]   # the teacher (current weights, template)


def test_grad_accumulation_matches_one_big_batch(make_config):
    outs = []
    for accum in (1, 4):
        tr = Trainer(make_config(grad_accum_steps=accum, max_steps=1, loss_agg="token-mean"), overwrite=True,
                     log=lambda s: None)
        tr.step()
        tr.close()
        outs.append(_params(tr.model))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_non_finite_loss_skips_then_stops(make_config):
    tr = Trainer(make_config(max_steps=10, max_consecutive_skips=3), log=lambda s: None)
    # NaN logits only in training mode: rollout and scoring stay finite, the update's loss is NaN.
    head = tr.model.get_output_embeddings()
    head.register_forward_hook(lambda mod, inp, out: out * float("nan") if mod.training else out)
    before = _params(tr.model)
    for _ in range(2):
        m = tr.step()
        assert m["skipped"] == 1
    assert _same(before, _params(tr.model))
    with pytest.raises(RuntimeError, match="3 consecutive steps"):
        tr.step()
    lines = read_metrics(tr.out)
    assert [r["skipped"] for r in lines] == [1, 1, 1]


def test_bad_reward_output_is_a_clear_error(make_config):
    tr = Trainer(make_config(reward=lambda c, a, **k: [float("nan")] * len(c)), log=lambda s: None)
    with pytest.raises(ValueError, match="non-finite reward"):
        tr.step()
    tr.close()
    tr = Trainer(make_config(reward=lambda c, a, **k: [1.0]), log=lambda s: None)
    with pytest.raises(ValueError, match="returned 1 values"):
        tr.step()
    tr.close()


def test_resume_equivalence(make_config, tmp_path):
    straight = make_config(out=str(tmp_path / "a"), max_steps=4, teacher="snapshot", teacher_refresh_steps=3,
                           num_minibatches=2)
    Trainer(straight, log=lambda s: None).train()
    weights_a = _params(_load(straight))

    first = make_config(out=str(tmp_path / "b"), max_steps=2, teacher="snapshot", teacher_refresh_steps=3,
                        num_minibatches=2)
    Trainer(first, log=lambda s: None).train()
    resumed = Trainer(first.replace(max_steps=4), resume=True, log=lambda s: None)
    assert resumed.step_count == 2
    resumed.train()
    weights_b = _params(_load(first.replace(max_steps=4)))
    assert _same(weights_a, weights_b)
    assert [r["step"] for r in read_metrics(tmp_path / "b")] == [1, 2, 3, 4]
    a = [r["reward_mean"] for r in read_metrics(tmp_path / "a")]
    b = [r["reward_mean"] for r in read_metrics(tmp_path / "b")]
    assert a == b


def _load(cfg):
    """Final weights of a run, read back from its latest checkpoint."""
    from pathlib import Path

    from transformers import AutoModelForCausalLM
    path = latest_checkpoint(Path(cfg.out) / "checkpoints")
    return AutoModelForCausalLM.from_pretrained(str(path / "model"))


def test_atomic_checkpoint_survives_crash(make_config, monkeypatch):
    cfg = make_config(max_steps=3, save_every=1)
    tr = Trainer(cfg.replace(max_steps=1), log=lambda s: None)
    tr.train()
    ckpt_dir = tr.ckpt_dir
    good = latest_checkpoint(ckpt_dir)
    assert good.name == "step-1"

    tr = Trainer(cfg.replace(max_steps=2), resume=True, log=lambda s: None)
    import safetensors.torch

    def crash(*a, **k):   # dies half-way: the weights are written, the trainer state is not
        raise KeyboardInterrupt("simulated kill during checkpoint")

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        tr.train()
    monkeypatch.undo()
    assert latest_checkpoint(ckpt_dir) == good                    # the pointer still names step-1
    assert [p.name for p in list_checkpoints(ckpt_dir)] == ["step-1"]
    assert any(p.name.startswith(".tmp-step-2") for p in ckpt_dir.iterdir())   # the torn write

    tr = Trainer(cfg, resume=True, log=lambda s: None)           # resume still works from step-1
    assert tr.step_count == 1
    tr.train()
    assert latest_checkpoint(ckpt_dir).name == "step-3"
    assert not any(p.name.startswith(".tmp-") for p in ckpt_dir.iterdir())
    assert len(list_checkpoints(ckpt_dir)) == cfg.keep_checkpoints
    state = load_trainer_state(latest_checkpoint(ckpt_dir))
    assert {"optimizer", "scheduler", "teacher", "rng", "step", "sampler"} <= set(state)


def test_resume_without_checkpoint_is_an_error(make_config):
    with pytest.raises(ValueError, match="does not exist, so there is no run to resume"):
        Trainer(make_config(), resume=True, log=lambda s: None)
    cfg = make_config(max_steps=1, save_final=False)
    Trainer(cfg, log=lambda s: None).train()
    assert not (Path(cfg.out) / "checkpoints").exists()            # save_every = 0, save_final = false
    with pytest.raises(ValueError, match="no checkpoint"):
        Trainer(cfg, resume=True, log=lambda s: None)


def test_eval_and_plot(make_config, capsys):
    from cast_torch.train.cli import main
    cfg = make_config(max_steps=2, eval_every=1, eval_pass_k=2)
    Trainer(cfg, log=lambda s: None).train()
    lines = read_metrics(cfg.out)
    assert lines[0] == {"step": 0, "eval_accuracy": lines[0]["eval_accuracy"], "eval_pass@2": lines[0]["eval_pass@2"]}
    assert all("eval_accuracy" in r for r in lines)
    assert json.loads((open(os.path.join(cfg.out, "config.json")).read()))["max_steps"] == 2
    assert main(["plot", cfg.out, "--metrics", "reward_mean,eval_accuracy"]) == 0
    out = capsys.readouterr().out
    assert "summary.png" in out and "eval_accuracy.png" in out
    assert os.path.getsize(os.path.join(cfg.out, "plots", "summary.png")) > 1000
    assert main(["plot", os.path.join(cfg.out, "missing")]) == 2


def test_existing_run_needs_resume_or_overwrite(make_config):
    cfg = make_config(max_steps=1)
    Trainer(cfg, log=lambda s: None).train()
    with pytest.raises(ValueError, match="already holds a run"):
        Trainer(cfg, log=lambda s: None)
    old = (tr_out := Path(cfg.out)) / "metrics.jsonl"
    old_lines = old.read_text()
    tr = Trainer(cfg, overwrite=True, log=lambda s: None)
    aside = [p for p in tr_out.iterdir() if p.name.startswith(".replaced-")]
    assert len(aside) == 1 and (aside[0] / "metrics.jsonl").read_text() == old_lines   # moved, not deleted
    assert (aside[0] / "checkpoints" / "step-1").is_dir()
    assert old.read_text() == "" and not tr.ckpt_dir.exists()
    tr.train()
    assert not aside[0].exists() and (tr.ckpt_dir / "step-1").is_dir()   # gone after the new checkpoint


def test_lora_snapshot_teacher_is_an_adapter_copy(make_config):
    pytest.importorskip("peft")
    cfg = make_config(lora=True, lora_r=4, lora_alpha=8.0, lr=1e-2, teacher="snapshot", teacher_refresh_steps=2,
                      max_steps=2, save_every=1)
    tr = Trainer(cfg, log=lambda s: None)
    trainable = {n for n, p in tr.model.named_parameters() if p.requires_grad}
    assert trainable and all(".default." in n for n in trainable)     # only the policy adapter trains
    frozen_base = [p.detach().clone() for n, p in tr.model.named_parameters() if "lora_" not in n]
    m1 = tr.step()
    pairs = tr.teacher._pairs(tr.model)
    assert m1["teacher_refreshed"] == 0 and not all(torch.equal(t, p) for t, p in pairs)
    m2 = tr.step()
    assert m2["teacher_refreshed"] == 1 and all(torch.equal(t, p) for t, p in tr.teacher._pairs(tr.model))
    tr.close()
    assert _same(frozen_base, [p for n, p in tr.model.named_parameters() if "lora_" not in n])
    policy = {n: p.detach().clone() for n, p in tr.model.named_parameters() if ".default." in n}
    resumed = Trainer(cfg.replace(max_steps=3), resume=True, log=lambda s: None)
    assert all(torch.equal(p, policy[n]) for n, p in resumed.model.named_parameters() if ".default." in n)
    assert all(torch.equal(t, p) for t, p in resumed.teacher._pairs(resumed.model))
    resumed.close()


def test_local_model_directory_with_chat_template(make_config, tmp_path):
    from cast_torch.train.tiny import make_tiny_model, make_tokenizer
    path = tmp_path / "local-model"
    tok = make_tokenizer(path)
    make_tiny_model(tok, arch="qwen2", hidden_size=32, num_layers=1, num_heads=2).save_pretrained(str(path))
    tr = Trainer(make_config(model=str(path), use_chat_template="always", max_steps=1), log=lambda s: None)
    assert tr.model_info["source"] == "path" and tr.use_template
    assert type(tr.model).__name__ == "Qwen2ForCausalLM"
    m = tr.step()
    tr.close()
    assert m["skipped"] == 0 and m["grad_norm"] > 0
