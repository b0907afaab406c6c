"""CAST as a verl advantage estimator (``algorithm.adv_estimator=cast``).

:func:`compute_cast_advantage` has verl's custom-estimator signature
``(token_level_rewards, response_mask, index, config=None, **kwargs) -> (advantages, returns)``
and is registered under ``"cast"`` in verl's ``ADV_ESTIMATOR_REGISTRY`` when verl is
importable (importing this module never requires verl). Per batch of B responses padded to T::

    r  [B]     = token_level_rewards.sum(-1)            (verl's outcome reward)
    g  [B, T]  = teacher_log_probs − old_log_probs      (both from the batch, no gradient)
    Â  [B, T]  = cast_torch.cast_advantages(r, group(index), g, response_mask, cast_config, step)
    returns (Â, Â)                                       (as verl's GRPO does)

``index`` is verl's ``uid`` array (one id per prompt, repeated for its n rollouts). The teacher
log-probs are read from ``teacher_log_probs``, else from ``ref_log_prob`` — the log-probs
verl's reference worker computes with the *initial* weights on the same prompt, which is
exactly CAST's ``"base"`` teacher. ``old_log_probs`` are the rollout policy's log-probs verl
recomputes before the update.

Stock verl calls a custom estimator with only ``token_level_rewards``, ``response_mask``,
``config`` and ``index``; :func:`install` wraps ``verl.trainer.ppo.ray_trainer.compute_advantage``
so that, for ``adv_estimator == "cast"``, the batch and step are passed too. The launch
recipe is ``examples/verl/README.md``. Tested here with verl-shaped tensors and a stand-in
verl module; not tested against a live verl.
"""

from __future__ import annotations

import functools
import json
import numbers
import os
from typing import Any, Optional

import numpy as np
import torch

from cast_core.config import CASTConfig
from cast_torch.advantages import cast_advantages

__all__ = [
    "ESTIMATOR_NAME",
    "CONFIG_ENV",
    "TEACHER_KEYS",
    "OLD_LOG_PROBS_KEY",
    "compute_cast_advantage",
    "group_ids_from_index",
    "register",
    "install",
]

ESTIMATOR_NAME = "cast"
CONFIG_ENV = "CAST_VERL_CONFIG"
TEACHER_KEYS = ("teacher_log_probs", "ref_log_prob")
OLD_LOG_PROBS_KEY = "old_log_probs"


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


