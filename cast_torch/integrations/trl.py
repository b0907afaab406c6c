"""CAST on TRL: ``CASTGRPOConfig`` and ``CASTGRPOTrainer``.

``CASTGRPOTrainer`` is TRL's ``GRPOTrainer`` with one change: after TRL has generated and
scored a batch, the sequence advantages ``[B]`` are replaced by CAST token advantages
``[B, T]`` (TRL's loss accepts both shapes). Everything else — generation (transformers or
vLLM), the clipped loss, KL, logging, DeepSpeed/FSDP plumbing — is TRL's.

Per generation batch, with B local completions padded to T tokens::

    r        [N]     sequence reward = Σ_k w_k · reward_k, gathered over all processes (N = B · P)
    g        [B, T]  log π_teacher(y_t | ctx_T) − log π_old(y_t | x, y_<t), no gradient
    Â        [N, T]  cast_torch.cast_advantages(r, group_ids, g, mask, config, step)
    advantages = Â[this process's rows, :T]

``group_ids`` are TRL's grouping: the gathered batch holds ``num_generations`` consecutive
completions per prompt. Both log-probs come from TRL's own path
(``_get_per_token_logps_and_entropies``, fused LM head, same temperature), so g ≡ 0 when
the teacher has the policy's weights and sees the same context.

Where TRL is on-policy (it then skips the no-grad ``old_per_token_logps`` forward and the
loss uses its training forward, detached, as π_old), the bridge does not run that forward
either: the base advantages ``b [N]`` (rewards only) and the teacher's log-probs are
computed after generation, and the token advantages ``Â = token_advantages(b, g, mask)``
when TRL's loss forward has produced π_old for each micro-batch — the same numbers as
``cast_advantages`` (its token step reads one row at a time), one policy forward fewer.
Until then the batch's ``advantages`` are NaN; diagnostics, ``cast_last_batch`` and the
completions table are filled once every micro-batch of the generation batch is scored.

The teacher (``cast_teacher_mode``):

- ``"base"``     — the initial weights, frozen (TRL's ``ref_model`` when it exists and is not
  synced; the adapter-disabled model under PEFT).

Under PEFT the snapshot / EMA teacher is a second adapter (``"cast_teacher"``) on the policy
model, a copy of the trained adapter's weights, scored by switching adapters; the base
weights exist once.
- ``"snapshot"`` — starts as the initial weights and is overwritten by the policy every
  ``cast_teacher_refresh_steps`` optimizer steps (the CAST authors' default, K = 50).
- ``"ema"``      — θ_T ← d·θ_T + (1 − d)·θ after every optimizer step, d = ``cast_teacher_ema_decay``.
- ``"current"``  — the policy itself: g ≡ 0 with the same context, so CAST reduces to
  clipped GRPO with zero-variance bases.

The teacher context is the student's prompt, or ``cast_teacher_template`` with ``{prompt}``
(answer-free). A template naming any other dataset column (e.g. ``{answer}``) is privileged
and refused unless ``cast_allow_privileged_teacher=True``.

Tested (``tests/integrations``): CPU, full fine-tuning and PEFT LoRA, text prompts, on- and
off-policy, one process and two (``torchrun``, gloo: every rank forms the same CAST batch
from the gathered rewards and gaps and keeps its own rows). Written
for, not tested here (they need GPUs): vLLM generation, DeepSpeed ZeRO-3 / FSDP (the teacher
is then built and prepared the way TRL builds its ``ref_model``; snapshot/EMA updates use
TRL's ZeRO-3-aware sync). The teacher's schedule is
:func:`cast_torch.train.teacher.lagged_update_weight`, the one our trainer and verl's worker use.
"""

from __future__ import annotations

try:
    import trl  # noqa: F401
    from trl import GRPOConfig, GRPOTrainer
except ImportError as _err:  # pragma: no cover - exercised by a test with TRL hidden
    raise ImportError(
        "cast_torch.integrations.trl needs TRL (>= 1.16). Install it with "
        '`pip install "cast-rlvr[trl]"` (on CPU-only machines install torch first, '
        "e.g. `pip install torch --index-url https://download.pytorch.org/whl/cpu`)."
    ) from _err

