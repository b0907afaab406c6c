"""CAST's lagged self-teacher for verl: teacher weights swapped into the actor for one scoring pass.

verl's actor worker already scores every rollout with the policy (``old_log_probs``). The
snapshot / EMA teacher is scored by the *same* worker, with the *same* forward (micro-batching,
sequence packing, temperature, sharding), after swapping the teacher's weights into the policy:

    θ  = the policy's trainable tensors on this rank (the LoRA adapter, or every weight in full
         fine-tuning; under FSDP/Megatron the local shard this rank holds)
    θ_T = the teacher's copy of the same tensors, float32 (EMA updates of 0.5% do not survive bf16)

    swap in     θ ← θ_T          (θ kept aside)
    score       teacher_log_probs = verl's forward
    swap out    θ ← kept θ       (bit-exact)
    after each actor update:  θ_T ← (1 − w)·θ_T + w·θ,  w = lagged_update_weight(kind, updates, K, d)

Frozen tensors (a LoRA base model) are the same for teacher and policy, so only trainable
tensors are kept. Every operation is elementwise on local shards, so it is exact under any
sharding that partitions tensors elementwise (FSDP1 flat parameters, FSDP2 DTensors, Megatron
TP/PP shards). The schedule is our trainer's (:func:`cast_torch.train.teacher.lagged_update_weight`).

This module needs only torch; ``cast_torch.integrations.verl_worker`` plugs it into verl's workers.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, fields
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

import torch

from cast_core.settings import check_teacher_schedule
from cast_torch.train.teacher import blend_, lagged_update_weight

__all__ = [
    "TEACHER_KINDS",
    "LAGGED_KINDS",
    "TeacherSettings",
    "WeightSwapTeacher",
    "trainable_parameters",
    "reshard_fsdp",
    "settings_or_none",
    "TEACHER_STATE_FILE",
]

TEACHER_KINDS = ("base", "snapshot", "ema", "current", "external")
LAGGED_KINDS = ("snapshot", "ema")
TEACHER_STATE_FILE = "cast_teacher_rank{rank}.safetensors"
_FORMAT = "cast-verl-teacher-v1"


@dataclass(frozen=True)
class TeacherSettings:
    """Which teacher CAST's gap uses in verl (the ``teacher*`` keys of ``algorithm.cast``).

    Attributes:
        kind: ``"snapshot"`` (base weights, then a copy of the policy after every K-th actor update),
            ``"ema"`` (θ_T ← d·θ_T + (1 − d)·θ after every update), ``"base"`` (verl's reference
            log-probs ``ref_log_prob``: the initial weights, or the adapter-disabled model with LoRA),
            ``"current"`` (the policy itself: g ≡ 0, an ablation), or ``"external"`` (your own
            code writes ``teacher_log_probs`` into the batch).
        refresh_steps: K of ``"snapshot"`` (>= 1).
        ema_decay: d of ``"ema"`` (0 <= d <= 1).
        offload: keep the teacher copy (and the policy values set aside during scoring) in CPU
            memory instead of next to the weights: saves accelerator memory in full fine-tuning,
            costs two host-device copies of the trainable shard per step.
    """

    kind: str = "snapshot"
    refresh_steps: int = 50
    ema_decay: float = 0.995
    offload: bool = False

    def __post_init__(self) -> None:
        if self.kind not in TEACHER_KINDS:
            raise ValueError(f"algorithm.cast.teacher: must be one of {TEACHER_KINDS}, got {self.kind!r}")
        check_teacher_schedule(self.refresh_steps, self.ema_decay,
                               names=("algorithm.cast.teacher_refresh_steps", "algorithm.cast.teacher_ema_decay"))
        if not isinstance(self.offload, bool):
            raise TypeError(f"algorithm.cast.teacher_offload: must be a bool, got {self.offload!r}")

    @property
    def lagged(self) -> bool:
        """True for the teachers CAST's worker computes (snapshot, EMA)."""
        return self.kind in LAGGED_KINDS

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TeacherSettings":
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"TeacherSettings: unknown field(s) {unknown}")
        return cls(**dict(values))


