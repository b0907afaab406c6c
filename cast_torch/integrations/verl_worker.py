"""CAST's lagged teacher as verl worker code: a mixin for verl's actor worker.

:class:`CASTTeacherWorkerMixin` adds to verl's ``ActorRolloutRefWorker`` (or any subclass of it):

- ``init_model``: after verl built the actor, a :class:`~cast_torch.integrations.verl_teacher.WeightSwapTeacher`
  of the actor's trainable tensors (LoRA adapter or all weights, this rank's shard), from the
  settings ``actor_rollout_ref.cast_teacher`` that ``cast_torch.integrations.verl.install()`` writes;
- ``cast_compute_teacher_log_prob(data)``: verl's own actor forward (``TrainingWorker.infer_batch``,
  the one ``compute_log_prob`` uses) with the teacher's weights swapped in, then swapped back;
  dispatched like ``compute_log_prob`` (the actor mesh; TransferQueue-aware on the v1 trainer);
- ``update_actor``: verl's update, then the teacher's schedule (snapshot every K updates / EMA);
- ``save_checkpoint`` / ``load_checkpoint``: verl's, plus this rank's teacher next to the actor's
  files (``…/global_step_N/actor/cast_teacher_rank{R}.safetensors``).

``install()`` swaps the worker class automatically (:func:`cast_worker_class`); a custom worker
class mixes it in: ``class MyWorker(CASTTeacherWorkerMixin, MyActorWorker)``.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Optional

from verl.single_controller.base.decorator import Dispatch, make_nd_compute_dataproto_dispatch_fn, register
from verl.workers import engine_workers
from verl.workers.engine_workers import ActorRolloutRefWorker

from cast_torch.integrations.verl_teacher import (
    WeightSwapTeacher,
    reshard_fsdp,
    settings_or_none,
    trainable_parameters,
)

__all__ = ["CASTTeacherWorkerMixin", "CASTActorRolloutRefWorker", "cast_worker_class"]

WORKER_CONFIG_KEY = "cast_teacher"  # = cast_torch.integrations.verl.WORKER_CONFIG_KEY (no import cycle here)

# The teacher's forward must not record MoE routing for replay (verl's ref pass does the same).
_no_routing_replay = getattr(engine_workers, "_with_routing_replay_flag", None)
_no_routing_replay = _no_routing_replay(enabled=False) if _no_routing_replay else (lambda f: f)


class CASTTeacherWorkerMixin:
    """Lagged CAST teacher for a verl actor worker (module docstring). Mix in first."""

    _cast_teacher: Optional[WeightSwapTeacher] = None

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def init_model(self):
        super().init_model()
        settings = settings_or_none(self.config.get(WORKER_CONFIG_KEY, None))
        if settings is not None and settings.lagged and getattr(self, "actor", None) is not None:
            module = self.actor.engine.module
            reshard_fsdp(module)  # the teacher holds this rank's shards, not a gathered copy
            self._cast_teacher = WeightSwapTeacher(trainable_parameters(module), settings)

    def _cast_require_teacher(self) -> WeightSwapTeacher:
        if self._cast_teacher is None:
            raise RuntimeError(
                f"CAST teacher: this worker (role {getattr(self, 'role', '?')!r}) holds no lagged teacher: it needs "
                f"the actor role and actor_rollout_ref.{WORKER_CONFIG_KEY} with teacher snapshot or ema, which "
                "cast_torch.integrations.verl.install() writes before the workers start")
        return self._cast_teacher

    @register(dispatch_mode=make_nd_compute_dataproto_dispatch_fn(mesh_name="actor"))
    @_no_routing_replay
    def cast_compute_teacher_log_prob(self, data):
        """verl's actor log-prob pass on ``data`` with the teacher's weights; ``log_probs`` as in ``compute_log_prob``."""
        teacher = self._cast_require_teacher()
        with teacher.swapped(self.actor.engine.module):
            output = self.actor.infer_batch(data)
        return output.cpu() if output is not None else None

    @register(dispatch_mode=make_nd_compute_dataproto_dispatch_fn(mesh_name="actor"))
    def update_actor(self, data):
        output = super().update_actor(data)
        if self._cast_teacher is not None:
            self._cast_teacher.after_update()
        return output

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def save_checkpoint(self, local_path, hdfs_path=None, global_step=0, max_ckpt_to_keep=None):
        out = super().save_checkpoint(local_path, hdfs_path, global_step, max_ckpt_to_keep)
        if self._cast_teacher is not None:
            os.makedirs(local_path, exist_ok=True)
            path = WeightSwapTeacher.file_for(local_path, self.rank)
            self._cast_teacher.save(path)
            if hdfs_path is not None:
                from verl.utils import hdfs_io

                hdfs_io.makedirs(hdfs_path, exist_ok=True)
                hdfs_io.copy(src=path, dst=os.path.join(hdfs_path, os.path.basename(path)))
        return out

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def load_checkpoint(self, local_path, hdfs_path=None, del_local_after_load=False):
        if self._cast_teacher is not None:  # before verl's load, which may delete the local copy
            path = WeightSwapTeacher.file_for(local_path, self.rank)
            if not os.path.exists(path):
                raise FileNotFoundError(
                    f"CAST teacher: resuming from {local_path}, but {os.path.basename(path)} is not there: the "
                    "checkpoint was saved without a lagged CAST teacher (or by a different number of actor ranks). "
                    "Resume with the settings it was saved with, or start fresh (trainer.resume_mode=disable)")
            self._cast_teacher.load(path)
        return super().load_checkpoint(local_path, hdfs_path, del_local_after_load)


class CASTActorRolloutRefWorker(CASTTeacherWorkerMixin, ActorRolloutRefWorker):
    """verl's ``ActorRolloutRefWorker`` with CAST's lagged teacher."""


# verl worker classes CAST knows, by the name of their CAST version in this module. The versions
# are built on first use (the separation module is heavy), and looked up by name when Ray
# unpickles them in a worker process (PEP 562 module __getattr__).
_KNOWN_BASES = {
    "CASTActorRolloutRefWorker": "verl.workers.engine_workers:ActorRolloutRefWorker",
    "CASTDetachActorWorker": "verl.experimental.separation.engine_workers:DetachActorWorker",
}


def _resolve(path: str) -> Any:
    module, attr = path.split(":")
    return getattr(importlib.import_module(module), attr)


def __getattr__(name: str) -> Any:
    if name in _KNOWN_BASES:
        base = _resolve(_KNOWN_BASES[name])
        cls = type(name, (CASTTeacherWorkerMixin, base), {
            "__module__": __name__, "__qualname__": name, "__doc__": f"verl's {base.__name__} with CAST's lagged teacher."})
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def cast_worker_class(base: type) -> type:
    """The CAST version of verl actor worker class ``base`` (``base`` itself if it already mixes CAST in).

    Raises:
        TypeError: ``base`` is a worker class CAST does not know; mix :class:`CASTTeacherWorkerMixin` in.
    """
    if isinstance(base, type) and issubclass(base, CASTTeacherWorkerMixin):
        return base
    for name, path in _KNOWN_BASES.items():
        try:
            known = _resolve(path)
        except ImportError:
            continue
        if base is known:
            return globals()[name] if name in globals() else __getattr__(name)
    raise TypeError(
        f"CAST teacher: verl's actor worker class here is {getattr(base, '__qualname__', base)!r}, which CAST "
        "does not know; define class MyWorker(CASTTeacherWorkerMixin, YourWorker) "
        "(from cast_torch.integrations.verl_worker) and use it, or use algorithm.cast.teacher=base")
