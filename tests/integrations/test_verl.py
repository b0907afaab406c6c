"""The verl CAST estimator, on verl-shaped tensors, with a stand-in verl module (fast; the main env).

The same integration against the released verl is tests/integrations/test_verl_real.py (its own venv)."""

import importlib
import sys
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cast_core  # noqa: E402
import cast_torch  # noqa: E402
from cast_core.config import CASTConfig  # noqa: E402
from cast_torch.integrations import verl as cast_verl  # noqa: E402

MODULE = "cast_torch.integrations.verl"


def _verl_batch(seed=0):
    """Six responses to two prompts, uids interleaved as verl's shuffles can leave them."""
    gen = torch.Generator().manual_seed(seed)
    b, t = 6, 5
    lengths = torch.tensor([5, 3, 4, 1, 5, 2])
    mask = (torch.arange(t)[None, :] < lengths[:, None]).long()
    scores = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    rewards = torch.zeros(b, t)
    rewards[torch.arange(b), lengths - 1] = scores  # outcome reward on the last response token
    old = -torch.rand(b, t, generator=gen) * 3
    teacher = old + torch.randn(b, t, generator=gen) * 0.3
    # Padding positions hold garbage, as they may in a real batch.
    teacher = teacher.masked_fill(mask == 0, float("nan"))
    index = np.array(["p-a", "p-b", "p-a", "p-b", "p-a", "p-b"], dtype=object)
    return rewards, mask, index, old, teacher


def test_matches_cast_torch_and_cast_core():
    rewards, mask, index, old, teacher = _verl_batch()
    batch = {"token_level_rewards": rewards, "response_mask": mask, "old_log_probs": old,
             "teacher_log_probs": teacher}
    adv, ret = cast_verl.compute_cast_advantage(rewards, mask, index, config=None, batch=batch)
    assert adv.shape == (6, 5) and adv.dtype == torch.float32 and ret is adv
    group_ids = torch.tensor([0, 1, 0, 1, 0, 1])
    gaps = teacher - old
    expected = cast_torch.cast_advantages(rewards.sum(-1), group_ids, gaps, mask)
    torch.testing.assert_close(adv, expected.float(), atol=1e-6, rtol=0)
    reference = cast_core.cast_advantages(rewards.sum(-1).double().numpy(), group_ids.numpy(),
                                          gaps.double().numpy(), mask.numpy())
    np.testing.assert_allclose(adv.numpy(), reference, atol=1e-5)
    assert torch.all(adv[mask == 0] == 0)
    # Group p-a = [1, 1, 0] and p-b = [0, 0, 1] are mixed: nonzero on every real token.
    assert torch.all(adv[mask == 1] != 0)


GROUPS = torch.tensor([0, 1, 0, 1, 0, 1])


def _expected(rewards, gaps, mask, cfg=None, step=0):
    return cast_torch.cast_advantages(rewards.sum(-1), GROUPS, gaps, mask, cfg, step).float()


def test_each_teacher_reads_its_own_log_probs():
    rewards, mask, index, old, teacher = _verl_batch(1)
    noise = old + 0.7  # a different tensor in the other slot must not be read
    base = {"cast": {"teacher": "base"}}
    via_ref, _ = cast_verl.compute_cast_advantage(rewards, mask, index, base,
                                                  batch={"old_log_probs": old, "ref_log_prob": teacher})
    torch.testing.assert_close(via_ref, _expected(rewards, teacher - old, mask))
    for kind in ("snapshot", "ema", "external"):
        adv, _ = cast_verl.compute_cast_advantage(
            rewards, mask, index, {"cast": {"teacher": kind}},
            batch={"old_log_probs": old, "ref_log_prob": noise, "teacher_log_probs": teacher})
        torch.testing.assert_close(adv, via_ref)
    current, _ = cast_verl.compute_cast_advantage(rewards, mask, index, {"cast": {"teacher": "current"}},
                                                  batch={"old_log_probs": old, "teacher_log_probs": noise})
    torch.testing.assert_close(current, _expected(rewards, torch.zeros(6, 5), mask))
    # Explicit tensors win over the batch.
    kw, _ = cast_verl.compute_cast_advantage(rewards, mask, index, old_log_probs=old, teacher_log_probs=teacher,
                                             batch={"old_log_probs": noise, "teacher_log_probs": noise})
    torch.testing.assert_close(kw, via_ref)