def trainable_parameters(modules: torch.nn.Module | Iterable[torch.nn.Module]) -> list[tuple[str, torch.nn.Parameter]]:
    """``(name, parameter)`` of every trainable floating-point parameter, in module order.

    ``modules`` is one module or a list of model chunks (Megatron's virtual pipeline stages);
    chunk ``i``'s names are prefixed ``"{i}."`` when there is more than one.
    """
    chunks = _chunks(modules)
    out = []
    for i, chunk in enumerate(chunks):
        prefix = f"{i}." if len(chunks) > 1 else ""
        for name, p in chunk.named_parameters():
            if p.requires_grad and p.is_floating_point():
                out.append((prefix + name, p))
    return out


def _chunks(modules: torch.nn.Module | Iterable[torch.nn.Module]) -> list[torch.nn.Module]:
    return [modules] if isinstance(modules, torch.nn.Module) else list(modules)


def reshard_fsdp(modules: torch.nn.Module | Iterable[torch.nn.Module]) -> None:
    """Put FSDP-wrapped ``modules`` back into their sharded state.

    FSDP keeps a gathered copy of some parameters after a forward pass (FSDP2's root module;
    FSDP1's root, which verl reshards only when ``fsdp_size > 1``). A forward reads that copy
    rather than the shards, so the shards the teacher swaps are only what the next forward sees
    once the copy is freed: before swapping in, and again before swapping out. No-op for
    modules without FSDP.
    """
    try:
        from torch.distributed.fsdp import FSDPModule  # FSDP2
    except ImportError:  # pragma: no cover - old torch
        FSDPModule = ()
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP1

    for chunk in _chunks(modules):
        for m in chunk.modules():
            if isinstance(m, FSDPModule):
                m.reshard()
        for m in FSDP1.fsdp_modules(chunk, root_only=True):
            handle = getattr(m, "_handle", None)
            if handle is not None and handle.uses_sharded_strategy:
                handle.reshard(True)


def _local(p: torch.Tensor) -> torch.Tensor:
    """The storage this rank holds for ``p``: a DTensor's local shard, else the tensor's data."""
    to_local = getattr(p, "to_local", None)
    if to_local is not None:  # torch.distributed.tensor.DTensor (FSDP2)
        return to_local()
    return p.data


def _teacher_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


