"""CAST on verl (>= 0.9): the ``"cast"`` advantage estimator, on both of verl's trainers, with a
lagged self-teacher.

Per batch of B responses padded to T (verl's tensors)::

    r  [B]     = token_level_rewards.sum(-1)            (verl's outcome reward)
    g  [B, T]  = teacher_log_probs − old_log_probs      (both recomputed by verl's actor, no gradient)
    Â  [B, T]  = cast_torch.cast_advantages(r, group(uid), g, response_mask, cast_config, step)
    returns (Â, Â)                                       (as verl's GRPO does)

``step`` = verl's ``global_steps − 1`` (optimizer steps done before this one: the λ schedule).

Settings — one section, ``algorithm.cast`` (``+algorithm.cast.lam=0.5`` on verl's command line):
every :class:`cast_core.CASTConfig` field, plus the teacher (:class:`TeacherSettings`):
``teacher`` (``snapshot`` | ``ema`` | ``base`` | ``current`` | ``external``, default
``snapshot``), ``teacher_refresh_steps`` (K = 50), ``teacher_ema_decay`` (0.995),
``teacher_offload`` (False). Without that section the JSON object in ``CAST_VERL_CONFIG`` is read.

Where the teacher's log-probs come from, and what happens when they are missing (never a
silent fallback):

==========  =======================================================  ===========================
teacher     log-probs                                                missing → ``ValueError``
==========  =======================================================  ===========================
snapshot,   ``teacher_log_probs``, scored by CAST's actor worker      says the worker did not run
ema         right after ``old_log_probs`` (``verl_worker``)
base        verl's ``ref_log_prob`` (initial weights; the adapter-    says how to turn the
            disabled model under LoRA)                               reference policy on
current     ``old_log_probs`` (g ≡ 0: an ablation)                    —
external    ``teacher_log_probs`` your own code wrote into the batch  says so
==========  =======================================================  ===========================

:func:`install` (run it in verl's driver, the TaskRunner: ``examples/verl/main_cast.py`` does,
or pass it as Ray's ``worker_process_setup_hook``) registers the estimator and hooks both
trainers — ``trainer.use_v1=false`` (``RayPPOTrainer``) and ``trainer.use_v1=true`` (the v1
``PPOTrainer`` family, whose TransferQueue path hands estimators only a fixed field list):

- the estimator gets the whole batch (``teacher_log_probs`` fetched from the TransferQueue on
  v1) and the step (from the trainer's ``global_steps``);
- for a snapshot/EMA teacher the actor worker class becomes CAST's (``verl_worker``), which
  scores the teacher right after ``old_log_probs``, updates it after every actor update and
  keeps it in verl's checkpoints.

Every other estimator, and every run with another ``adv_estimator``, is untouched.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import numbers
import os
import sys
from dataclasses import dataclass, field, fields as dc_fields
from typing import Any, Callable, Optional

import numpy as np
import torch

from cast_core.config import CASTConfig
from cast_torch.advantages import cast_advantages
from cast_torch.integrations.verl_teacher import TeacherSettings

__all__ = [
    "ESTIMATOR_NAME",
    "CONFIG_ENV",
    "TEACHER_KEY",
    "REF_KEY",
    "OLD_LOG_PROBS_KEY",
    "WORKER_CONFIG_KEY",
    "TEACHER_METHOD",
    "TeacherSettings",
    "cast_settings",
    "check_config",
    "compute_cast_advantage",
    "group_ids_from_index",
    "register",
    "install",
    "cast_task_runner",
]

ESTIMATOR_NAME = "cast"
CONFIG_ENV = "CAST_VERL_CONFIG"
TEACHER_KEY = "teacher_log_probs"
REF_KEY = "ref_log_prob"
OLD_LOG_PROBS_KEY = "old_log_probs"
WORKER_CONFIG_KEY = "cast_teacher"  # actor_rollout_ref.cast_teacher: written by install()'s hooks, read by the worker
TEACHER_METHOD = "cast_compute_teacher_log_prob"  # the worker-group method of verl_worker
# algorithm.cast key -> TeacherSettings field; every other key is a CASTConfig field.
_TEACHER_KEYS = {"teacher": "kind", "teacher_refresh_steps": "refresh_steps",
                 "teacher_ema_decay": "ema_decay", "teacher_offload": "offload"}
_ORIGINAL = "__cast_original__"  # attribute of every CAST wrapper: the verl function it wraps


# ----------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """OmegaConf containers (and tuples) -> plain lists/dicts, scalars unchanged."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return value
    if hasattr(value, "keys"):
        return {k: _plain(value[k]) for k in value.keys()}
    return [_plain(v) for v in value]


