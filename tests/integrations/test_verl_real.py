"""CAST against the released verl (0.9.x), its own venv: ``bash .ci/verl.sh``.

Real verl code throughout: the registry, the legacy ``compute_advantage`` on a ``DataProto``,
the legacy and v1 trainers' ``_compute_old_log_prob`` / ``_compute_advantage`` (v1 on a real
TransferQueue, over a local Ray), verl's TransferQueue bridge of worker methods, verl's worker
classes and colocated-worker binding, the recipe through ``validate_config``. Stand-ins: the GPU
parts — verl's FSDP/Megatron engines register for CUDA/NPU only, so the actor's forward
(``TrainingWorker.infer_batch``) is the tiny model's, and no Ray worker actors are started.

Skipped without verl (the main env keeps the stand-in tests in test_verl.py); with
``CAST_REQUIRE_VERL=1`` (set by .ci/verl.sh) a missing verl is an error, not a skip.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("CAST_REQUIRE_VERL") == "1":
    import verl  # noqa: F401  (an ImportError here fails the run instead of skipping it)
else:
    pytest.importorskip("verl")

import torch  # noqa: E402
from tensordict import NonTensorStack, TensorDict  # noqa: E402
from verl.single_controller.base.decorator import make_nd_compute_dataproto_dispatch_fn, register  # noqa: E402
from verl.utils import tensordict_utils as tu  # noqa: E402

import cast_torch  # noqa: E402
from cast_core.config import CASTConfig  # noqa: E402
from cast_torch.integrations import verl as cast_verl  # noqa: E402
from cast_torch.train.tiny import make_tiny_model, make_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RECIPE_DIR = ROOT / "examples" / "verl" / "config"

assert cast_verl.install()


# -- the recipe ---------------------------------------------------------------------------------
def recipe(*overrides):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(RECIPE_DIR), version_base=None):
        return compose("cast_grpo", overrides=list(overrides))


@pytest.fixture
def no_vllm_rank_check(monkeypatch):
    """validate_config checks a LoRA rank against vLLM's allowed ranks by importing
    verl.workers.rollout.vllm_rollout.utils, which imports vLLM (GPU-only). This stands in for that
    one module with verl's own fallback list of ranks; every other check is verl's."""
    stub = types.ModuleType("verl.workers.rollout.vllm_rollout.utils")

    def get_vllm_max_lora_rank(lora_rank):
        allowed = [1, 8, 16, 32, 64, 128, 256, 320, 512]
        assert lora_rank > 0
        if lora_rank > allowed[-1]:
            raise ValueError(f"lora_rank must be less than or equal to {allowed[-1]}, but got {lora_rank}")
        return next(r for r in allowed if r >= lora_rank)

    stub.get_vllm_max_lora_rank = get_vllm_max_lora_rank
    monkeypatch.setitem(sys.modules, stub.__name__, stub)


def _launcher():
    spec = importlib.util.spec_from_file_location("cast_verl_main", ROOT / "examples" / "verl" / "main_cast.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("overrides", [(), ("trainer.use_v1=false",), ("algorithm.cast.teacher=ema",),
                                       ("algorithm.cast.teacher=base", "actor_rollout_ref.actor.use_kl_loss=true")])
def test_recipe_passes_verl_validate_config(no_vllm_rank_check, overrides):
    config = recipe(*overrides)
    _launcher().prepare(config)  # auto_set_device + verl's validate_config + CAST's check
    cfg, teacher = cast_verl.cast_settings(config.algorithm)
    assert cfg.lam == 0.5 and cfg.lam_decay_steps == config.trainer.total_training_steps == 300
    assert config.actor_rollout_ref.model.lora_rank == 64 and config.actor_rollout_ref.rollout.n == 8
    assert teacher.kind == (overrides[0].split("=")[1] if overrides and "teacher" in overrides[0] else "snapshot")


@pytest.mark.parametrize("overrides, error, pattern", [
    (("actor_rollout_ref.actor.ppo_mini_batch_size=256",), Exception, "ppo_mini_batch_size"),       # verl's check
    (("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=null",), ValueError, "log_prob_micro_batch_size"),
    (("algorithm.cast.teacher=base",), ValueError, "use_kl_loss=True"),                               # CAST's
    (("+algorithm.cast.lamb=0.5",), ValueError, r"unknown key\(s\) \['lamb'\]"),
    (("trainer.use_v1=false", "algorithm.rollout_correction.bypass_mode=true"), ValueError, "bypass_mode"),
    (("algorithm.adv_estimator=grpo",), ValueError, "this launcher runs CAST"),
])
def test_launcher_refuses_bad_configs(no_vllm_rank_check, overrides, error, pattern):
    with pytest.raises(error, match=pattern):
        _launcher().prepare(recipe(*overrides))


# -- registration / install -----------------------------------------------------------------------
@pytest.mark.parametrize("v1_first", [True, False], ids=["v1-imported-first", "install-first"])
def test_install_is_order_independent_idempotent_and_reload_safe(v1_first):
    script = textwrap.dedent(f"""
        import importlib
        if {v1_first}:
            import verl.trainer.ppo.v1.utils as v1u
        from cast_torch.integrations import verl as cv
        assert cv.install() and cv.install()
        import verl.trainer.ppo.v1.utils as v1u
        from verl.trainer.ppo import core_algos, ray_trainer
        from verl.trainer.ppo.v1.trainer_base import PPOTrainer
        wrapped = ray_trainer.compute_advantage
        assert v1u.compute_advantage is wrapped, "v1 bypasses the hook"
        original = wrapped.__cast_original__
        cv2 = importlib.reload(cv)
        assert core_algos.ADV_ESTIMATOR_REGISTRY["cast"] is cv2.compute_cast_advantage
        assert cv2.install()
        assert v1u.compute_advantage is ray_trainer.compute_advantage is not wrapped
        assert ray_trainer.compute_advantage.__cast_original__ is original, "wrapped twice"
        assert PPOTrainer._compute_advantage.__cast_original__.__qualname__ == "PPOTrainer._compute_advantage"
        print("INSTALL-OK")
    """)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0 and "INSTALL-OK" in proc.stdout, proc.stderr[-3000:]


# -- data: the stand-in tests' batch (six responses, two interleaved prompts, NaN padding) --------
_spec = importlib.util.spec_from_file_location("cast_test_verl_standin", Path(__file__).with_name("test_verl.py"))
_standin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_standin)
GROUPS = torch.tensor([0, 1, 2, 0, 1, 2])  # the TransferQueue batches below: three prompts


def test_legacy_compute_advantage_with_teacher_field_and_lambda_schedule():
    from verl import DataProto
    from verl.trainer.ppo import ray_trainer

    rewards, mask, uids, old, teacher = _standin._verl_batch()
    groups = _standin.GROUPS
    algorithm = recipe("algorithm.cast.lam_decay_steps=6").algorithm
    data = DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask, "old_log_probs": old,
                 "ref_log_prob": old + 1.0, "teacher_log_probs": teacher},
        non_tensors={"uid": uids}, meta_info={"global_steps": 4})
    out = ray_trainer.compute_advantage(data, adv_estimator="cast", gamma=1.0, lam=1.0, num_repeat=1,
                                        norm_adv_by_std_in_grpo=True, config=algorithm)
    cfg = CASTConfig(lam=0.5, lam_decay_steps=6)
    expected = cast_torch.cast_advantages(rewards.sum(-1), groups, teacher - old, mask, cfg, 3)  # 4 - 1 steps done
    assert torch.equal(out.batch["advantages"], expected.float())
    assert torch.equal(out.batch["returns"], expected.float())
    # Inside the legacy trainer's fit (install() wraps it) the step is the trainer's, not meta_info's.
    fit_ctx = cast_verl._StepContext(trainer=types.SimpleNamespace(global_steps=6))
    with cast_verl._step_context(fit_ctx):
        out = ray_trainer.compute_advantage(data, adv_estimator="cast", config=algorithm)
    expected5 = cast_torch.cast_advantages(rewards.sum(-1), groups, teacher - old, mask, cfg, 5)
    assert torch.equal(out.batch["advantages"], expected5.float())
    assert ray_trainer.RayPPOTrainer.fit.__cast_original__.__qualname__ == "RayPPOTrainer.fit"
    # Other estimators are verl's own.
    grpo = ray_trainer.compute_advantage(data, adv_estimator="grpo", config=algorithm)
    assert not torch.equal(grpo.batch["advantages"], expected5.float())


# -- a stand-in for verl's GPU-only actor engine: the tiny model's forward ------------------------
def _sequence_log_probs(model, ids):
    """verl's layout: position j holds log p(ids[j+1] | ids[<= j]); the last position is 0."""
    with torch.no_grad():
        logits = model(input_ids=ids[None]).logits[0].float()
    lp = torch.log_softmax(logits[:-1], dim=-1).gather(-1, ids[1:, None])[:, 0]
    return torch.cat([lp, lp.new_zeros(1)])


