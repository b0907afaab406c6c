"""CASTGRPOTrainer on CPU with a locally built tiny model (nothing is downloaded)."""

import dataclasses
import importlib
import math
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

torch = pytest.importorskip("torch")

MODULE = "cast_torch.integrations.trl"


def test_import_without_trl_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "trl", None)  # makes `import trl` raise ImportError
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    with pytest.raises(ImportError, match=r'pip install "cast-rlvr\[trl\]"'):
        importlib.import_module(MODULE)


trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

import cast_torch  # noqa: E402
from cast_core.config import CASTConfig  # noqa: E402
from cast_torch.integrations.trl import (  # noqa: E402
    TEACHER_ADAPTER, CASTGRPOConfig, CASTGRPOTrainer, template_fields)
from cast_torch.train.tiny import make_tiny_model, make_tokenizer  # noqa: E402

PROMPTS = [f"{a}+{b}=" for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (2, 9), (4, 4), (6, 1), (9, 3)]]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny")
    tokenizer = make_tokenizer(save_dir=path)
    make_tiny_model(tokenizer).save_pretrained(path)
    return str(path)


def _dataset(with_answer=False):
    rows = [{"prompt": p} for p in PROMPTS]
    if with_answer:
        for row in rows:
            a, b = row["prompt"][:-1].split("+")
            row["answer"] = str(int(a) + int(b))
    return datasets.Dataset.from_list(rows)


def _args(tmp_path, **overrides):
    kwargs = dict(
        output_dir=str(tmp_path / "out"), use_cpu=True, bf16=False, report_to=[], seed=0,
        max_completion_length=8, num_generations=4, per_device_train_batch_size=8,
        max_steps=2, logging_steps=1, save_strategy="no", activation_checkpointing=False,
        learning_rate=1e-2, disable_tqdm=True,
    )
    kwargs.update(overrides)
    return kwargs


def _parity_reward(log):
    def parity_reward(prompts, completions, completion_ids, **kwargs):
        rewards = [float(sum(ids) % 2) for ids in completion_ids]
        log.append(rewards)
        return rewards
    return parity_reward


def zero_reward(prompts, completions, **kwargs):
    return [0.0] * len(completions)


def _plain_logps(model, prompt_ids, prompt_mask, completion_ids, completion_mask, temperature):
    """Log-probs of the completion tokens from the model's ordinary logits (not TRL's fused path)."""
    ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention = torch.cat([prompt_mask, completion_mask], dim=1)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=attention).logits
    t = completion_ids.size(1)
    logp = torch.log_softmax(logits[:, -t - 1:-1].float() / temperature, dim=-1)
    return logp.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)


class _Capturing(CASTGRPOTrainer):
    """Records each generation batch with gaps recomputed independently of the trainer.

    ``record["advantages"]`` are the advantages TRL's loss used, in generation order: on
    the on-policy (deferred) path they are filled in the loss, micro-batch by micro-batch.
    """

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        teacher = self.cast_teacher if self.cast_teacher is not None else self.model
        if self.args.cast_teacher_template is not None:
            texts = [self.args.cast_teacher_template.format(prompt=x["prompt"]) for x in inputs]
            enc = self.processing_class(text=texts, padding=True, padding_side="left", return_tensors="pt")
            t_ids, t_mask = enc["input_ids"], enc["attention_mask"]
        else:
            t_ids, t_mask = output["prompt_ids"], output["prompt_mask"]
        args = (output["completion_ids"], output["completion_mask"], self.temperature)
        with self._cast_teacher_context():
            teacher_logp = _plain_logps(teacher, t_ids, t_mask, *args)
        old_logp = _plain_logps(self.model, output["prompt_ids"], output["prompt_mask"], *args)
        deferred = "cast_base" in output
        self.captured.append({"output": output, "last": dict(self.cast_last_batch), "deferred": deferred,
                              "ref_gaps": teacher_logp - old_logp,
                              "advantages": torch.full_like(output["advantages"], float("nan")) if deferred
                              else output["advantages"]})
        return output

    def _compute_loss(self, model, inputs):
        loss = super()._compute_loss(model, inputs)
        record = self.captured[-1]
        if record["deferred"]:
            record["advantages"][inputs["cast_row"]] = inputs["advantages"]
            record["last"] = dict(self.cast_last_batch)
        return loss