def _section(config: Any) -> Optional[dict[str, Any]]:
    section = config.get("cast", None) if config is not None and hasattr(config, "get") else None
    if section is not None:
        if not hasattr(section, "keys"):
            raise TypeError(f"algorithm.cast: must be a mapping of CAST settings, got {type(section).__name__}")
        return _plain(section)
    text = os.environ.get(CONFIG_ENV)
    if not text:
        return None
    if len(text) > 10_000:
        raise ValueError(f"{CONFIG_ENV}: longer than 10000 characters")
    try:
        section = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{CONFIG_ENV}: not valid JSON ({err})") from None
    if not isinstance(section, dict):
        raise ValueError(f"{CONFIG_ENV}: must be a JSON object of CAST settings, got {text!r}")
    return section


def cast_settings(config: Any = None, cast_config: Optional[CASTConfig] = None) -> tuple[CASTConfig, TeacherSettings]:
    """The estimator's and the teacher's settings from verl's ``algorithm`` config.

    Read, first found: the ``cast`` section of ``config``; the JSON object in ``CAST_VERL_CONFIG``;
    the defaults. ``cast_config`` (a ``CASTConfig``) overrides the estimator part.

    Raises:
        ValueError / TypeError: an unknown key (the message lists the known ones) or a bad value.
    """
    section = _section(config) or {}
    cast_fields = {f.name for f in dc_fields(CASTConfig)}
    unknown = sorted(set(section) - cast_fields - set(_TEACHER_KEYS))
    if unknown:
        raise ValueError(f"algorithm.cast: unknown key(s) {unknown}; known: CASTConfig fields "
                         f"{sorted(cast_fields)} and {sorted(_TEACHER_KEYS)}")
    teacher = TeacherSettings(**{_TEACHER_KEYS[k]: v for k, v in section.items() if k in _TEACHER_KEYS})
    if cast_config is None:
        cfg = CASTConfig.from_dict({k: v for k, v in section.items() if k in cast_fields})
    elif isinstance(cast_config, CASTConfig):
        cfg = cast_config
    else:
        raise TypeError(f"cast_config: must be a CASTConfig, got {type(cast_config).__name__}")
    return cfg, teacher


def _estimator_name(adv_estimator: Any) -> Any:
    return getattr(adv_estimator, "value", adv_estimator)


def check_config(config: Any) -> Optional[tuple[CASTConfig, TeacherSettings]]:
    """Check a full verl config for CAST before anything starts; None when the run is not CAST's.

    Raises ``ValueError`` naming the key to change for: bad ``algorithm.cast`` settings; the
    base teacher without verl's reference policy (nothing computes ``ref_log_prob``); a lagged
    teacher on the legacy trainer in rollout-correction bypass mode (verl skips the actor's
    log-prob pass the teacher is scored next to).
    """
    algorithm = config.get("algorithm") if hasattr(config, "get") else None
    if algorithm is None or _estimator_name(algorithm.get("adv_estimator")) != ESTIMATOR_NAME:
        return None
    cfg, teacher = cast_settings(algorithm)
    if teacher.kind == "base":
        from verl.trainer.ppo.utils import need_reference_policy

        if not need_reference_policy(config):
            raise ValueError(
                "algorithm.cast.teacher=base reads verl's reference log-probs, but no reference policy is "
                "configured; set actor_rollout_ref.actor.use_kl_loss=True actor_rollout_ref.actor.kl_loss_coef=0.0 "
                "(a KL term of weight 0 makes verl compute ref_log_prob)")
    if teacher.lagged and not config.trainer.get("use_v1", False):
        correction = algorithm.get("rollout_correction", None) or {}
        if correction.get("bypass_mode", False):
            raise ValueError(
                f"algorithm.cast.teacher={teacher.kind} with algorithm.rollout_correction.bypass_mode=True on the "
                "legacy trainer: verl skips the actor log-prob pass the teacher is scored with; use trainer.use_v1=True "
                "or bypass_mode=False")
    return cfg, teacher