class TinyTrainingWorker:
    """What CAST's worker uses of verl's TrainingWorker: ``engine.module`` and ``infer_batch``."""

    def __init__(self, model):
        self.engine = types.SimpleNamespace(module=model)
        self.calls = 0

    def infer_batch(self, data):
        self.calls += 1
        model = self.engine.module
        seqs = [data["input_ids"][i] for i in range(len(data))]
        lps = [_sequence_log_probs(model, s) for s in seqs]
        nested = torch.nested.as_nested_tensor(lps, layout=torch.jagged)
        out = TensorDict({"log_probs": nested, "entropy": torch.nested.as_nested_tensor(
            [torch.zeros_like(x) for x in lps], layout=torch.jagged)}, batch_size=[len(seqs)])
        tu.assign_non_tensor(out, metrics={"mfu": 0.0})
        return out

    def sgd_step(self, lr=0.5):
        model = self.engine.module
        ids = torch.tensor([[5, 17, 30, 9, 44, 12]])
        model(input_ids=ids, labels=ids).loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= lr * p.grad
                    p.grad = None


class TinyActorWorker:
    """Stands in for verl's ActorRolloutRefWorker below CAST's mixin: the same method names, registered
    with verl's own @register (so verl's TransferQueue bridge moves the data), the tiny model inside."""

    def __init__(self, config):
        self.config, self.role, self.rank = config, "actor_rollout", 0
        self.enable_routing_replay = False

    def init_model(self):
        self.actor = TinyTrainingWorker(make_tiny_model(make_tokenizer(), hidden_size=32, num_layers=2, num_heads=2))

    @register(dispatch_mode=make_nd_compute_dataproto_dispatch_fn(mesh_name="actor"))
    def compute_log_prob(self, data):
        return self.actor.infer_batch(data).cpu()

    @register(dispatch_mode=make_nd_compute_dataproto_dispatch_fn(mesh_name="actor"))
    def update_actor(self, data):
        self.actor.sgd_step()
        return TensorDict({}, batch_size=[])