class WeightSwapTeacher:
    """The lagged teacher as a float32 copy of a policy's trainable tensors (see the module docstring).

    Args:
        named_params: ``(name, parameter)`` pairs, e.g. :func:`trainable_parameters` of the actor.
            Their current values become the teacher (the base weights, before any update).
        settings: a lagged :class:`TeacherSettings` (``"snapshot"`` or ``"ema"``).
    """

    def __init__(self, named_params: Sequence[tuple[str, torch.Tensor]], settings: TeacherSettings) -> None:
        if not isinstance(settings, TeacherSettings) or not settings.lagged:
            raise ValueError(f"WeightSwapTeacher: needs a snapshot or ema TeacherSettings, got {settings!r}")
        if not named_params:
            raise ValueError("WeightSwapTeacher: the policy has no trainable floating-point parameters "
                             "(nothing to lag); is the actor frozen?")
        self.settings = settings
        self.names = [n for n, _ in named_params]
        self.params = [p for _, p in named_params]
        self.updates = 0      # actor updates seen (the schedule's step)
        self.refreshes = 0    # snapshot copies taken
        with torch.no_grad():
            self.tensors = [self._store(_local(p)) for p in self.params]

    def _store(self, local: torch.Tensor) -> torch.Tensor:
        device = torch.device("cpu") if self.settings.offload else local.device
        t = local.detach().to(device=device, dtype=_teacher_dtype(local.dtype), copy=True)
        return t.pin_memory() if device.type == "cpu" and torch.cuda.is_available() else t

    def _locals(self) -> list[torch.Tensor]:
        locals_ = [_local(p) for p in self.params]
        for name, local, t in zip(self.names, locals_, self.tensors):
            if local.shape != t.shape:
                raise RuntimeError(f"CAST teacher: parameter {name} changed shape from {tuple(t.shape)} to "
                                   f"{tuple(local.shape)} (was the model re-sharded after the teacher was built?)")
        return locals_

    @contextlib.contextmanager
    def swapped(self, modules: Optional[torch.nn.Module | Iterable[torch.nn.Module]] = None) -> Iterator[None]:
        """Inside the block the policy's trainable tensors hold the teacher's values; on exit
        (also on an exception) they hold exactly what they held before.

        ``modules``: the FSDP-wrapped model the parameters belong to; it is resharded
        (:func:`reshard_fsdp`) before the swap in and before the swap out, so forward passes
        inside the block see the teacher and those after it the policy.
        """
        if modules is not None:
            reshard_fsdp(modules)
        locals_ = self._locals()
        kept: list[torch.Tensor] = []
        try:
            with torch.no_grad():
                for local, t in zip(locals_, self.tensors):
                    kept.append(local.detach().to(device=t.device, copy=True))
                    local.copy_(t)
            yield
        finally:
            if modules is not None:
                reshard_fsdp(modules)
            with torch.no_grad():
                for local, saved in zip(locals_, kept):
                    local.copy_(saved)

    def after_update(self) -> bool:
        """Apply the schedule after one actor update. Returns True when the teacher changed."""
        self.updates += 1
        s = self.settings
        weight = lagged_update_weight(s.kind, self.updates, s.refresh_steps, s.ema_decay)
        if weight is None:
            return False
        with torch.no_grad():
            blend_([(t, local.to(t.device)) for t, local in zip(self.tensors, self._locals())], weight)
        if s.kind == "snapshot":
            self.refreshes += 1
        return True

    # -- checkpoints (pickle-free: safetensors plus a JSON header) ---------------------------
    def _metadata(self) -> dict[str, Any]:
        return {"format": _FORMAT, "settings": self.settings.to_dict(), "updates": self.updates,
                "refreshes": self.refreshes, "names": self.names,
                "shapes": [list(t.shape) for t in self.tensors]}

    def save(self, path: str | os.PathLike) -> None:
        """Write the teacher (this rank's shard) to ``path``, atomically."""
        from safetensors.torch import save_file

        tensors = {f"t{i}": t.detach().cpu().contiguous() for i, t in enumerate(self.tensors)}
        tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
        save_file(tensors, tmp, metadata={"cast": json.dumps(self._metadata())})
        os.replace(tmp, path)

    def load(self, path: str | os.PathLike) -> None:
        """Restore a teacher written by :meth:`save` (same model, same sharding, same kind)."""
        from safetensors import safe_open

        with safe_open(os.fspath(path), framework="pt") as f:
            header = (f.metadata() or {}).get("cast")
            if header is None:
                raise ValueError(f"{path}: not a CAST teacher checkpoint (no 'cast' metadata)")
            meta = json.loads(header)
            if meta.get("format") != _FORMAT:
                raise ValueError(f"{path}: unknown CAST teacher format {meta.get('format')!r}")
            saved_kind = meta["settings"]["kind"]
            if saved_kind != self.settings.kind:
                raise ValueError(f"{path}: the checkpoint's teacher is {saved_kind!r}, this run's is "
                                 f"{self.settings.kind!r} (algorithm.cast.teacher)")
            if meta["names"] != self.names or meta["shapes"] != [list(t.shape) for t in self.tensors]:
                raise ValueError(f"{path}: teacher tensors do not match this model's trainable parameters "
                                 "(a different model, LoRA setting or sharding / world size?)")
            loaded = [f.get_tensor(f"t{i}") for i in range(len(self.tensors))]
        with torch.no_grad():
            for t, saved in zip(self.tensors, loaded):
                t.copy_(saved)
        self.updates, self.refreshes = int(meta["updates"]), int(meta["refreshes"])

    @staticmethod
    def file_for(directory: str | os.PathLike, rank: int) -> str:
        return os.path.join(os.fspath(directory), TEACHER_STATE_FILE.format(rank=rank))


def settings_or_none(values: Optional[Mapping[str, Any]]) -> Optional[TeacherSettings]:
    """:class:`TeacherSettings` from a mapping (e.g. a DictConfig), or None for None."""
    if values is None:
        return None
    return TeacherSettings.from_dict({k: values[k] for k in values.keys()})