def _trainer(cls, tiny_path, tmp_path, reward_funcs, dataset=None, peft_config=None, **overrides):
    trainer = cls(model=tiny_path, reward_funcs=reward_funcs, args=CASTGRPOConfig(**_args(tmp_path, **overrides)),
                  train_dataset=dataset if dataset is not None else _dataset(), peft_config=peft_config)
    trainer.captured = []
    return trainer


def _check_records(trainer, rewards_log, expect_deferred, steps_per_generation=1):
    config = trainer.args.cast_config()
    for i, record in enumerate(trainer.captured):
        step = i * steps_per_generation                                # optimizer steps before this batch
        out, last = record["output"], record["last"]
        assert record["deferred"] is expect_deferred
        mask = out["completion_mask"].bool()
        advantages = record["advantages"]
        assert advantages.shape == out["completion_ids"].shape and advantages.dim() == 2
        assert not torch.isnan(advantages).any()                       # every row reached the loss
        assert last["step"] == step
        # The inputs the trainer used: the reward function's own outputs, TRL's grouping,
        # and gaps that match an independent forward pass of teacher and policy.
        assert last["rewards"].tolist() == rewards_log[i]
        assert last["group_ids"].tolist() == [i // 4 for i in range(8)]
        assert torch.equal(last["mask"], mask)
        torch.testing.assert_close(last["gaps"][mask], record["ref_gaps"][mask], atol=2e-4, rtol=0)
        expected = cast_torch.cast_advantages(last["rewards"], last["group_ids"], last["gaps"], mask, config, step)
        torch.testing.assert_close(advantages, expected.float(), atol=1e-6, rtol=0)
        torch.testing.assert_close(last["advantages"], expected.float(), atol=1e-6, rtol=0)
        assert torch.all(advantages[~mask] == 0)
        assert torch.any(advantages[mask] != 0)
    # The completions table shows CAST's per-row mean advantage, not TRL's sequence advantage.
    last = trainer.captured[-1]["last"]
    row_mean = (last["advantages"] * last["mask"]).sum(1) / last["mask"].sum(1).clamp(min=1)
    assert list(trainer._logs["advantages"]) == pytest.approx(row_mean.tolist(), abs=1e-6)


class _CountingPolicyForwards(_Capturing):
    def _get_per_token_logps_and_entropies(self, model, *args, **kwargs):
        if model is self.model:
            self.policy_forwards += 1
        return super()._get_per_token_logps_and_entropies(model, *args, **kwargs)


@pytest.mark.parametrize("steps_per_generation", [1, 2])
def test_on_policy_token_advantages_equal_cast_torch_without_an_extra_forward(tiny_path, tmp_path,
                                                                              steps_per_generation):
    rewards_log = []
    trainer = _trainer(_CountingPolicyForwards, tiny_path, tmp_path, _parity_reward(rewards_log),
                       cast_teacher_mode="base", per_device_train_batch_size=8 // steps_per_generation,
                       gradient_accumulation_steps=steps_per_generation)
    trainer.policy_forwards = 0
    trainer.train()

    assert trainer.state.global_step == 2
    assert len(trainer.captured) == 2
    _check_records(trainer, rewards_log, expect_deferred=True)
    # TRL's loss forward is the only policy forward: no separate no-grad pass for π_old.
    assert trainer.policy_forwards == 2 * steps_per_generation
    # Step 0: the base teacher is the policy, g = 0. Step 1: the policy moved, the teacher did not.
    first, second = trainer.captured
    first_mask = first["output"]["completion_mask"].bool()
    assert first["last"]["gaps"][first_mask].abs().max() < 1e-5
    second_mask = second["output"]["completion_mask"].bool()
    assert second["last"]["gaps"][second_mask].abs().max() > 1e-3


def test_off_policy_token_advantages_equal_cast_torch(tiny_path, tmp_path):
    # Two iterations per generation: TRL computes π_old itself, and CAST uses it right away.
    rewards_log = []
    trainer = _trainer(_Capturing, tiny_path, tmp_path, _parity_reward(rewards_log), cast_teacher_mode="base",
                       num_iterations=2, max_steps=4)
    trainer.train()
    assert len(trainer.captured) == 2
    _check_records(trainer, rewards_log, expect_deferred=False, steps_per_generation=2)


def test_zero_reward_grad_norm_grpo_zero_cast_positive(tiny_path, tmp_path):
    common = _args(tmp_path, max_steps=1)
    grpo = trl.GRPOTrainer(model=tiny_path, reward_funcs=zero_reward, args=trl.GRPOConfig(**common),
                           train_dataset=_dataset())
    grpo.train()
    cast = CASTGRPOTrainer(model=tiny_path, reward_funcs=zero_reward,
                           args=CASTGRPOConfig(**common, cast_teacher_mode="current"), train_dataset=_dataset())
    cast.train()

    def grad_norm(trainer):
        norms = [h["grad_norm"] for h in trainer.state.log_history if "grad_norm" in h]
        assert len(norms) == 1
        return float(norms[0])

    assert grad_norm(grpo) == 0.0
    assert grad_norm(cast) > 0.0
    # All-wrong groups: base -B-·s = -1 on every real token (g = 0, so no flips).
    last = cast.cast_last_batch
    assert torch.all(last["advantages"][last["mask"]] == -1.0)
    logged = [h for h in cast.state.log_history if "cast/frac_all_wrong" in h]
    assert logged and logged[0]["cast/frac_all_wrong"] == 1.0


def test_answer_free_template_teacher(tiny_path, tmp_path):
    trainer = _trainer(_Capturing, tiny_path, tmp_path, _parity_reward([]), max_steps=1,
                       cast_teacher_mode="current", cast_teacher_template="Q: {prompt}")
    trainer.train()
    record = trainer.captured[0]
    mask = record["output"]["completion_mask"].bool()
    gaps = record["last"]["gaps"]
    # Same weights, different context: the gap is the template's effect alone.
    assert gaps[mask].abs().max() > 1e-4
    torch.testing.assert_close(gaps[mask], record["ref_gaps"][mask], atol=2e-4, rtol=0)


def test_snapshot_and_ema_teachers_follow_the_policy(tiny_path, tmp_path):
    def params(model):
        return [p.detach().clone() for p in model.parameters()]

    snap = _trainer(CASTGRPOTrainer, tiny_path, tmp_path, zero_reward, max_steps=2,
                    cast_teacher_mode="snapshot", cast_teacher_refresh_steps=2)
    snap.add_callback(_RecordAfterStep1(snap))
    base = params(snap.model)
    snap.train()
    # Not refreshed after step 1 (still the base weights), refreshed to the policy after step 2.
    assert all(torch.equal(a, b) for a, b in zip(snap.recorded, base))
    assert all(torch.equal(a, b) for a, b in zip(params(snap.cast_teacher), params(snap.model)))
    assert not all(torch.equal(a, b) for a, b in zip(params(snap.model), base))

    ema = _trainer(CASTGRPOTrainer, tiny_path, tmp_path, zero_reward, max_steps=1,
                   cast_teacher_mode="ema", cast_teacher_ema_decay=0.75)
    base = params(ema.model)
    ema.train()
    for t, p, b in zip(params(ema.cast_teacher), params(ema.model), base):
        torch.testing.assert_close(t, 0.75 * b + 0.25 * p, atol=1e-6, rtol=1e-5)


def _adapter(model, name):
    tag = f".{name}."
    return {k.replace(tag, "."): v.detach().clone() for k, v in model.named_parameters() if tag in k}


def test_peft_snapshot_teacher_is_a_second_adapter(tiny_path, tmp_path):
    peft = pytest.importorskip("peft")
    lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    rewards_log = []
    trainer = _trainer(_Capturing, tiny_path, tmp_path, _parity_reward(rewards_log), peft_config=lora,
                       cast_teacher_mode="snapshot", cast_teacher_refresh_steps=2)
    model = trainer.model
    # No second model: the teacher is an adapter of the policy model, frozen, outside the optimizer.
    assert trainer.cast_teacher is None and TEACHER_ADAPTER in model.peft_config
    base_numel = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    policy, teacher = _adapter(model, "default"), _adapter(model, TEACHER_ADAPTER)
    assert policy.keys() == teacher.keys() and all(torch.equal(policy[k], teacher[k]) for k in policy)
    assert sum(p.numel() for p in model.parameters()) == base_numel + 2 * sum(v.numel() for v in policy.values())
    trainer.add_callback(_RecordAfterStep1(trainer, adapter=True))
    trainer.train()

    frozen = [p for n, p in model.named_parameters() if f".{TEACHER_ADAPTER}." in n]
    assert frozen and not any(p.requires_grad for p in frozen)
    in_optimizer = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert not in_optimizer & {id(p) for p in frozen}
    _check_records(trainer, rewards_log, expect_deferred=True)
    # Step 0: teacher adapter = policy adapter, g = 0; step 1: the policy moved, the teacher did not.
    first, second = trainer.captured
    assert first["last"]["gaps"][first["last"]["mask"]].abs().max() < 1e-5
    assert second["last"]["gaps"][second["last"]["mask"]].abs().max() > 1e-4
    assert all(torch.equal(trainer.recorded[k], teacher[k]) for k in teacher)          # not refreshed at step 1
    after = _adapter(model, TEACHER_ADAPTER)
    now = _adapter(model, "default")
    assert all(torch.equal(after[k], now[k]) for k in now)                             # refreshed at step 2
    assert not all(torch.equal(now[k], policy[k]) for k in now)


def test_peft_ema_teacher_adapter(tiny_path, tmp_path):
    peft = pytest.importorskip("peft")
    lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = _trainer(CASTGRPOTrainer, tiny_path, tmp_path, _parity_reward([]), peft_config=lora, max_steps=1,
                       cast_teacher_mode="ema", cast_teacher_ema_decay=0.75)
    start = _adapter(trainer.model, "default")
    trainer.train()
    teacher, policy = _adapter(trainer.model, TEACHER_ADAPTER), _adapter(trainer.model, "default")
    for k in start:
        torch.testing.assert_close(teacher[k], 0.75 * start[k] + 0.25 * policy[k], atol=1e-6, rtol=1e-5)
    assert any(not torch.equal(policy[k], start[k]) for k in start)


class _RecordAfterStep1(trl.trainer.callbacks.TrainerCallback):
    def __init__(self, trainer, adapter=False):
        self.trainer, self.adapter = trainer, adapter

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            if self.adapter:
                self.trainer.recorded = _adapter(self.trainer.model, TEACHER_ADAPTER)
            else:
                self.trainer.recorded = [p.detach().clone() for p in self.trainer.cast_teacher.parameters()]


def test_config_fields_help_and_cast_config(tmp_path):
    args = CASTGRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[],
                          cast_lam=0.25, cast_deadband=[0.95, 1.05])
    cfg = args.cast_config()
    assert isinstance(cfg, CASTConfig)
    assert cfg.lam == 0.25 and cfg.deadband == (0.95, 1.05)
    assert cfg.replace(lam=0.5, deadband=(1.0, 1.0)) == CASTConfig()
    assert args.epsilon_high == 0.28 and args.cast_teacher_mode == "snapshot"
    grpo_fields = {f.name for f in dataclasses.fields(trl.GRPOConfig)}  # TRL has cast_lm_head_to_fp32
    cast_fields = [f for f in dataclasses.fields(CASTGRPOConfig)
                   if f.name.startswith("cast_") and f.name not in grpo_fields]
    assert len(cast_fields) == len(dataclasses.fields(CASTConfig)) + 6
    for f in cast_fields:
        assert f.metadata.get("help"), f.name