def _tiny_cast_worker(config):
    from cast_torch.integrations.verl_worker import CASTTeacherWorkerMixin

    cls = type("TinyCASTWorker", (CASTTeacherWorkerMixin, TinyActorWorker), {})
    worker = cls(config)
    worker.init_model()
    return worker


class WorkerGroup:
    """The driver's view of one worker (verl's RayWorkerGroup calls the same methods on every rank)."""

    def __init__(self, worker):
        self.worker = worker

    def __getattr__(self, name):
        return getattr(self.worker, name)


def test_verl_worker_classes_bind_the_teacher_method():
    """verl's real worker classes and colocated-worker binding (CPU): the driver sees CAST's methods."""
    import ray
    from verl.single_controller.ray.base import RayClassWithInitArgs, create_colocated_worker_cls
    from verl.trainer.ppo.utils import Role
    from verl.workers.engine_workers import ActorRolloutRefWorker

    from cast_torch.integrations import verl_worker

    trainer = types.SimpleNamespace(config=recipe("algorithm.cast.teacher=ema", "algorithm.cast.teacher_ema_decay=0.99"))
    mapping = {Role.ActorRollout: ray.remote(ActorRolloutRefWorker), Role.Critic: object()}
    cast_verl._use_cast_workers(trainer, mapping)
    assert mapping[Role.ActorRollout].__ray_actor_class__ is verl_worker.CASTActorRolloutRefWorker
    assert trainer.config.actor_rollout_ref.cast_teacher.kind == "ema"
    assert trainer.config.actor_rollout_ref.cast_teacher.ema_decay == 0.99
    colocated = create_colocated_worker_cls({"actor_rollout": RayClassWithInitArgs(
        cls=mapping[Role.ActorRollout], config=trainer.config.actor_rollout_ref, role="actor_rollout")})
    bound = colocated.cls.__ray_actor_class__
    for name in ("actor_rollout_cast_compute_teacher_log_prob", "actor_rollout_update_actor",
                 "actor_rollout_save_checkpoint", "actor_rollout_load_checkpoint", "actor_rollout_compute_log_prob"):
        assert hasattr(bound, name), name
    detach = verl_worker.cast_worker_class(__import__(
        "verl.experimental.separation.engine_workers", fromlist=["DetachActorWorker"]).DetachActorWorker)
    assert detach.__name__ == "CASTDetachActorWorker" and verl_worker.CASTDetachActorWorker is detach
    with pytest.raises(TypeError, match=r"does not know; define class MyWorker\(CASTTeacherWorkerMixin"):
        verl_worker.cast_worker_class(type("MyWorker", (ActorRolloutRefWorker,), {}))
    # A base teacher needs no worker of CAST's.
    base_trainer = types.SimpleNamespace(config=recipe("algorithm.cast.teacher=base",
                                                       "actor_rollout_ref.actor.use_kl_loss=true"))
    plain = {Role.ActorRollout: ray.remote(ActorRolloutRefWorker)}
    cast_verl._use_cast_workers(base_trainer, plain)
    assert plain[Role.ActorRollout].__ray_actor_class__ is ActorRolloutRefWorker