@pytest.mark.parametrize("kind, batch_keys, pattern", [
    # The lagged teacher never falls back to verl's reference log-probs.
    ("snapshot", ("old_log_probs", "ref_log_prob"), r"teacher=snapshot.*no 'teacher_log_probs'.*teacher worker"),
    ("ema", ("old_log_probs",), r"teacher=ema.*no 'teacher_log_probs'"),
    ("external", ("old_log_probs", "ref_log_prob"), r"teacher=external.*write your teacher"),
    ("base", ("old_log_probs",), r"teacher=base reads verl's 'ref_log_prob'.*use_kl_loss=True"),
    ("base", ("old_log_probs", "ref_log_prob", "teacher_log_probs"), r"teacher=external to train against"),
])
def test_a_missing_or_ambiguous_teacher_is_an_error(kind, batch_keys, pattern):
    rewards, mask, index, old, teacher = _verl_batch(2)
    full = {"old_log_probs": old, "ref_log_prob": teacher, "teacher_log_probs": teacher}
    with pytest.raises(ValueError, match=pattern):
        cast_verl.compute_cast_advantage(rewards, mask, index, {"cast": {"teacher": kind}},
                                         batch={k: full[k] for k in batch_keys})


def test_settings_section_splits_estimator_and_teacher():
    cfg, teacher = cast_verl.cast_settings({"cast": {"lam": 0.25, "deadband": [0.95, 1.05], "teacher": "ema",
                                                     "teacher_ema_decay": 0.99, "teacher_offload": True}})
    assert cfg == CASTConfig(lam=0.25, deadband=(0.95, 1.05))
    assert teacher == cast_verl.TeacherSettings(kind="ema", ema_decay=0.99, offload=True)
    assert cast_verl.cast_settings(None) == (CASTConfig(), cast_verl.TeacherSettings())
    for bad, pattern in [({"teacher": "lagged"}, "algorithm.cast.teacher: must be one of"),
                         ({"teacher_refresh_steps": 0}, "teacher_refresh_steps: must be an int >= 1"),
                         ({"teacher_ema_decay": 1.5}, r"teacher_ema_decay: must be a number in \[0, 1\]"),
                         ({"lamb": 0.5}, r"unknown key\(s\) \['lamb'\]")]:
        with pytest.raises(ValueError, match=pattern):
            cast_verl.cast_settings({"cast": bad})


def test_config_section_and_step():
    rewards, mask, index, old, teacher = _verl_batch(2)
    batch = {"old_log_probs": old, "teacher_log_probs": teacher}
    algo = {"adv_estimator": "cast", "cast": {"lam": 0.5, "lam_decay_steps": 10, "deadband": [0.95, 1.05]}}
    with pytest.raises(ValueError, match="step: required.*install"):
        cast_verl.compute_cast_advantage(rewards, mask, index, config=algo, batch=batch)
    adv, _ = cast_verl.compute_cast_advantage(rewards, mask, index, config=algo, batch=batch, step=5)
    cfg = CASTConfig(lam=0.5, lam_decay_steps=10, deadband=(0.95, 1.05))
    expected = cast_torch.cast_advantages(rewards.sum(-1), torch.tensor([0, 1, 0, 1, 0, 1]),
                                          teacher - old, mask, cfg, 5)
    torch.testing.assert_close(adv, expected.float(), atol=1e-6, rtol=0)
    plain, _ = cast_verl.compute_cast_advantage(rewards, mask, index, batch=batch, step=5)
    assert not torch.allclose(plain, adv)
    explicit, _ = cast_verl.compute_cast_advantage(rewards, mask, index, config=algo, batch=batch, step=5,
                                                   cast_config=CASTConfig())
    torch.testing.assert_close(explicit, plain)


def test_config_from_environment(monkeypatch):
    rewards, mask, index, old, teacher = _verl_batch(5)
    monkeypatch.setenv("CAST_VERL_CONFIG", '{"lam": 0.0, "flip_wrong": false}')
    adv, _ = cast_verl.compute_cast_advantage(rewards, mask, index, old_log_probs=old, teacher_log_probs=teacher)
    expected = cast_torch.cast_advantages(rewards.sum(-1), torch.tensor([0, 1, 0, 1, 0, 1]), teacher - old, mask,
                                          CASTConfig(lam=0.0, flip_wrong=False))
    torch.testing.assert_close(adv, expected.float(), atol=1e-6, rtol=0)
    # A cast section in verl's algorithm config wins over the environment.
    adv2, _ = cast_verl.compute_cast_advantage(rewards, mask, index, config={"cast": {}}, old_log_probs=old,
                                               teacher_log_probs=teacher)
    torch.testing.assert_close(adv2, cast_torch.cast_advantages(
        rewards.sum(-1), torch.tensor([0, 1, 0, 1, 0, 1]), teacher - old, mask).float(), atol=1e-6, rtol=0)
    for bad, pattern in [("{not json", "not valid JSON"), ("[1, 2]", "JSON object"), ('{"lamb": 1}', "unknown key")]:
        monkeypatch.setenv("CAST_VERL_CONFIG", bad)
        with pytest.raises(ValueError, match=pattern):
            cast_verl.compute_cast_advantage(rewards, mask, index, old_log_probs=old, teacher_log_probs=teacher)