# ----------------------------------------------------------------------------------------
# The estimator
# ----------------------------------------------------------------------------------------
def group_ids_from_index(index: Any, n: int) -> torch.Tensor:
    """Dense int64 group ids ``[n]`` from verl's ``index`` (uids: str, int or any hashable).

    Ids are numbered by first appearance, so the same uid always maps to the same group.

    Raises:
        ValueError: ``index`` is None or its length is not ``n``.
    """
    if index is None:
        raise ValueError("index: required (verl's per-response prompt uid array), got None")
    if isinstance(index, torch.Tensor):
        values = index.detach().cpu().tolist()
    else:
        values = np.asarray(index, dtype=object).reshape(-1).tolist()
    if len(values) != n:
        raise ValueError(f"index: has {len(values)} entries, expected one per response ({n})")
    seen: dict[Any, int] = {}
    ids = [seen.setdefault(v, len(seen)) for v in values]
    return torch.tensor(ids, dtype=torch.int64)


def _batch_get(batch: Any, key: str) -> Optional[torch.Tensor]:
    # TensorDict refuses `key in td`; its keys() view supports membership.
    if batch is None:
        return None
    try:
        keys = batch.keys()
    except AttributeError as err:
        raise TypeError(f"batch: must be a mapping or TensorDict, got {type(batch).__name__}") from err
    return batch[key] if key in keys else None


_NO_HOOK = ("Did you call cast_torch.integrations.verl.install() in verl's driver (examples/verl/main_cast.py "
            "does; or +ray_kwargs.ray_init.runtime_env.worker_process_setup_hook=cast_torch.integrations.verl.install)?")


def _teacher_from_batch(batch: Any, teacher: TeacherSettings, old: Optional[torch.Tensor]) -> torch.Tensor:
    """The teacher's log-probs for ``teacher.kind`` (see the module docstring's table)."""
    kind = teacher.kind
    if kind == "current":
        if old is None:
            raise ValueError(f"old_log_probs: not given and not in the batch. {_NO_HOOK}")
        return old
    field_value = _batch_get(batch, TEACHER_KEY)
    if kind == "base":
        if field_value is not None:
            raise ValueError(
                f"teacher_log_probs: the batch holds '{TEACHER_KEY}' but algorithm.cast.teacher=base uses verl's "
                f"'{REF_KEY}'; set algorithm.cast.teacher=external to train against your '{TEACHER_KEY}'")
        ref = _batch_get(batch, REF_KEY)
        if ref is None:
            raise ValueError(
                f"teacher_log_probs: algorithm.cast.teacher=base reads verl's '{REF_KEY}', which this batch lacks; "
                "set actor_rollout_ref.actor.use_kl_loss=True actor_rollout_ref.actor.kl_loss_coef=0.0 so verl "
                f"computes it. {_NO_HOOK}")
        return ref
    if field_value is None:
        if kind == "external":
            raise ValueError(f"teacher_log_probs: algorithm.cast.teacher=external, but no '{TEACHER_KEY}' in the "
                             "batch; write your teacher's [B, T] log-probs there before the advantage step")
        raise ValueError(
            f"teacher_log_probs: algorithm.cast.teacher={kind}, but the batch has no '{TEACHER_KEY}': CAST's "
            "teacher worker did not score it (verl's actor worker class must be CAST's; a custom worker class "
            f"must mix in cast_torch.integrations.verl_worker.CASTTeacherWorkerMixin). {_NO_HOOK}")
    return field_value