def _legacy_batch(tokenizer, uids):
    """A legacy-trainer DataProto: left-padded prompts, right-padded responses."""
    from verl import DataProto

    prompts = [[5, 6, 7], [8, 9], [10, 11, 12], [5, 6, 7], [8, 9], [10, 11, 12]]
    responses = [[20, 21, 22, 23], [24, 25], [26, 27, 28], [29], [30, 31, 32, 33], [34, 35]]
    p_len, r_len = max(map(len, prompts)), max(map(len, responses))
    pad = tokenizer.pad_token_id
    prompt_ids = torch.tensor([[pad] * (p_len - len(p)) + p for p in prompts])
    response_ids = torch.tensor([r + [pad] * (r_len - len(r)) for r in responses])
    prompt_mask = torch.tensor([[0] * (p_len - len(p)) + [1] * len(p) for p in prompts])
    response_mask = torch.tensor([[1] * len(r) + [0] * (r_len - len(r)) for r in responses])
    attention = torch.cat([prompt_mask, response_mask], dim=1)
    position = (attention.cumsum(-1) - 1).clamp(min=0)
    return DataProto.from_dict(tensors={
        "prompts": prompt_ids, "responses": response_ids, "input_ids": torch.cat([prompt_ids, response_ids], 1),
        "attention_mask": attention, "position_ids": position, "response_mask": response_mask},
        non_tensors={"uid": uids}), prompts, responses


def _response_log_probs(model, prompts, responses, width):
    rows = []
    for p, r in zip(prompts, responses):
        lp = _sequence_log_probs(model, torch.tensor(p + r))
        row = torch.zeros(width)
        row[:len(r)] = lp[len(p) - 1:len(p) + len(r) - 1]
        rows.append(row)
    return torch.stack(rows)


def test_legacy_old_log_prob_step_scores_the_lagged_teacher():
    """RayPPOTrainer._compute_old_log_prob (verl's, hooked by install()) with CAST's worker on the tiny model."""
    import copy

    from verl.trainer.ppo.ray_trainer import RayPPOTrainer

    config = recipe("trainer.use_v1=false", "algorithm.cast.teacher_refresh_steps=2")
    trainer = object.__new__(RayPPOTrainer)
    trainer.config = config
    cast_verl._use_cast_workers(trainer, {})
    worker = _tiny_cast_worker(config.actor_rollout_ref)
    trainer.actor_rollout_wg = WorkerGroup(worker)
    base = copy.deepcopy(worker.actor.engine.module)
    worker.update_actor(TensorDict({}, batch_size=[]))   # update 1 of K = 2: the teacher is still the base
    data, prompts, responses = _legacy_batch(make_tokenizer(), np.array(list("abcabc"), dtype=object))
    old, _ = trainer._compute_old_log_prob(data)
    width = data.batch["responses"].shape[1]
    policy = worker.actor.engine.module
    torch.testing.assert_close(old.batch["old_log_probs"], _response_log_probs(policy, prompts, responses, width))
    torch.testing.assert_close(old.batch["teacher_log_probs"], _response_log_probs(base, prompts, responses, width))
    assert not torch.allclose(old.batch["teacher_log_probs"], old.batch["old_log_probs"])
    worker.update_actor(TensorDict({}, batch_size=[]))   # update 2: the snapshot refreshes to the policy
    old, _ = trainer._compute_old_log_prob(data)
    assert torch.equal(old.batch["teacher_log_probs"], old.batch["old_log_probs"])  # g = 0 exactly