import copy
import dataclasses
import re
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from accelerate.utils import is_peft_model
from transformers import TrainerCallback
from trl.data_utils import is_conversational
from trl.models import prepare_deepspeed, prepare_fsdp
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.callbacks import SyncRefModelCallback
from trl.trainer.utils import (
    add_fused_lm_head,
    create_model_from_path,
    get_config_model_id,
    pad,
    use_adapter,
)

from cast_core.config import CASTConfig
from cast_core.settings import check_group_size, check_teacher_schedule, check_teacher_template
from cast_core.settings import template_fields as _template_fields
from cast_torch.advantages import base_advantages, cast_advantages, token_advantages
from cast_torch.train.teacher import lagged_update_weight

__all__ = [
    "CASTGRPOConfig",
    "CASTGRPOTrainer",
    "TEACHER_MODES",
    "TEACHER_ADAPTER",
    "template_fields",
]

TEACHER_MODES = ("base", "snapshot", "ema", "current")
TEACHER_ADAPTER = "cast_teacher"   # the snapshot / EMA teacher under PEFT

# Keys of TRL's generation output that its log-prob path accepts as multimodal forward kwargs.
_FORWARD_KEYS = (
    "pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes",
    "num_tiles", "image_sizes", "token_type_ids", "mm_token_type_ids", "image_position_ids",
)

_CAST_FIELDS = {f.name: f for f in dataclasses.fields(CASTConfig)}


def _cast_field(name: str) -> Any:
    """A ``cast_<name>`` field with CASTConfig's default and help text (one source of truth)."""
    src = _CAST_FIELDS[name]
    help_text = src.metadata["help"] + f" (CASTConfig.{name})"
    if isinstance(src.default, tuple):
        # HfArgumentParser parses lists (nargs), not tuples.
        default = list(src.default)
        return field(default_factory=lambda: list(default), metadata={"help": help_text})
    return field(default=src.default, metadata={"help": help_text})


def template_fields(template: str) -> list[str]:
    """The replacement fields of a teacher-context template, in order (plain names only; the
    rule is :func:`cast_core.settings.template_fields`)."""
    return _template_fields(template, "cast_teacher_template")