@pytest.mark.parametrize("call, pattern", [
    (lambda r, m, i, o, t: cast_verl.compute_cast_advantage(r, m, i, batch={"old_log_probs": o}),
     r"teacher_log_probs: algorithm.cast.teacher=snapshot"),
    (lambda r, m, i, o, t: cast_verl.compute_cast_advantage(r, m, i, teacher_log_probs=t),
     r"old_log_probs: not given.*install\(\)"),
    (lambda r, m, i, o, t: cast_verl.compute_cast_advantage(r, m, None, old_log_probs=o, teacher_log_probs=t),
     r"index: required"),
    (lambda r, m, i, o, t: cast_verl.compute_cast_advantage(r, m, i[:4], old_log_probs=o, teacher_log_probs=t),
     r"index: has 4 entries"),
    (lambda r, m, i, o, t: cast_verl.compute_cast_advantage(r, m[:, :3], i, old_log_probs=o, teacher_log_probs=t),
     r"response_mask: must be a tensor of shape"),
    (lambda r, m, i, o, t: cast_verl.compute_cast_advantage(r, m, i, old_log_probs=o[:, :2], teacher_log_probs=t),
     r"old_log_probs: must have shape"),
    (lambda r, m, i, o, t: cast_verl.compute_cast_advantage(r.sum(-1), m, i, old_log_probs=o, teacher_log_probs=t),
     r"token_level_rewards: must be a \[B, T\]"),
    (lambda r, m, i, o, t: cast_verl.compute_cast_advantage(r, m, i, old_log_probs=o, teacher_log_probs=t, step=-1),
     r"step: must be an int >= 0"),
    (lambda r, m, i, o, t: cast_verl.compute_cast_advantage(
        r, m, i, old_log_probs=o, teacher_log_probs=t.masked_fill(m == 1, float("nan"))),
     r"gaps"),
])
def test_bad_inputs_are_named(call, pattern):
    rewards, mask, index, old, teacher = _verl_batch(3)
    with pytest.raises(ValueError, match=pattern):
        call(rewards, mask, index, old, teacher)


def test_group_ids_from_index():
    ids = cast_verl.group_ids_from_index(np.array(["x", "y", "x", "z", "y"], dtype=object), 5)
    assert ids.tolist() == [0, 1, 0, 2, 1]
    assert cast_verl.group_ids_from_index(torch.tensor([7, 7, 3]), 3).tolist() == [0, 0, 1]


def _fake_verl(monkeypatch):
    """A stand-in for the parts of verl the integration touches."""
    calls = []
    core_algos = types.ModuleType("verl.trainer.ppo.core_algos")
    core_algos.ADV_ESTIMATOR_REGISTRY = {}

    def register_adv_est(name):
        def decorator(fn):
            if name in core_algos.ADV_ESTIMATOR_REGISTRY and core_algos.ADV_ESTIMATOR_REGISTRY[name] != fn:
                raise ValueError(f"Adv estimator {name} has already been registered")
            core_algos.ADV_ESTIMATOR_REGISTRY[name] = fn
            return fn
        return decorator

    core_algos.register_adv_est = register_adv_est
    ray_trainer = types.ModuleType("verl.trainer.ppo.ray_trainer")

    def compute_advantage(data, adv_estimator, gamma=1.0, lam=1.0, num_repeat=1, norm_adv_by_std_in_grpo=True,
                          config=None):
        calls.append(adv_estimator)
        data.batch["advantages"] = torch.zeros_like(data.batch["token_level_rewards"])
        return data

    class RayPPOTrainer:  # the methods install() hooks, doing nothing
        def init_workers(self):
            calls.append("init_workers")

        def _compute_old_log_prob(self, batch):
            return batch, 0.0

        def fit(self):
            return ray_trainer.compute_advantage(self.data, adv_estimator="cast", config=self.config)

    ray_trainer.RayPPOTrainer = RayPPOTrainer
    ray_trainer.compute_advantage = compute_advantage
    ray_trainer.compute_response_mask = lambda data: data.batch["attention_mask"][:, -5:]
    ppo = types.ModuleType("verl.trainer.ppo")
    ppo.core_algos, ppo.ray_trainer = core_algos, ray_trainer
    trainer = types.ModuleType("verl.trainer")
    trainer.ppo = ppo
    verl = types.ModuleType("verl")
    verl.trainer = trainer
    # A module that bound compute_advantage by name before install() (as verl's v1/utils.py does).
    early = types.ModuleType("verl.trainer.ppo.early_binder")
    early.compute_advantage = compute_advantage
    for name in [n for n in sys.modules if n == "verl" or n.startswith("verl.")]:
        monkeypatch.delitem(sys.modules, name)  # a real verl, if loaded, must not show through
    for name, mod in [("verl", verl), ("verl.trainer", trainer), ("verl.trainer.ppo", ppo),
                      ("verl.trainer.ppo.core_algos", core_algos), ("verl.trainer.ppo.ray_trainer", ray_trainer),
                      ("verl.trainer.ppo.early_binder", early)]:
        monkeypatch.setitem(sys.modules, name, mod)
    return core_algos, ray_trainer, calls