# -- the v1 trainer on a real TransferQueue --------------------------------------------------------
@pytest.fixture(scope="module")
def transfer_queue():
    import ray
    import transfer_queue as tq

    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    tq.init()
    yield tq
    tq.close()
    ray.shutdown()


def _put_v1_batch(tq, tag, uids, rewards_per_row, rollout_model=None):
    """Rollout outputs as v1's agent loop leaves them in the TransferQueue (nested, no padding);
    ``rollout_log_probs`` (verl's default rollout.calculate_log_probs=True) from ``rollout_model``."""
    prompts = [[5, 6, 7], [8, 9], [10, 11, 12], [5, 6, 7], [8, 9], [10, 11, 12]]
    responses = [[20, 21, 22, 23], [24, 25], [26, 27, 28], [29], [30, 31, 32, 33], [34, 35]]
    nested = lambda rows, dtype=None: torch.nested.as_nested_tensor(  # noqa: E731
        [torch.tensor(r, dtype=dtype) for r in rows], layout=torch.jagged)
    rm = [[0.0] * (len(r) - 1) + [s] for r, s in zip(responses, rewards_per_row)]
    fields = TensorDict({
        "input_ids": nested([p + r for p, r in zip(prompts, responses)]),
        "response_mask": nested([[1] * len(r) for r in responses], torch.int64),
        "rm_scores": nested(rm, torch.float32),
        "responses": nested(responses),
        "uid": NonTensorStack(*uids),
    }, batch_size=[len(uids)])
    if rollout_model is not None:
        lps = [_sequence_log_probs(rollout_model, torch.tensor(p + r))[len(p) - 1:len(p) + len(r) - 1]
               for p, r in zip(prompts, responses)]
        fields["rollout_log_probs"] = torch.nested.as_nested_tensor(lps, layout=torch.jagged)
    keys = [f"{tag}{u}_0_{i}" for i, u in enumerate(uids)]
    meta = tq.kv_batch_put(keys=keys, partition_id="train", fields=fields,
                           tags=[{"global_steps": 1} for _ in keys])
    return meta, prompts, responses


def _v1_trainer(*overrides, global_steps):
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    trainer = object.__new__(PPOTrainerSync)
    trainer.config = recipe(*overrides)
    trainer.global_steps = global_steps
    cast_verl._use_cast_workers(trainer, {})
    return trainer


def _padded(tq, meta, field):
    data = tq.kv_batch_get(keys=meta.keys, partition_id=meta.partition_id, select_fields=[field])
    return data.to_padded_tensor()[field]


def test_v1_trainer_lagged_teacher_and_lambda_schedule_on_transfer_queue(transfer_queue):
    import copy

    tq = transfer_queue
    trainer = _v1_trainer("algorithm.cast.teacher_refresh_steps=2", "algorithm.cast.lam_decay_steps=6",
                          global_steps=4)
    worker = _tiny_cast_worker(trainer.config.actor_rollout_ref)
    trainer.actor_rollout_wg = WorkerGroup(worker)
    base = copy.deepcopy(worker.actor.engine.module)
    worker.update_actor(TensorDict({}, batch_size=[]))        # teacher (base) and policy now differ
    scores = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    meta, prompts, responses = _put_v1_batch(tq, "s4-", ["a", "b", "c", "a", "b", "c"], scores,
                                             worker.actor.engine.module)
    metrics = {}
    trainer._compute_old_log_prob(meta, metrics)              # verl's v1 code + CAST's teacher pass
    trainer._compute_advantage(meta, metrics)                 # verl's v1 code, fixed field list + CAST
    width = max(map(len, responses))
    old = _response_log_probs(worker.actor.engine.module, prompts, responses, width)
    teacher = _response_log_probs(base, prompts, responses, width)
    torch.testing.assert_close(_padded(tq, meta, "old_log_probs"), old)
    torch.testing.assert_close(_padded(tq, meta, "teacher_log_probs"), teacher)
    mask = (torch.arange(width)[None, :] < torch.tensor([len(r) for r in responses])[:, None]).float()
    rewards = torch.tensor(scores)
    old_tq, teacher_tq = _padded(tq, meta, "old_log_probs"), _padded(tq, meta, "teacher_log_probs")
    expected = cast_torch.cast_advantages(rewards, GROUPS, teacher_tq - old_tq, mask,
                                          CASTConfig(lam=0.5, lam_decay_steps=6), 3)  # global_steps 4: 3 done
    advantages = _padded(tq, meta, "advantages")
    assert torch.equal(advantages, expected.float() * mask)
    assert metrics["cast/lam"] == pytest.approx(0.5 * (1 - 3 / 6))
    assert "actor/entropy" in metrics and "cast/gap_mean_correct" in metrics

    worker.update_actor(TensorDict({}, batch_size=[]))        # update 2: the snapshot refreshes
    meta2, _, _ = _put_v1_batch(tq, "s5-", ["a", "b", "c", "a", "b", "c"], scores, worker.actor.engine.module)
    trainer._compute_old_log_prob(meta2, {})
    assert torch.equal(_padded(tq, meta2, "teacher_log_probs"), _padded(tq, meta2, "old_log_probs"))