def compute_cast_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any = None,
    config: Any = None,
    *,
    old_log_probs: Optional[torch.Tensor] = None,
    teacher_log_probs: Optional[torch.Tensor] = None,
    batch: Any = None,
    step: Optional[int] = None,
    cast_config: Optional[CASTConfig] = None,
    teacher: Optional[TeacherSettings | str] = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CAST token advantages for a verl batch.

    Args:
        token_level_rewards: ``[B, T]`` float; the sequence reward is its sum over T.
        response_mask: ``[B, T]`` 0/1 or bool, the real response tokens.
        index: ``[B]`` prompt uids (verl's ``non_tensor_batch["uid"]``); equal uids form a group.
        config: verl's ``algorithm`` config; its ``cast`` section holds the settings
            (:func:`cast_settings`).
        old_log_probs: ``[B, T]`` rollout-policy log-probs of the response tokens; default
            ``batch["old_log_probs"]``.
        teacher_log_probs: ``[B, T]`` teacher log-probs of the same tokens; default: from
            ``batch`` as the teacher setting says (module docstring).
        batch: verl's ``DataProto.batch`` (TensorDict) or any mapping holding the keys above.
        step: optimizer steps done so far (the λ schedule). Required when ``lam_decay_steps > 0``;
            otherwise 0 is used.
        cast_config: a ``CASTConfig``; overrides ``config``'s estimator settings.
        teacher: a :class:`TeacherSettings` or a teacher kind; overrides ``config``'s.
        **kwargs: other arguments verl passes (e.g. ``reward_baselines``) are ignored.

    Returns:
        ``(advantages, returns)``, both the same ``[B, T]`` float32 tensor on the rewards'
        device, 0 outside ``response_mask``.

    Raises:
        ValueError: a missing log-prob tensor (the message says what to turn on), shapes that
            disagree, a missing ``step`` with a decaying λ, or anything
            ``cast_torch.cast_advantages`` rejects (NaN gaps inside the mask, ...).
    """
    if not isinstance(token_level_rewards, torch.Tensor) or token_level_rewards.dim() != 2:
        raise ValueError("token_level_rewards: must be a [B, T] tensor, got "
                         f"{getattr(token_level_rewards, 'shape', type(token_level_rewards).__name__)}")
    shape = tuple(token_level_rewards.shape)
    if not isinstance(response_mask, torch.Tensor) or tuple(response_mask.shape) != shape:
        raise ValueError(f"response_mask: must be a tensor of shape {shape}, got "
                         f"{getattr(response_mask, 'shape', type(response_mask).__name__)}")
    if isinstance(teacher, str):
        teacher = TeacherSettings(kind=teacher)
    if teacher is not None and not isinstance(teacher, TeacherSettings):
        raise TypeError(f"teacher: must be a TeacherSettings or a teacher kind, got {type(teacher).__name__}")
    if isinstance(cast_config, CASTConfig) and teacher is not None:
        cfg, settings = cast_config, teacher  # both given: nothing to read
    else:
        cfg, settings = cast_settings(config, cast_config)
        settings = teacher if teacher is not None else settings
    if step is None:
        if cfg.lam_decay_steps > 0:
            raise ValueError("step: required when lam_decay_steps > 0 (the optimizer step; install() passes "
                             f"verl's global_steps - 1). {_NO_HOOK}")
        step = 0
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"step: must be an int >= 0, got {step!r}")

    if old_log_probs is None:
        old_log_probs = _batch_get(batch, OLD_LOG_PROBS_KEY)
    if old_log_probs is None:
        raise ValueError("old_log_probs: not given and not in the batch; verl computes it before the update "
                         f"(batch key '{OLD_LOG_PROBS_KEY}'). {_NO_HOOK}")
    if teacher_log_probs is None:
        teacher_log_probs = _teacher_from_batch(batch, settings, old_log_probs)
    for name, value in (("old_log_probs", old_log_probs), ("teacher_log_probs", teacher_log_probs)):
        if tuple(value.shape) != shape:
            raise ValueError(f"{name}: must have shape {shape}, got {tuple(value.shape)}")

    device = token_level_rewards.device
    rewards = token_level_rewards.detach().sum(dim=-1)
    group_ids = group_ids_from_index(index, shape[0]).to(device)
    gaps = teacher_log_probs.detach().to(device).float() - old_log_probs.detach().to(device).float()
    advantages = cast_advantages(rewards.float(), group_ids, gaps, response_mask.to(device), cfg, int(step))
    advantages = advantages.to(torch.float32)
    ctx = _CONTEXT.get()
    if ctx is not None and ctx.metrics is not None:
        from cast_torch.diagnostics import cast_diagnostics

        diag = cast_diagnostics(rewards.float(), group_ids, gaps, response_mask.to(device), config=cfg, step=int(step))
        ctx.metrics.update({f"cast/{k}": v for k, v in diag.items()})
    return advantages, advantages


# ----------------------------------------------------------------------------------------
# Hooks into verl's trainers
# ----------------------------------------------------------------------------------------
@dataclass
class _StepContext:
    """What the advantage call of one training step may read beyond verl's DataProto."""

    trainer: Any
    fetch: Optional[Callable[[list[str]], dict[str, Optional[torch.Tensor]]]] = None  # v1: TransferQueue fields
    metrics: Optional[dict] = field(default=None)

    @property
    def step(self) -> int:
        return max(int(self.trainer.global_steps) - 1, 0)


_CONTEXT: contextvars.ContextVar[Optional[_StepContext]] = contextvars.ContextVar("cast_verl_step", default=None)


@contextlib.contextmanager
def _step_context(ctx: _StepContext):
    token = _CONTEXT.set(ctx)
    try:
        yield ctx
    finally:
        _CONTEXT.reset(token)


def _cast_settings_of(trainer: Any) -> Optional[TeacherSettings]:
    """The teacher settings when ``trainer`` runs CAST, else None."""
    checked = check_config(trainer.config)
    return None if checked is None else checked[1]


def _wrap_compute_advantage(original: Callable) -> Callable:
    """verl's ``compute_advantage``: ``"cast"`` gets the whole batch and the step; the rest is verl's."""

    def compute_advantage(data, adv_estimator=None, *args, **kwargs):
        if _estimator_name(adv_estimator) != ESTIMATOR_NAME:
            return original(data, adv_estimator, *args, **kwargs)
        config = kwargs.get("config", args[4] if len(args) > 4 else None)
        if "response_mask" not in data.batch.keys():
            from verl.trainer.ppo.ray_trainer import compute_response_mask

            data.batch["response_mask"] = compute_response_mask(data)
        ctx = _CONTEXT.get()
        cfg, teacher = cast_settings(config)
        if ctx is not None and ctx.fetch is not None and teacher.kind in ("snapshot", "ema", "external") \
                and TEACHER_KEY not in data.batch.keys():
            fetched = ctx.fetch([TEACHER_KEY])[TEACHER_KEY]
            if fetched is not None:
                data.batch[TEACHER_KEY] = fetched
        if ctx is not None:
            step = ctx.step
        else:
            global_steps = (data.meta_info or {}).get("global_steps")
            step = None if global_steps is None else max(int(global_steps) - 1, 0)
        advantages, returns = compute_cast_advantage(
            token_level_rewards=data.batch["token_level_rewards"],
            response_mask=data.batch["response_mask"],
            index=data.non_tensor_batch["uid"],
            batch=data.batch,
            step=step,
            cast_config=cfg,
            teacher=teacher,
        )
        data.batch["advantages"] = advantages
        data.batch["returns"] = returns
        return data

    return compute_advantage


def _teacher_method(worker_group: Any) -> Callable:
    method = getattr(worker_group, TEACHER_METHOD, None)
    if method is None:
        raise RuntimeError(
            f"CAST: the actor worker group has no {TEACHER_METHOD}(): its worker class is not CAST's. install() "
            "replaces verl's ActorRolloutRefWorker before the workers start; a custom worker class must mix in "
            "cast_torch.integrations.verl_worker.CASTTeacherWorkerMixin")
    return method


def _use_cast_workers(trainer: Any, mapping: dict) -> None:
    """Before the workers start: CAST's actor worker class and its teacher settings, for a lagged teacher."""
    teacher = _cast_settings_of(trainer)
    if teacher is None or not teacher.lagged:
        return
    import ray
    from omegaconf import open_dict

    from cast_torch.integrations.verl_worker import cast_worker_class

    for role, remote_cls in list(mapping.items()):
        if str(role) in ("actor", "actor_rollout", "actor_rollout_ref"):
            base = getattr(remote_cls, "__ray_actor_class__", remote_cls)
            mapping[role] = ray.remote(cast_worker_class(base))
    with open_dict(trainer.config):
        trainer.config.actor_rollout_ref[WORKER_CONFIG_KEY] = teacher.to_dict()


# -- legacy trainer (trainer.use_v1=false): verl.trainer.ppo.ray_trainer.RayPPOTrainer ---------------
def _legacy_init_workers(original: Callable) -> Callable:
    def init_workers(self, *args, **kwargs):
        _use_cast_workers(self, self.role_worker_mapping)
        return original(self, *args, **kwargs)
    return init_workers


def _legacy_compute_old_log_prob(original: Callable) -> Callable:
    def _compute_old_log_prob(self, batch, *args, **kwargs):
        result = original(self, batch, *args, **kwargs)
        teacher = _cast_settings_of(self)
        if teacher is not None and teacher.lagged:
            old_log_prob = result[0] if isinstance(result, tuple) else result
            old_log_prob.batch[TEACHER_KEY] = _legacy_teacher_log_probs(self, batch)
        return result
    return _compute_old_log_prob


def _legacy_teacher_log_probs(trainer: Any, batch: Any) -> torch.Tensor:
    """The teacher's log-probs ``[B, T]``, the way RayPPOTrainer computes ``ref_log_prob``."""
    from verl.trainer.ppo import ray_trainer as rt

    batch_td = rt.left_right_2_no_padding(batch.to_tensordict())
    rt.tu.assign_non_tensor(batch_td, calculate_entropy=False, compute_loss=False)
    output = _teacher_method(trainer.actor_rollout_wg)(batch_td)
    log_probs = rt.no_padding_2_padding(rt.tu.get(output, "log_probs"), batch_td)
    return log_probs.float()


def _legacy_fit(original: Callable) -> Callable:
    def fit(self, *args, **kwargs):
        with _step_context(_StepContext(trainer=self)):
            return original(self, *args, **kwargs)
    return fit


# -- v1 trainers (trainer.use_v1=true): verl.trainer.ppo.v1.trainer_base.PPOTrainer and subclasses -----
def _v1_setup(original: Callable) -> Callable:
    def _setup(self, *args, **kwargs):
        # Subclasses replace worker classes in their own _init_resource_pool_mgr (separate_async does):
        # act after the most derived one, right before _setup builds the workers from the mapping.
        resolved = type(self)._init_resource_pool_mgr

        def init_resource_pool_mgr(*a, **kw):
            out = resolved(self, *a, **kw)
            _use_cast_workers(self, self.role_worker_mapping)
            return out

        self._init_resource_pool_mgr = init_resource_pool_mgr
        try:
            return original(self, *args, **kwargs)
        finally:
            self.__dict__.pop("_init_resource_pool_mgr", None)
    return _setup


def _v1_compute_old_log_prob(original: Callable) -> Callable:
    def _compute_old_log_prob(self, batch, metrics, *args, **kwargs):
        result = original(self, batch, metrics, *args, **kwargs)
        teacher = _cast_settings_of(self)
        if teacher is not None and teacher.lagged:
            _v1_score_teacher(self, batch)
        return result
    return _compute_old_log_prob


def _v1_score_teacher(trainer: Any, batch: Any) -> None:
    """Write ``teacher_log_probs`` to the TransferQueue, the way the v1 PPOTrainer writes ``ref_log_prob``."""
    from verl.trainer.ppo.v1 import trainer_base as tb

    batch.extra_info.update({"calculate_entropy": False, "compute_loss": False,
                             "temperature": trainer.config.actor_rollout_ref.rollout.temperature})
    output = _teacher_method(trainer.actor_rollout_wg)(batch)
    if len(output) != len(batch):
        raise RuntimeError(f"CAST teacher: the worker returned {len(output)} rows for a batch of {len(batch)}")
    data = tb.tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                              select_fields=["log_probs", "response_mask"])
    data[TEACHER_KEY] = tb.response_from_nested(data.pop("log_probs"), data["response_mask"])
    tb.tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=data.select(TEACHER_KEY))