@pytest.mark.parametrize("overrides, error, pattern", [
    ({"cast_lam": -1.0}, ValueError, r"CASTGRPOConfig\.cast_lam"),
    ({"cast_adv_clip": [0.5, 1.0]}, ValueError, r"cast_adv_clip"),
    ({"cast_w_clip_wrong": [1.0]}, TypeError, r"cast_w_clip_wrong"),
    ({"cast_teacher_mode": "oracle"}, ValueError, r"cast_teacher_mode"),
    ({"cast_teacher_refresh_steps": 0}, ValueError, r"cast_teacher_refresh_steps"),
    ({"cast_teacher_ema_decay": 1.5}, ValueError, r"cast_teacher_ema_decay"),
    ({"cast_teacher_template": "no prompt here"}, ValueError, r"must contain \{prompt\}"),
    ({"cast_teacher_template": "{prompt} The answer is {answer}."}, ValueError, r"privileged"),
    ({"cast_teacher_template": "{prompt.__class__}"}, ValueError, r"not allowed"),
    ({"cast_teacher_template": "{prompt"}, ValueError, r"malformed"),
    ({"multi_objective_aggregation": "normalize_then_sum"}, ValueError, r"multi_objective_aggregation"),
])
def test_config_rejects_bad_values(tmp_path, overrides, error, pattern):
    with pytest.raises(error, match=pattern):
        CASTGRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[], **overrides)