def test_v1_trainer_missing_teacher_is_loud_and_base_reads_ref(transfer_queue):
    tq = transfer_queue
    scores = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    trainer = _v1_trainer(global_steps=2)   # snapshot teacher, but its pass never ran for this batch
    meta, _, responses = _put_v1_batch(tq, "m-", ["a", "b", "c", "a", "b", "c"], scores)
    width = max(map(len, responses))
    mask_rows = [[1.0] * len(r) for r in responses]
    old = torch.nested.as_nested_tensor([-torch.arange(1, len(r) + 1) * 0.1 for r in mask_rows], layout=torch.jagged)
    ref = torch.nested.as_nested_tensor([-torch.arange(1, len(r) + 1) * 0.3 for r in mask_rows], layout=torch.jagged)
    tq.kv_batch_put(keys=meta.keys, partition_id="train",
                    fields=TensorDict({"old_log_probs": old, "ref_log_prob": ref}, batch_size=[6]))
    with pytest.raises(ValueError, match="teacher=snapshot.*teacher worker did not score"):
        trainer._compute_advantage(meta, {})
    base = _v1_trainer("algorithm.cast.teacher=base", "actor_rollout_ref.actor.use_kl_loss=true", global_steps=2)
    base._compute_advantage(meta, {})
    mask = (torch.arange(width)[None, :] < torch.tensor([len(r) for r in responses])[:, None]).float()
    gaps = _padded(tq, meta, "ref_log_prob") - _padded(tq, meta, "old_log_probs")
    expected = cast_torch.cast_advantages(torch.tensor(scores), GROUPS, gaps, mask, CASTConfig(lam_decay_steps=300), 1)
    assert torch.equal(_padded(tq, meta, "advantages"), expected.float() * mask)


def test_worker_checkpoint_round_trip(tmp_path):
    config = recipe("algorithm.cast.teacher=ema")
    trainer = types.SimpleNamespace(config=config)
    cast_verl._use_cast_workers(trainer, {})

    class Saving(TinyActorWorker):
        def save_checkpoint(self, local_path, hdfs_path=None, global_step=0, max_ckpt_to_keep=None):
            os.makedirs(local_path, exist_ok=True)
            (Path(local_path) / "model.txt").write_text("verl's files")

        def load_checkpoint(self, local_path, hdfs_path=None, del_local_after_load=False):
            assert (Path(local_path) / "model.txt").exists()

    from cast_torch.integrations.verl_worker import CASTTeacherWorkerMixin

    cls = type("SavingCAST", (CASTTeacherWorkerMixin, Saving), {})
    worker = cls(config.actor_rollout_ref)
    worker.init_model()
    worker.update_actor(TensorDict({}, batch_size=[]))
    path = tmp_path / "global_step_1" / "actor"
    worker.save_checkpoint(str(path), None, 1)
    assert sorted(p.name for p in path.iterdir()) == ["cast_teacher_rank0.safetensors", "model.txt"]
    fresh = cls(config.actor_rollout_ref)
    fresh.init_model()
    fresh.load_checkpoint(str(path))
    assert fresh._cast_teacher.updates == 1
    assert all(torch.equal(a, b) for a, b in zip(fresh._cast_teacher.tensors, worker._cast_teacher.tensors))
    empty = tmp_path / "global_step_2" / "actor"
    empty.mkdir(parents=True)
    (empty / "model.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="cast_teacher_rank0.safetensors is not there"):
        fresh.load_checkpoint(str(empty))