def _v1_fetcher(batch: Any) -> Callable[[list[str]], dict[str, Optional[torch.Tensor]]]:
    def fetch(names: list[str]) -> dict[str, Optional[torch.Tensor]]:
        from verl.trainer.ppo.v1 import trainer_base as tb

        data = tb.tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=list(names))
        present = set(data.keys())
        padded = data.to_padded_tensor() if present else data
        return {n: (padded[n] if n in present else None) for n in names}
    return fetch


def _v1_compute_advantage(original: Callable) -> Callable:
    def _compute_advantage(self, batch, metrics, *args, **kwargs):
        with _step_context(_StepContext(trainer=self, fetch=_v1_fetcher(batch), metrics=metrics)):
            return original(self, batch, metrics, *args, **kwargs)
    return _compute_advantage


# ----------------------------------------------------------------------------------------
# register / install
# ----------------------------------------------------------------------------------------
def _is_ours(fn: Any) -> bool:
    return getattr(fn, "__module__", None) == __name__ and getattr(fn, "__qualname__", None) == "compute_cast_advantage"


def register() -> bool:
    """Register :func:`compute_cast_advantage` as verl's ``"cast"`` estimator (safe to repeat, also
    after ``importlib.reload`` of this module).

    Returns:
        True when verl is importable and the estimator is registered, False without verl.

    Raises:
        ValueError: ``"cast"`` is registered to an estimator that is not this module's.
    """
    try:
        from verl.trainer.ppo import core_algos
    except ImportError:
        return False
    current = core_algos.ADV_ESTIMATOR_REGISTRY.get(ESTIMATOR_NAME)
    if current is not None and current is not compute_cast_advantage:
        if not _is_ours(current):
            raise ValueError(f"verl's adv estimator {ESTIMATOR_NAME!r} is already registered to {current!r}")
        del core_algos.ADV_ESTIMATOR_REGISTRY[ESTIMATOR_NAME]  # an earlier load of this module
    core_algos.register_adv_est(ESTIMATOR_NAME)(compute_cast_advantage)
    return True