def test_privileged_template_needs_the_flag(tmp_path):
    args = CASTGRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[],
                          cast_teacher_template="{prompt} (answer: {answer})", cast_allow_privileged_teacher=True)
    assert template_fields(args.cast_teacher_template) == ["prompt", "answer"]


def test_trainer_requires_cast_config(tiny_path, tmp_path):
    with pytest.raises(TypeError, match="CASTGRPOConfig"):
        CASTGRPOTrainer(model=tiny_path, reward_funcs=zero_reward,
                        args=trl.GRPOConfig(**_args(tmp_path)), train_dataset=_dataset())


def test_unscorable_completions_get_zero_advantage(tiny_path, tmp_path):
    def half_none(prompts, completions, **kwargs):
        return [None if i % 4 == 0 else float(i % 2) for i in range(len(completions))]

    trainer = _trainer(_Capturing, tiny_path, tmp_path, half_none, max_steps=1, cast_teacher_mode="current")
    trainer.train()
    record = trainer.captured[0]
    adv = record["output"]["advantages"]
    assert torch.all(adv[0::4] == 0)
    # Each group's three scorable members [1, 0, 1] keep their own statistics: mean 2/3.
    group = record["last"]["group_ids"]
    assert len(set(group[0::4].tolist())) == 2 and all(g < 0 for g in group[0::4].tolist())
    b = (torch.tensor([1.0, 0.0, 1.0]) - 2 / 3) / torch.tensor([1.0, 0.0, 1.0]).std(unbiased=False)
    mask = record["output"]["completion_mask"].bool()
    for row, expected in zip((1, 2, 3), b.clamp(-1.2, 1.2).tolist()):
        values = adv[row][mask[row]]
        assert values.numel() == 0 or math.isclose(values[0].item(), expected, rel_tol=1e-5)