def _cast_config_from(config: Any, cast_config: Optional[CASTConfig]) -> CASTConfig:
    if cast_config is not None:
        if not isinstance(cast_config, CASTConfig):
            raise TypeError(f"cast_config: must be a CASTConfig, got {type(cast_config).__name__}")
        return cast_config
    section = None
    if config is not None and hasattr(config, "get"):
        section = config.get("cast", None)
    if section is None:
        text = os.environ.get(CONFIG_ENV)
        if not text:
            return CASTConfig()
        if len(text) > 10_000:
            raise ValueError(f"{CONFIG_ENV}: longer than 10000 characters")
        try:
            section = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{CONFIG_ENV}: not valid JSON ({err})") from None
        if not isinstance(section, dict):
            raise ValueError(f"{CONFIG_ENV}: must be a JSON object of CASTConfig fields, got {text!r}")
    if isinstance(section, CASTConfig):
        return section
    if not hasattr(section, "keys"):
        raise TypeError(f"config.cast: must be a mapping of CASTConfig fields, got {type(section).__name__}")
    return CASTConfig.from_dict({k: section[k] for k in section.keys()})


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
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CAST token advantages for a verl batch.

    Args:
        token_level_rewards: ``[B, T]`` float; the sequence reward is its sum over T.
        response_mask: ``[B, T]`` 0/1 or bool, the real response tokens.
        index: ``[B]`` prompt uids (verl's ``non_tensor_batch["uid"]``); equal uids form a group.
        config: verl's ``algorithm`` config. The CAST parameters are, first found:
            ``cast_config``; a ``cast`` sub-mapping of ``config`` (``+algorithm.cast.lam=0.5``);
            the JSON object in the environment variable ``CAST_VERL_CONFIG``
            (``{"lam_decay_steps": 300}``); ``CASTConfig()``.
        old_log_probs: ``[B, T]`` rollout-policy log-probs of the response tokens; default
            ``batch["old_log_probs"]``.
        teacher_log_probs: ``[B, T]`` teacher log-probs of the same tokens; default
            ``batch["teacher_log_probs"]``, else ``batch["ref_log_prob"]`` (the base teacher).
        batch: verl's ``DataProto.batch`` (TensorDict) or any mapping holding the keys above.
        step: optimizer steps done so far (the λ schedule). Required when the config's
            ``lam_decay_steps > 0``; otherwise 0 is used.
        cast_config: a ``CASTConfig``; overrides ``config``.
        **kwargs: other arguments verl passes (e.g. ``reward_baselines``) are ignored.

    Returns:
        ``(advantages, returns)``, both the same ``[B, T]`` float32 tensor on the rewards'
        device, 0 outside ``response_mask``.

    Raises:
        ValueError: a missing log-prob tensor (the message says how to provide it), shapes
            that disagree, a missing ``step`` with a decaying λ, or anything
            ``cast_torch.cast_advantages`` rejects (NaN gaps inside the mask, ...).
    """
    if not isinstance(token_level_rewards, torch.Tensor) or token_level_rewards.dim() != 2:
        raise ValueError("token_level_rewards: must be a [B, T] tensor, got "
                         f"{getattr(token_level_rewards, 'shape', type(token_level_rewards).__name__)}")
    shape = tuple(token_level_rewards.shape)
    if not isinstance(response_mask, torch.Tensor) or tuple(response_mask.shape) != shape:
        raise ValueError(f"response_mask: must be a tensor of shape {shape}, got "
                         f"{getattr(response_mask, 'shape', type(response_mask).__name__)}")
    cfg = _cast_config_from(config, cast_config)
    if step is None:
        if cfg.lam_decay_steps > 0:
            raise ValueError(
                "step: required when lam_decay_steps > 0 (pass the optimizer step; cast_torch.integrations."
                "verl.install() passes verl's global_steps - 1)")
        step = 0
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"step: must be an int >= 0, got {step!r}")

    if old_log_probs is None:
        old_log_probs = _batch_get(batch, OLD_LOG_PROBS_KEY)
    if teacher_log_probs is None:
        for key in TEACHER_KEYS:
            teacher_log_probs = _batch_get(batch, key)
            if teacher_log_probs is not None:
                break
    for name, value, hint in (
        ("old_log_probs", old_log_probs, "verl computes it before the update (batch key 'old_log_probs')"),
        ("teacher_log_probs", teacher_log_probs,
         "enable the reference worker for a base teacher (batch key 'ref_log_prob'), or write your "
         "teacher's log-probs to batch key 'teacher_log_probs'; see examples/verl/README.md"),
    ):
        if value is None:
            raise ValueError(f"{name}: not given and not in the batch; {hint}. Did you call "
                             "cast_torch.integrations.verl.install() so the batch is passed?")
        if tuple(value.shape) != shape:
            raise ValueError(f"{name}: must have shape {shape}, got {tuple(value.shape)}")

    device = token_level_rewards.device
    rewards = token_level_rewards.detach().sum(dim=-1)
    group_ids = group_ids_from_index(index, shape[0]).to(device)
    gaps = teacher_log_probs.detach().to(device).float() - old_log_probs.detach().to(device).float()
    advantages = cast_advantages(rewards.float(), group_ids, gaps, response_mask.to(device), cfg, int(step))
    advantages = advantages.to(torch.float32)
    return advantages, advantages


def register() -> bool:
    """Register :func:`compute_cast_advantage` as verl's ``"cast"`` estimator.

    Returns:
        True when verl is importable and the estimator is registered, False without verl.
    """
    try:
        from verl.trainer.ppo import core_algos
    except ImportError:
        return False
    registry = getattr(core_algos, "ADV_ESTIMATOR_REGISTRY", {})
    if registry.get(ESTIMATOR_NAME) is not compute_cast_advantage:
        core_algos.register_adv_est(ESTIMATOR_NAME)(compute_cast_advantage)
    return True


def install() -> bool:
    """Register the estimator and make verl pass the batch and step to it.

    Wraps ``verl.trainer.ppo.ray_trainer.compute_advantage``: for ``adv_estimator == "cast"``
    it calls :func:`compute_cast_advantage` with ``batch=data.batch`` and
    ``step = max(data.meta_info["global_steps"] - 1, 0)`` (verl counts steps from 1); every
    other estimator goes to verl's original function. Idempotent. Must run in the process
    that computes advantages (verl's driver / TaskRunner); see ``examples/verl/README.md``.

    Returns:
        True when verl is importable and the hook is installed, False without verl.
    """
    if not register():
        return False
    from verl.trainer.ppo import ray_trainer

    original = ray_trainer.compute_advantage
    if getattr(original, "_cast_wrapped", False):
        return True

    @functools.wraps(original)
    def compute_advantage(data, adv_estimator=None, *args, **kwargs):
        name = getattr(adv_estimator, "value", adv_estimator)
        if name != ESTIMATOR_NAME:
            return original(data, adv_estimator, *args, **kwargs)
        if "response_mask" not in data.batch.keys():
            data.batch["response_mask"] = ray_trainer.compute_response_mask(data)
        global_steps = (data.meta_info or {}).get("global_steps")
        step = None if global_steps is None else max(int(global_steps) - 1, 0)
        advantages, returns = compute_cast_advantage(
            token_level_rewards=data.batch["token_level_rewards"],
            response_mask=data.batch["response_mask"],
            index=data.non_tensor_batch["uid"],
            config=kwargs.get("config"),
            batch=data.batch,
            step=step,
        )
        data.batch["advantages"] = advantages
        data.batch["returns"] = returns
        return data

    compute_advantage._cast_wrapped = True
    ray_trainer.compute_advantage = compute_advantage
    return True


# Registered on import when verl is there, like verl's own estimators.
register()
