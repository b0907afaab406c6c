"""Resume means the same run: which settings may change, and a Trainer's checkpoint state.

- :data:`RESUME_MUTABLE` — settings a resume may change freely (how long, how often to
  evaluate / save / log). Any other change is refused, with one message naming each field and
  its old and new value; ``allow_change=True`` (``--allow-config-change``) accepts it and
  records it in ``config.json`` (``changed_on_resume``).
- :data:`RESUME_FIXED` — settings that cannot change even then: the checkpoint's weights,
  teacher and data position belong to them.
- :func:`capture_state` / :func:`restore_state` — everything a Trainer needs to continue
  bit-identically: optimizer, scheduler, teacher, RNG states, data order position, counters.
  The optimizer's hyper-parameters are always re-derived from the (possibly changed) config,
  so the run trains with the settings ``config.json`` records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoint import check_checkpoint_files, latest_checkpoint, load_model_weights, load_trainer_state
from .checkpoint import read_checkpoint_config
from .checkpoint import rng_state, set_rng_state
from .config import GAP_METHODS, TrainConfig
from .metrics import read_metrics
from .rundir import RunDir

__all__ = ["RESUME_MUTABLE", "RESUME_FIXED", "config_changes", "check_resume_config", "ResumePoint",
           "prepare_resume", "capture_state", "restore_state"]

RESUME_MUTABLE = (
    "max_steps", "eval_every", "eval_pass_k", "save_every", "save_final", "keep_checkpoints", "progress",
    "tensorboard", "wandb", "wandb_project", "max_consecutive_skips",
)
RESUME_FIXED = (
    "model", "lora", "lora_r", "lora_target_modules", "tiny_arch", "tiny_hidden_size", "tiny_layers", "tiny_heads",
    "data", "eval_data", "num_problems", "max_operand", "num_terms", "eval_size", "prompt_column", "answer_column",
    "seed",
)


def _flatten(config: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in config.items() if k != "cast"}
    flat.update({f"cast.{k}": v for k, v in (config.get("cast") or {}).items()})
    return flat


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(field, old, new)`` for every setting that differs (``cast.X`` for the estimator's).

    Fields the old config does not record (added in a later release) are not compared, nor is
    ``out``: a run folder that was moved or copied holds the same run.
    """
    a, b = _flatten(old), _flatten(new)
    return [(k, a[k], b[k]) for k in b if k in a and k != "out" and a[k] != b[k]]


def _teacher_of(config: dict[str, Any]) -> str:
    return config.get("teacher") if config.get("method") in GAP_METHODS else "none (the method uses no teacher)"


def _listing(changes: list[tuple[str, Any, Any]]) -> str:
    return "; ".join(f"{k} {o!r} -> {n!r}" for k, o, n in changes)


def check_resume_config(old: dict[str, Any], new: dict[str, Any], *, allow_change: bool = False,
                        where: str = "the checkpoint") -> list[tuple[str, Any, Any]]:
    """The changes from ``old`` (what ran) to ``new``; a ``ValueError`` when one is not allowed."""
    changes = config_changes(old, new)
    fixed = [c for c in changes if c[0] in RESUME_FIXED]
    if "method" in old and "teacher" in old and _teacher_of(old) != _teacher_of(new):
        fixed.append(("self-teacher", _teacher_of(old), _teacher_of(new)))
    if fixed:
        raise ValueError(f"resume: {_listing(fixed)}: cannot change when resuming ({where}'s weights, teacher "
                         "and data position depend on them); start a new run (another --out, or --overwrite)")
    refused = [c for c in changes if c[0] not in RESUME_MUTABLE]
    if refused and not allow_change:
        raise ValueError(f"resume: settings differ from {where}: {_listing(refused)}. Only "
                         f"{', '.join(RESUME_MUTABLE)} may change when resuming; start a new run (another --out, "
                         "or --overwrite), or pass --allow-config-change to change them anyway (recorded in "
                         "config.json)")
    return changes


@dataclass(frozen=True)
class ResumePoint:
    """A checked checkpoint to resume from: its directory, step and the setting changes."""

    path: Path
    step: int
    changes: tuple[tuple[str, Any, Any], ...]


def prepare_resume(run_dir: RunDir, config: TrainConfig, *, allow_change: bool = False) -> ResumePoint:
    """Find ``latest`` in ``run_dir`` and check it, the metrics and ``config`` against the run's.

    Reads JSON and file headers only, so every problem shows before the model loads.
    """
    path = latest_checkpoint(run_dir.ckpt_dir)
    if path is None:
        raise ValueError(f"resume: no checkpoint in {str(run_dir.ckpt_dir)!r} (the run stopped before its first "
                         "save); start it again with --overwrite")
    old = read_checkpoint_config(path)
    check_checkpoint_files(path)
    read_metrics(run_dir.path, drop_torn_tail=True)
    changes = check_resume_config(old, config.to_dict(), allow_change=allow_change,
                                  where=f"checkpoint {path.name}")
    return ResumePoint(path=path, step=int(path.name[5:]), changes=tuple(changes))


def capture_state(trainer) -> dict[str, Any]:
    """The trainer state a checkpoint stores (a tree for :func:`checkpoint.pack_state`)."""
    return {
        "step": trainer.step_count,
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "teacher": trainer.teacher.state_dict(trainer.model),
        "rng": rng_state(),
        "shuffle_gen": trainer.shuffle_gen.get_state(),
        "sampler": trainer.sampler.state_dict(),
        "consecutive_skips": trainer.consecutive_skips,
        "config": trainer.config.to_dict(),
    }


def restore_state(trainer, point: ResumePoint) -> None:
    """Load checkpoint ``point`` into ``trainer`` (weights, optimizer, teacher, RNG, counters)."""
    state = load_trainer_state(point.path)
    c = trainer.config
    load_model_weights(trainer.model, point.path / "model", lora=c.lora)
    try:
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.scheduler.load_state_dict(state["scheduler"])
        trainer.teacher.load_state_dict(trainer.model, state["teacher"])
        trainer.sampler.load_state_dict(state["sampler"])
        trainer.shuffle_gen.set_state(state["shuffle_gen"])
        set_rng_state(state["rng"])
        step, skips = int(state["step"]), int(state["consecutive_skips"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        raise ValueError(f"resume: checkpoint {str(point.path)!r} does not fit this run ({type(e).__name__}: "
                         f"{str(e)[:300]}); start a new run") from e
    # The optimizer's hyper-parameters come from the config (LambdaLR's own formula, so an
    # unchanged config gives the very same floats and a changed one takes effect now).
    sched = trainer.scheduler
    sched.base_lrs = [c.lr] * len(trainer.optimizer.param_groups)
    lrs = [base * trainer._lr_factor(sched.last_epoch) for base in sched.base_lrs]
    for group, lr in zip(trainer.optimizer.param_groups, lrs):
        group.update(lr=lr, initial_lr=c.lr, betas=(c.adam_beta1, c.adam_beta2), weight_decay=c.weight_decay)
    sched._last_lr = lrs
    trainer.step_count, trainer.consecutive_skips = step, skips