def test_registered_as_cast_when_verl_is_importable_and_install_passes_the_batch(monkeypatch):
    core_algos, ray_trainer, calls = _fake_verl(monkeypatch)
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    fresh = importlib.import_module(MODULE)
    assert core_algos.ADV_ESTIMATOR_REGISTRY["cast"] is fresh.compute_cast_advantage
    original = ray_trainer.compute_advantage
    assert fresh.install() is True and fresh.install() is True  # idempotent: one layer of wrapping
    assert ray_trainer.compute_advantage.__cast_original__ is original
    assert sys.modules["verl.trainer.ppo.early_binder"].compute_advantage is ray_trainer.compute_advantage
    assert ray_trainer.RayPPOTrainer.fit.__cast_original__.__qualname__.endswith("RayPPOTrainer.fit")

    rewards, mask, index, old, teacher = _verl_batch(4)
    attention = torch.cat([torch.ones(6, 3, dtype=torch.long), mask], dim=1)
    data = types.SimpleNamespace(
        batch={"token_level_rewards": rewards, "attention_mask": attention, "old_log_probs": old,
               "teacher_log_probs": teacher},
        non_tensor_batch={"uid": index}, meta_info={"global_steps": 4})
    algo = {"cast": {"lam_decay_steps": 6}}
    out = ray_trainer.compute_advantage(data, adv_estimator="cast", gamma=1.0, lam=1.0, config=algo)
    # verl counts steps from 1: global_steps 4 means 3 optimizer steps done.
    expected = cast_torch.cast_advantages(rewards.sum(-1), torch.tensor([0, 1, 0, 1, 0, 1]), teacher - old, mask,
                                          CASTConfig(lam_decay_steps=6), 3)
    torch.testing.assert_close(out.batch["advantages"], expected.float(), atol=1e-6, rtol=0)
    assert out.batch["returns"] is out.batch["advantages"]
    assert torch.equal(out.batch["response_mask"], mask)
    assert calls == []
    ray_trainer.compute_advantage(data, adv_estimator="grpo", config=algo)
    assert calls == ["grpo"]
    # Inside the legacy trainer's fit the step is the trainer's global_steps - 1, whatever meta_info says.
    trainer = ray_trainer.RayPPOTrainer()
    trainer.global_steps, trainer.config = 6, algo
    data.meta_info = {}
    trainer.data = data
    out = trainer.fit()
    torch.testing.assert_close(out.batch["advantages"], cast_torch.cast_advantages(
        rewards.sum(-1), GROUPS, teacher - old, mask, CASTConfig(lam_decay_steps=6), 5).float(), atol=1e-6, rtol=0)


def test_reload_and_reinstall(monkeypatch):
    core_algos, ray_trainer, _ = _fake_verl(monkeypatch)
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    first = importlib.import_module(MODULE)
    original = ray_trainer.compute_advantage
    assert first.install()
    second = importlib.reload(first)  # used to raise "Adv estimator cast has already been registered"
    assert core_algos.ADV_ESTIMATOR_REGISTRY["cast"] is second.compute_cast_advantage
    assert second.install()
    assert ray_trainer.compute_advantage.__cast_original__ is original  # still one layer
    core_algos.ADV_ESTIMATOR_REGISTRY["cast"] = lambda **kw: None  # somebody else's "cast"
    with pytest.raises(ValueError, match="already registered"):
        second.register()


def test_without_verl_register_and_install_report_false(monkeypatch):
    # Hide verl and every submodule a real install may have loaded already.
    for name in ["verl"] + [n for n in sys.modules if n.startswith("verl.")]:
        monkeypatch.setitem(sys.modules, name, None)
    assert cast_verl.register() is False
    assert cast_verl.install() is False