@dataclass
class CASTGRPOConfig(GRPOConfig):
    """TRL ``GRPOConfig`` plus the CAST estimator and its self-teacher.

    Every ``cast_<name>`` numeric field is ``CASTConfig.<name>`` (same default, same
    validation; :meth:`cast_config` builds the ``CASTConfig``). Clip pairs are lists
    ``[lo, hi]`` so the command-line parser accepts them. Errors name the field, e.g.
    ``ValueError("CASTGRPOConfig.cast_lam: must be >= 0, got -1")``.

    Changed TRL default: ``epsilon_high=0.28`` (the CAST authors' clip-higher; with TRL's
    ``epsilon=0.2`` and ``loss_type="dapo"`` this is the contract's loss).
    """

    epsilon_high: Optional[float] = field(default=0.28, metadata={"help": (
        "Upper-bound epsilon of the ratio clip (CAST default 0.28, the authors' clip-higher; "
        "TRL's own default None means equal to `epsilon`).")})

    cast_scale: str = _cast_field("scale")
    cast_std_ddof: int = _cast_field("std_ddof")
    cast_eps: float = _cast_field("eps")
    cast_correct_threshold: float = _cast_field("correct_threshold")
    cast_lam: float = _cast_field("lam")
    cast_lam_decay_steps: int = _cast_field("lam_decay_steps")
    cast_zv_pos_base: float = _cast_field("zv_pos_base")
    cast_zv_neg_base: float = _cast_field("zv_neg_base")
    cast_zv_scale_with_lam: bool = _cast_field("zv_scale_with_lam")
    cast_w_clip_correct: list[float] = _cast_field("w_clip_correct")
    cast_w_clip_wrong: list[float] = _cast_field("w_clip_wrong")
    cast_adv_clip: list[float] = _cast_field("adv_clip")
    cast_flip_correct: bool = _cast_field("flip_correct")
    cast_flip_wrong: bool = _cast_field("flip_wrong")
    cast_deadband: list[float] = _cast_field("deadband")

    cast_teacher_mode: str = field(default="snapshot", metadata={"help": (
        'Which weights score the completion: "base" (initial weights, frozen), "snapshot" '
        "(initial weights, then the policy copied every `cast_teacher_refresh_steps` optimizer "
        'steps), "ema" (exponential moving average of the policy, updated every optimizer '
        'step) or "current" (the policy itself; gap 0 unless a template changes the context).')})
    cast_teacher_refresh_steps: int = field(default=50, metadata={"help": (
        'K: the "snapshot" teacher copies the policy after every K-th optimizer step (>= 1).')})
    cast_teacher_ema_decay: float = field(default=0.995, metadata={"help": (
        'd: the "ema" teacher becomes d * teacher + (1 - d) * policy after every optimizer step '
        "(0 <= d <= 1).")})
    cast_teacher_template: Optional[str] = field(default=None, metadata={"help": (
        "Teacher context. None: the student's prompt. Otherwise a template with `{prompt}` "
        "(for chat prompts it replaces the last user message's text), e.g. "
        "'Think step by step.\\n{prompt}'. Fields other than {prompt} name dataset columns and "
        "count as privileged.")})
    cast_allow_privileged_teacher: bool = field(default=False, metadata={"help": (
        "Allow a teacher template that reads dataset columns other than the prompt (e.g. "
        "`{answer}`). CAST's teacher is answer-free; this exists for diagnostics only.")})
    cast_log_diagnostics: bool = field(default=True, metadata={"help": (
        "Add cast_torch.diagnostics.cast_diagnostics of every generation batch to TRL's "
        "logs, under `cast/<key>`.")})

    def __post_init__(self) -> None:
        self._validate_cast_fields()
        super().__post_init__()

    def _validate_cast_fields(self) -> None:
        self.cast_config()
        name = type(self).__name__
        mode = self.cast_teacher_mode
        if not isinstance(mode, str) or mode not in TEACHER_MODES:
            raise ValueError(f"{name}.cast_teacher_mode: must be one of {TEACHER_MODES}, got {mode!r}")
        check_teacher_schedule(self.cast_teacher_refresh_steps, self.cast_teacher_ema_decay,
                               names=(f"{name}.cast_teacher_refresh_steps", f"{name}.cast_teacher_ema_decay"))
        for flag in ("cast_allow_privileged_teacher", "cast_log_diagnostics"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{name}.{flag}: must be a bool, got {getattr(self, flag)!r}")
        if self.num_generations is not None:
            check_group_size(self.num_generations, f"{name}.num_generations")
        if self.cast_teacher_template is not None:
            check_teacher_template(self.cast_teacher_template, allow_privileged=self.cast_allow_privileged_teacher,
                                   name=f"{name}.cast_teacher_template",
                                   privileged_flag="cast_allow_privileged_teacher=True")
        if self.multi_objective_aggregation != "sum_then_normalize":
            raise ValueError(
                f"{name}.multi_objective_aggregation: CAST needs one scalar reward per completion "
                f"(\"sum_then_normalize\"), got {self.multi_objective_aggregation!r}")

    def cast_config(self) -> CASTConfig:
        """The ``CASTConfig`` of the ``cast_*`` fields (validated; errors name the ``cast_`` field)."""
        kwargs = {n: getattr(self, f"cast_{n}") for n in _CAST_FIELDS}
        try:
            return CASTConfig(**kwargs)
        except (ValueError, TypeError) as err:
            msg = re.sub(r"\bCASTConfig\.", f"{type(self).__name__}.cast_", str(err))
            raise type(err)(msg) from None


class _TeacherUpdateCallback(TrainerCallback):
    """Refreshes the snapshot / EMA teacher after each optimizer step."""

    def __init__(self, trainer: "CASTGRPOTrainer") -> None:
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        self.trainer._cast_update_teacher(state.global_step)


class CASTGRPOTrainer(GRPOTrainer):
    """TRL ``GRPOTrainer`` whose advantages are CAST token advantages ``[B, T]``.

    Takes the same arguments as ``GRPOTrainer``; ``args`` must be a :class:`CASTGRPOConfig`.
    Reward functions are TRL's; the sequence reward of a completion is their weighted sum
    (``reward_weights``), and it counts as correct when it exceeds ``cast_correct_threshold``.
    A completion every reward function returned None for gets advantage 0 and is kept out
    of every group's statistics.

    Attributes:
        cast_teacher: the teacher module, or None when the teacher is the policy model
            itself: ``"current"``, and under PEFT ``"base"`` (adapters disabled) and
            ``"snapshot"`` / ``"ema"`` (the ``TEACHER_ADAPTER`` adapter active).
        cast_last_batch: the global inputs and output of the last CAST computation, a dict
            with ``rewards [N]``, ``group_ids [N]``, ``gaps [N, T]``, ``mask [N, T]``,
            ``advantages [N, T]`` and ``step`` (for inspection and tests).
    """

    def __init__(self, *args, **kwargs):
        training_args = kwargs.get("args", args[2] if len(args) > 2 else None)
        if not isinstance(training_args, CASTGRPOConfig):
            raise TypeError(
                f"CASTGRPOTrainer: args must be a CASTGRPOConfig, got {type(training_args).__name__}")
        super().__init__(*args, **kwargs)
        self._cast_config = self.args.cast_config()
        self._cast_rewards_per_func: Optional[torch.Tensor] = None
        self.cast_last_batch: dict[str, Any] = {}
        self._cast_teacher_adapter_off = False
        self._cast_teacher_adapter: Optional[str] = None
        self._cast_pending: Optional[dict[str, Any]] = None   # a deferred generation batch (on-policy)
        self.cast_teacher = self._cast_build_teacher()
        if self.args.cast_teacher_mode in ("snapshot", "ema"):
            self.add_callback(_TeacherUpdateCallback(self))

    # -- the teacher ------------------------------------------------------------------
    def _cast_build_teacher(self) -> Optional[torch.nn.Module]:
        mode = self.args.cast_teacher_mode
        policy = self.accelerator.unwrap_model(self.model)
        if mode == "current":
            return None
        if mode == "base" and self.ref_model is not None and not self.args.sync_ref_model:
            # TRL already holds (and has prepared) a frozen copy of the initial weights.
            return self.ref_model
        if mode == "base" and is_peft_model(policy):
            self._cast_teacher_adapter_off = True
            return None
        if is_peft_model(policy) and (self.is_deepspeed_enabled or self.is_fsdp_enabled):
            raise ValueError(
                f"cast_teacher_mode={mode!r} with a PEFT model under DeepSpeed/FSDP is not supported; "
                'use cast_teacher_mode="base" (the adapter-disabled model) or full fine-tuning.')
        if is_peft_model(policy):
            self._cast_teacher_adapter = self._cast_add_teacher_adapter(policy)
            return None
        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            # Sharded parameters cannot be deep-copied; build it like TRL builds ref_model.
            init_kwargs = dict(self.args.model_init_kwargs or {})
            init_kwargs["device_map"] = None
            init_kwargs.setdefault("trust_remote_code", self.args.trust_remote_code)
            init_kwargs.setdefault("dtype", policy.dtype)
            teacher = create_model_from_path(get_config_model_id(policy.config), **init_kwargs)
            add_fused_lm_head(teacher, temperature=self.temperature,
                              cast_lm_head_to_fp32=self.args.cast_lm_head_to_fp32)
            teacher.requires_grad_(False)
            if self.is_deepspeed_enabled:
                return prepare_deepspeed(teacher, self.accelerator)
            return prepare_fsdp(teacher, self.accelerator)
        teacher = copy.deepcopy(policy)
        # TRL patched the policy's forward with a fused LM head whose closure still points at
        # the policy's original forward; re-patch the copy so both paths use its own weights.
        patched = teacher.get_base_model() if is_peft_model(teacher) else teacher
        patched.__dict__.pop("forward", None)
        add_fused_lm_head(patched, temperature=self.temperature,
                          cast_lm_head_to_fp32=self.args.cast_lm_head_to_fp32)
        teacher.requires_grad_(False)
        teacher.eval()
        return teacher

    @staticmethod
    def _cast_add_teacher_adapter(policy) -> str:
        """A frozen copy of the trained adapter, named ``TEACHER_ADAPTER`` (the base is shared)."""
        from peft import get_peft_model_state_dict, set_peft_model_state_dict

        active = policy.active_adapter
        if TEACHER_ADAPTER in policy.peft_config:
            raise ValueError(f"cast_teacher_mode: the PEFT model already has an adapter named {TEACHER_ADAPTER!r}")
        policy.add_adapter(TEACHER_ADAPTER, copy.deepcopy(policy.peft_config[active]))
        set_peft_model_state_dict(policy, get_peft_model_state_dict(policy, adapter_name=active),
                                  adapter_name=TEACHER_ADAPTER)
        policy.set_adapter(active)   # training stays on the policy's adapter
        for name, param in policy.named_parameters():
            if f".{TEACHER_ADAPTER}." in name:
                param.requires_grad_(False)
        return TEACHER_ADAPTER

    def _cast_adapter_pairs(self, policy) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(teacher adapter parameter, policy adapter parameter) pairs, matched by name."""
        active = policy.active_adapter
        named = dict(policy.named_parameters())
        tag = f".{self._cast_teacher_adapter}."
        return [(param, named[name.replace(tag, f".{active}.")]) for name, param in named.items() if tag in name]

    @torch.no_grad()
    def _cast_update_teacher(self, step: int) -> None:
        if self.cast_teacher is None and self._cast_teacher_adapter is None:
            return
        alpha = lagged_update_weight(self.args.cast_teacher_mode, step, self.args.cast_teacher_refresh_steps,
                                     float(self.args.cast_teacher_ema_decay))
        if alpha is None:
            return
        policy = self.accelerator.unwrap_model(self.model)
        if self._cast_teacher_adapter is not None:
            for t_param, p_param in self._cast_adapter_pairs(policy):
                t_param.data.lerp_(p_param.data.to(t_param.dtype), alpha)
            return
        deepspeed_plugin = self.accelerator.state.deepspeed_plugin
        if deepspeed_plugin is not None and deepspeed_plugin.zero_stage == 3:
            SyncRefModelCallback.sync_target_model(policy, self.cast_teacher, alpha)
            return
        # Only trainable parameters move (frozen ones, e.g. a LoRA base, are equal already).
        for t_param, p_param in zip(self.cast_teacher.parameters(), policy.parameters(), strict=True):
            if p_param.requires_grad:
                t_param.data.lerp_(p_param.data.to(t_param.dtype), alpha)

    def _cast_teacher_context(self):
        policy = self.accelerator.unwrap_model(self.model)
        if self._cast_teacher_adapter_off:
            return use_adapter(policy, adapter_name="ref" if "ref" in policy.peft_config else None)
        if self._cast_teacher_adapter is not None:
            return self._cast_teacher_adapter_scope(policy)
        return nullcontext()

    @contextmanager
    def _cast_teacher_adapter_scope(self, policy):
        try:
            with use_adapter(policy, adapter_name=self._cast_teacher_adapter):
                yield
        finally:
            # Switching adapters makes the active one trainable; the teacher stays frozen.
            for name, param in policy.named_parameters():
                if f".{self._cast_teacher_adapter}." in name:
                    param.requires_grad_(False)

    def _cast_teacher_prompt_ids(self, inputs: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded ids ``[B, P']`` and mask of the template-rendered teacher prompts."""
        template = self.args.cast_teacher_template
        names = set(template_fields(template)) - {"prompt"}
        rendered = []
        for i, example in enumerate(inputs):
            values = {}
            for name in names:
                if name not in example:
                    raise ValueError(
                        f"cast_teacher_template: field {{{name}}} is not a dataset column (row {i} has "
                        f"{sorted(example)})")
                values[name] = example[name]
            prompt = example["prompt"]
            if is_conversational({"prompt": prompt}):
                last_user = max((j for j, m in enumerate(prompt) if m.get("role") == "user"), default=None)
                if last_user is None or not isinstance(prompt[last_user].get("content"), str):
                    raise ValueError(
                        f"cast_teacher_template: row {i} has no user message with text content to template")
                content = template.format_map({**values, "prompt": prompt[last_user]["content"]})
                prompt = [*prompt[:last_user], {**prompt[last_user], "content": content}, *prompt[last_user + 1:]]
            elif isinstance(prompt, str):
                prompt = template.format_map({**values, "prompt": prompt})
            else:
                raise ValueError(f"cast_teacher_template: row {i} prompt is neither text nor chat messages")
            rendered.append(prompt)
        prompt_ids_list, images, _ = self._tokenize_prompts(rendered)
        if images is not None:
            raise ValueError("cast_teacher_template: prompts with images are not supported")
        device = self.accelerator.device
        ids = [torch.tensor(p) for p in prompt_ids_list]
        masks = [torch.ones_like(p, dtype=torch.long) for p in ids]
        ids = pad(ids, padding_value=self._tokenizer.pad_token_id, padding_side="left").to(device)
        masks = pad(masks, padding_value=0, padding_side="left").to(device)
        return ids, masks

    def _cast_logps(self, model, input_ids, attention_mask, logits_to_keep, forward_kwargs) -> torch.Tensor:
        batch_size = (self.args.per_device_train_batch_size if self.model.training
                      else self.args.per_device_eval_batch_size)
        with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            logps, _, _ = self._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size, **forward_kwargs)
        return logps

    def _cast_needs_teacher(self) -> bool:
        # The current weights in the student's own context: g ≡ 0, no forward needed.
        return not (self.args.cast_teacher_mode == "current" and self.args.cast_teacher_template is None)

    def _cast_teacher_logps(self, inputs: list[dict[str, Any]], output: dict[str, Any]) -> torch.Tensor:
        """log π_teacher of the sampled completion tokens, ``[B, T]`` float32 (no gradient)."""
        completion_ids, completion_mask = output["completion_ids"], output["completion_mask"]
        template = self.args.cast_teacher_template
        forward_kwargs = {k: output[k] for k in _FORWARD_KEYS if k in output}
        if template is not None:
            if forward_kwargs:
                raise ValueError("cast_teacher_template: multimodal inputs are not supported with a template")
            prompt_ids, prompt_mask = self._cast_teacher_prompt_ids(inputs)
        else:
            prompt_ids, prompt_mask = output["prompt_ids"], output["prompt_mask"]
        ids = torch.cat([prompt_ids, completion_ids], dim=1)
        mask = torch.cat([prompt_mask, completion_mask], dim=1)
        teacher = self.model if self.cast_teacher is None else self.cast_teacher
        with self._cast_teacher_context():
            logps = self._cast_logps(teacher, ids, mask, completion_ids.size(1), forward_kwargs)
        return logps.float()

    def _cast_record(self, mode: str, rewards: torch.Tensor, group_ids: torch.Tensor, gaps: torch.Tensor,
                     mask: torch.Tensor, step: int, advantages: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Gather this process's ``gaps``/``mask`` [B, T] (and ``advantages``), log; return Â of all N rows.

        Completions of one group can live on several processes: the group statistics need
        the gathered batch (padded to a common T). Without ``advantages`` they are computed
        here from the gathered inputs; with them (the deferred path) they are gathered.
        """
        acc = self.accelerator
        gaps_all = acc.gather(acc.pad_across_processes(gaps, dim=1, pad_index=0.0))
        mask_all = acc.gather(acc.pad_across_processes(mask, dim=1, pad_index=0)).bool()
        if advantages is None:
            advantages_all = cast_advantages(rewards, group_ids, gaps_all, mask_all, self._cast_config, step)
        else:
            advantages_all = acc.gather(acc.pad_across_processes(advantages, dim=1, pad_index=0.0))
        global_n = rewards.size(0)
        # TRL's completions table logged its sequence advantages; show CAST's per-row mean instead.
        logged = self._logs["advantages"]
        for _ in range(min(global_n, len(logged))):
            logged.pop()
        row_mean = (advantages_all * mask_all).sum(dim=1) / mask_all.sum(dim=1).clamp(min=1)
        logged.extend(row_mean.tolist())
        self.cast_last_batch = {
            "rewards": rewards, "group_ids": group_ids, "gaps": gaps_all, "mask": mask_all,
            "advantages": advantages_all, "step": step,
        }
        if self.args.cast_log_diagnostics:
            from cast_torch.diagnostics import cast_diagnostics

            diagnostics = cast_diagnostics(rewards, group_ids, gaps_all, mask_all, self._cast_config, step)
            for key, value in diagnostics.items():
                self._metrics[mode][f"cast/{key}"].append(float(value))
        return advantages_all

    # -- TRL hooks ---------------------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # TRL returns the per-function rewards gathered over all processes; keep them for CAST.
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._cast_rewards_per_func = rewards_per_func
        return rewards_per_func

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        num_generations = self.num_generations if mode == "train" else self.num_generations_eval
        local_n = output["completion_ids"].size(0)
        start = self.accelerator.process_index * local_n

        rewards_per_func = self._cast_rewards_per_func
        self._cast_rewards_per_func = None
        weights = self.reward_weights.to(rewards_per_func.device).unsqueeze(0)
        rewards = (rewards_per_func * weights).nansum(dim=1)
        unscorable = torch.isnan(rewards_per_func).all(dim=1)
        global_n = rewards.size(0)
        group_ids = torch.arange(global_n, device=rewards.device) // num_generations
        # An unscorable completion becomes a singleton group with an empty mask: advantage 0,
        # and it moves no other completion's group mean or std.
        n_bad = int(unscorable.sum())
        if n_bad:
            group_ids[unscorable] = -1 - torch.arange(n_bad, device=rewards.device)
            rewards = torch.where(unscorable, torch.zeros_like(rewards), rewards)

        mask = output["completion_mask"]
        if "tool_mask" in output:
            mask = mask * output["tool_mask"]
        mask = mask.bool() & ~unscorable[start:start + local_n].to(mask.device).unsqueeze(1)   # [B, T]
        step = int(self.state.global_step)
        old_logps = output.get("old_per_token_logps")

        if self._cast_needs_teacher() and old_logps is None:
            # On-policy: π_old is TRL's own loss forward (detached); finish in _compute_loss.
            base = base_advantages(rewards, group_ids, self._cast_config, step)                 # [N]
            output["cast_base"] = base[start:start + local_n].to(device=mask.device, dtype=torch.float32)
            output["cast_teacher_logps"] = self._cast_teacher_logps(inputs, output)             # [B, T]
            output["cast_mask"] = mask
            output["cast_row"] = torch.arange(local_n, device=mask.device)
            output["advantages"] = torch.full(mask.shape, float("nan"), device=mask.device)
            self._cast_pending = {
                "mode": mode, "rewards": rewards, "group_ids": group_ids, "step": step, "mask": mask,
                "seen": torch.zeros(local_n, dtype=torch.bool, device=mask.device),
                "gaps": torch.zeros(mask.shape, dtype=torch.float32, device=mask.device),
                "advantages": torch.zeros(mask.shape, dtype=torch.float32, device=mask.device),
            }
            return output

        if not self._cast_needs_teacher():
            gaps = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
        else:
            gaps = self._cast_teacher_logps(inputs, output) - old_logps.float()                 # [B, T]
        advantages_all = self._cast_record(mode, rewards, group_ids, gaps, mask, step)
        advantages = advantages_all[start:start + local_n, :mask.size(1)]
        output["advantages"] = advantages.to(device=mask.device, dtype=torch.float32)
        return output

    def _compute_loss(self, model, inputs):
        if "cast_base" not in inputs:
            return super()._compute_loss(model, inputs)
        # TRL's loss reads inputs["advantages"] right after its policy forward: supply them from
        # that forward's log-probs (π_old = detached π_θ on-policy) before the loss uses them.
        policy_logps = self._get_per_token_logps_and_entropies

        def with_cast_advantages(*args, **kwargs):
            self.__dict__.pop("_get_per_token_logps_and_entropies", None)   # only the policy's call
            logps, entropies, aux_loss = policy_logps(*args, **kwargs)
            inputs["advantages"] = self._cast_deferred_advantages(inputs, logps.detach())
            return logps, entropies, aux_loss

        self._get_per_token_logps_and_entropies = with_cast_advantages
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self.__dict__.pop("_get_per_token_logps_and_entropies", None)

    def _cast_deferred_advantages(self, inputs: dict[str, Any], old_logps: torch.Tensor) -> torch.Tensor:
        """Â [b, T] of one micro-batch from its base advantages, teacher and on-policy log-probs."""
        mask = inputs["cast_mask"]
        gaps = torch.where(mask, inputs["cast_teacher_logps"] - old_logps.float(), 0.0)           # [b, T]
        pending = self._cast_pending
        if pending is None:
            raise RuntimeError("CASTGRPOTrainer: a deferred batch reached the loss without its generation record; "
                               "a batch generated on-policy must be scored before the next generation")
        advantages = token_advantages(inputs["cast_base"], gaps, mask, self._cast_config, pending["step"])
        rows = inputs["cast_row"]
        pending["gaps"][rows] = gaps
        pending["advantages"][rows] = advantages.float()
        pending["seen"][rows] = True
        if bool(pending["seen"].all()):   # every micro-batch of the generation batch is scored
            self._cast_pending = None
            self._cast_record(pending["mode"], pending["rewards"], pending["group_ids"], pending["gaps"],
                              pending["mask"], pending["step"], pending["advantages"])
        return advantages.float()