def _patch(owner: Any, name: str, make: Callable[[Callable], Callable]) -> Callable:
    """Set ``owner.name = make(original)``; an earlier CAST wrapper is unwrapped first (idempotent)."""
    current = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    original = getattr(current, _ORIGINAL, current)
    wrapper = functools.wraps(original)(make(original))
    setattr(wrapper, _ORIGINAL, original)
    setattr(owner, name, wrapper)
    return wrapper


def install() -> bool:
    """Register the estimator and hook verl's trainers (module docstring). Idempotent, independent
    of what of verl was imported before, and safe after ``importlib.reload`` of this module.

    Run it in the process that drives training (verl's TaskRunner). Usable as Ray's
    ``worker_process_setup_hook``.

    Returns:
        True when verl is importable and everything is hooked, False without verl.
    """
    if not register():
        return False
    from verl.trainer.ppo import ray_trainer

    wrapper = _patch(ray_trainer, "compute_advantage", _wrap_compute_advantage)
    _patch(ray_trainer.RayPPOTrainer, "init_workers", _legacy_init_workers)
    _patch(ray_trainer.RayPPOTrainer, "_compute_old_log_prob", _legacy_compute_old_log_prob)
    _patch(ray_trainer.RayPPOTrainer, "fit", _legacy_fit)
    try:  # the v1 trainers need TransferQueue (pip install "verl[verl-core]"); without it they cannot run
        from verl.trainer.ppo.v1 import trainer_base
    except ImportError:
        trainer_base = None
    if trainer_base is not None:
        _patch(trainer_base.PPOTrainer, "_setup", _v1_setup)
        _patch(trainer_base.PPOTrainer, "_compute_old_log_prob", _v1_compute_old_log_prob)
        _patch(trainer_base.PPOTrainer, "_compute_advantage", _v1_compute_advantage)
    # Modules that bound verl's compute_advantage by name (v1/utils.py) get the wrapper too.
    original = getattr(wrapper, _ORIGINAL)
    for module_name, module in list(sys.modules.items()):
        if module_name.startswith("verl.") and module is not None and module is not ray_trainer:
            bound = getattr(module, "compute_advantage", None)
            if bound is original or hasattr(bound, _ORIGINAL):
                module.compute_advantage = wrapper
    return True


class _InstallFirst:
    """Mixed into verl's TaskRunner: install() in its own process before training starts."""

    def run(self, config, *args, **kwargs):
        install()
        return super().run(config, *args, **kwargs)


def cast_task_runner(config: Any) -> Any:
    """verl's Ray TaskRunner for ``config`` (v1 or legacy, by ``trainer.use_v1``) that runs
    :func:`install` first; pass it to ``verl.trainer.main_ppo.run_ppo(config, task_runner_class=...)``.

    Only the driver needs the hooks, so the workers start without importing verl's trainers.
    """
    import ray
    from verl.trainer import main_ppo

    if config.trainer.get("use_v1", True):
        base = main_ppo.TaskRunnerV1
    else:
        from verl.trainer.main_ppo_v0 import TaskRunner as base
    raw = getattr(base, "__ray_actor_class__", base)
    return ray.remote(type(f"CAST{raw.__name__}", (_InstallFirst, raw), {"__module__": __name__}))


# Registered on import when verl is there, like verl's own estimators.
register()
