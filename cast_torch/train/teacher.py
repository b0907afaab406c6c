"""The self-teacher: lagged weights of the policy, and the context it reads.

CAST's gap is ``g = log π_T(y_t | ctx_T) − log π_old(y_t | x, y_<t)``: the same sampled
tokens scored by the teacher weights and by the rollout policy, without gradient.
The teacher's weights are (``TrainConfig.teacher``):

- ``"snapshot"``: the base model until the first refresh, then a copy of the policy
  taken after every K-th step (``teacher_refresh_steps``).
- ``"ema"``: starts at the base; after each step ``θ_T ← d·θ_T + (1 − d)·θ``.
- ``"base"``: the frozen starting model.
- ``"current"``: the policy itself; with the identical context ``g ≡ 0`` exactly
  (the rollout log-probs are reused), an ablation showing that the lag makes the signal.

Under LoRA the teacher is never a second model. The policy is ``W0 + (α/r)·B·A`` with a
frozen base ``W0``; the teacher is a second, frozen peft adapter ``"teacher"`` in the same
modules (a few MB): scoring with it activates that adapter, runs the forward and switches
back to ``"default"`` (the trained one); the base teacher and the KL reference are the same
model with its adapters disabled (``peft``'s ``disable_adapter``), so ``W0`` exists once.
Before the first refresh the ``"teacher"`` adapter equals the freshly initialised policy
adapter (``B = 0``), i.e. the base. The EMA averages the adapter factors, ``A_T ← d·A_T +
(1 − d)·A`` and ``B_T`` likewise, so the teacher stays a rank-r adapter; this is not the EMA
of the merged update ``B·A`` (which is not rank r). Full fine-tuning keeps frozen copies
(the snapshot/EMA, and the base only when the KL needs it).
Teacher scoring runs in eval mode (no dropout) and restores the policy's mode after.

The context is ``"identical"`` (the student prompt) or a template with a ``{prompt}``
slot; ``{answer}`` (privileged) is refused unless explicitly allowed (see
:func:`cast_torch.train.config.check_teacher_context`).
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, Iterator, Optional

import torch

from .config import check_teacher_context

__all__ = ["Teacher", "teacher_prompt", "is_peft_model", "lagged_update_weight", "blend_"]

TEACHER_ADAPTER = "teacher"


def is_peft_model(model) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "disable_adapter")


def lagged_update_weight(kind: str, step: int, refresh_steps: int, ema_decay: float) -> Optional[float]:
    """The lagged teacher's schedule: after RL step ``step`` (1-based) the teacher becomes
    ``θ_T ← (1 − w)·θ_T + w·θ`` with the returned ``w``, or stays as it is (None).

    ``"snapshot"``: w = 1 (a copy of the policy) when ``step % refresh_steps == 0``;
    ``"ema"``: w = 1 − ``ema_decay`` after every step; ``"base"`` / ``"current"``: never.
    Our trainer and the verl teacher worker both follow this one rule.
    """
    if kind == "snapshot":
        return 1.0 if step % refresh_steps == 0 else None
    if kind == "ema":
        return 1.0 - ema_decay
    return None


@torch.no_grad()
def blend_(pairs, weight: float) -> None:
    """``t ← (1 − weight)·t + weight·p`` in place for each ``(t, p)``; weight 1 copies exactly."""
    for t, p in pairs:
        if weight == 1.0:
            t.copy_(p)
        else:
            t.lerp_(p.to(t.dtype), weight)


def teacher_prompt(template: str, prompt: Any, answer: str, *, allow_privileged: bool) -> Any:
    """The teacher's prompt: ``prompt`` itself for ``"identical"``, else the template filled.

    Chat-message prompts get the template applied to the last user message's content.
    """
    check_teacher_context(template, allow_privileged)
    if template == "identical":
        return prompt
    if isinstance(prompt, list):
        msgs = [dict(m) for m in prompt]
        for m in reversed(msgs):
            if m.get("role") == "user":
                m["content"] = template.format(prompt=m["content"], answer=answer)
                return msgs
        raise ValueError("prompt: chat messages without a user message cannot take a teacher template")
    return template.format(prompt=prompt, answer=answer)


class Teacher:
    """Holds the teacher weights and scores completions with them.

    Args:
        policy: the model being trained (a peft model when LoRA is on).
        kind: "snapshot" | "ema" | "base" | "current".
        refresh_steps: K for "snapshot".   ema_decay: d for "ema".
        keep_base: also keep a frozen base copy (the KL reference) even when the
            teacher kind does not need one.
    """

    def __init__(self, policy, kind: str, *, refresh_steps: int = 50, ema_decay: float = 0.995,
                 keep_base: bool = False) -> None:
        self.kind, self.refresh_steps, self.ema_decay = kind, refresh_steps, ema_decay
        self.lora = is_peft_model(policy)
        self.copy: Optional[torch.nn.Module] = None   # snapshot/EMA weights (full fine-tuning)
        self.base: Optional[torch.nn.Module] = None   # frozen base (full fine-tuning)
        self.refreshes = 0
        if self.lora:
            if kind in ("snapshot", "ema"):
                from peft import get_peft_model_state_dict, set_peft_model_state_dict
                teacher_cfg = copy.deepcopy(policy.peft_config["default"])
                teacher_cfg.inference_mode = True   # frozen: never handed to the optimizer
                policy.add_adapter(TEACHER_ADAPTER, teacher_cfg)
                set_peft_model_state_dict(policy, get_peft_model_state_dict(policy, adapter_name="default"),
                                          adapter_name=TEACHER_ADAPTER)
                policy.set_adapter("default")   # add_adapter may switch; training stays on "default"
                self._freeze_teacher_adapter(policy)
            return
        needs_base = kind == "base" or keep_base
        if kind in ("snapshot", "ema"):
            self.copy = _frozen_copy(policy)
        if needs_base:
            # Before any step the snapshot/EMA copy *is* the base; keep a separate one only if both are needed.
            self.base = _frozen_copy(policy)

    # -- which weights ----------------------------------------------------------------------
    @contextlib.contextmanager
    def weights(self, policy) -> Iterator[torch.nn.Module]:
        """Context yielding a module that computes the teacher's forward pass (eval mode)."""
        if self.kind == "current":
            with _eval_mode(policy):
                yield policy
        elif self.lora and self.kind == "base":
            with _eval_mode(policy), policy.disable_adapter():
                yield policy
        elif self.lora:
            # Swap the teacher adapter in, score, swap back. set_adapter marks the active
            # adapter trainable and the others frozen: restore exactly that on the way out.
            with _eval_mode(policy):
                policy.set_adapter(TEACHER_ADAPTER)
                try:
                    yield policy
                finally:
                    policy.set_adapter("default")
                    self._freeze_teacher_adapter(policy)
        else:
            yield self.copy if self.copy is not None else self.base

    @contextlib.contextmanager
    def reference(self, policy) -> Iterator[torch.nn.Module]:
        """Context yielding the frozen base model (the KL reference; eval mode)."""
        if self.lora:
            with _eval_mode(policy), policy.disable_adapter():
                yield policy
        else:
            if self.base is None:
                raise RuntimeError("Teacher: built without keep_base, so there is no reference model")
            yield self.base

    # -- updates --------------------------------------------------------------------------
    @torch.no_grad()
    def after_step(self, policy, step: int) -> bool:
        """Update after RL step ``step`` (1-based). Returns True when the snapshot was refreshed."""
        weight = lagged_update_weight(self.kind, step, self.refresh_steps, self.ema_decay)
        if weight is None:
            return False
        blend_(self._pairs(policy), weight)
        if self.kind == "snapshot":
            self.refreshes += 1
            return True
        return False

    def _pairs(self, policy) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.lora:
            named = dict(policy.named_parameters())
            pairs = []
            for name, t in named.items():
                if f".{TEACHER_ADAPTER}." in name:
                    pairs.append((t, named[name.replace(f".{TEACHER_ADAPTER}.", ".default.")]))
            return pairs
        pairs = list(zip(self.copy.parameters(), policy.parameters()))
        pairs += [(tb, pb) for tb, pb in zip(self.copy.buffers(), policy.buffers()) if tb.is_floating_point()]
        return pairs

    @staticmethod
    def _freeze_teacher_adapter(policy) -> None:
        for name, p in policy.named_parameters():
            if f".{TEACHER_ADAPTER}." in name:
                p.requires_grad_(False)

    # -- checkpointing --------------------------------------------------------------------
    def state_dict(self, policy) -> dict[str, Any]:
        """Teacher weights that cannot be rebuilt from the base (snapshot/EMA), plus counters."""
        state: dict[str, Any] = {"kind": self.kind, "refreshes": self.refreshes}
        if self.kind in ("snapshot", "ema"):
            state["tensors"] = [t.detach().clone().cpu() for t, _ in self._pairs(policy)]
        return state

    def load_state_dict(self, policy, state: dict[str, Any]) -> None:
        if state["kind"] != self.kind:
            raise ValueError(f"Teacher: checkpoint teacher is {state['kind']!r}, this run uses {self.kind!r}")
        self.refreshes = int(state["refreshes"])
        if "tensors" in state:
            pairs = self._pairs(policy)
            if len(pairs) != len(state["tensors"]):
                raise ValueError("Teacher: checkpoint teacher weights do not match this model")
            with torch.no_grad():
                for (t, _), saved in zip(pairs, state["tensors"]):
                    t.copy_(saved.to(t.device))


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    twin = copy.deepcopy(model)
    twin.eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin
