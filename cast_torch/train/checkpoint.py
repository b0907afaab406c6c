"""Atomic checkpoints: ``OUT/checkpoints/step-N`` and a ``latest`` pointer.

A checkpoint holds the policy weights (``save_pretrained``: the full model, or the LoRA
adapter), the tokenizer, and ``trainer_state.pt`` (optimizer, scheduler, teacher
weights, RNG states, data position, step, counters). It is written into
``checkpoints/.tmp-step-N-<random>`` and moved into place with one ``os.replace``; the
``latest`` file (the name of the newest complete checkpoint) is replaced the same way.
A crash at any moment therefore leaves the previous checkpoint and pointer intact;
stale ``.tmp-*`` directories are removed at the next save.
"""

from __future__ import annotations

import os
import random
import shutil
import uuid
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

__all__ = ["save_checkpoint", "latest_checkpoint", "load_trainer_state", "rng_state", "set_rng_state",
           "list_checkpoints"]

STATE_FILE = "trainer_state.pt"


def rng_state() -> dict[str, Any]:
    """Python, numpy, torch CPU (and CUDA) RNG states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Complete checkpoints ``step-N`` in ``ckpt_dir``, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = [p for p in ckpt_dir.iterdir() if p.is_dir() and p.name.startswith("step-")
             and p.name[5:].isdigit() and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def _write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(ckpt_dir: Path, step: int, model, tokenizer, state: dict[str, Any], *, keep: int = 2) -> Path:
    """Write checkpoint ``step`` atomically and prune to the newest ``keep``.

    Args:
        ckpt_dir: ``OUT/checkpoints``.   step: RL steps completed.
        model: saved with ``save_pretrained`` (a peft model saves its adapter).
        tokenizer: saved with ``save_pretrained``.
        state: everything else (``torch.save``-able).

    Returns:
        The final checkpoint directory.
    """
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    for stale in ckpt_dir.glob(".tmp-step-*"):
        shutil.rmtree(stale, ignore_errors=True)
    final = ckpt_dir / f"step-{step}"
    tmp = ckpt_dir / f".tmp-step-{step}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    model.save_pretrained(str(tmp / "model"))
    tokenizer.save_pretrained(str(tmp / "model"))
    torch.save(state, tmp / STATE_FILE)
    if final.exists():   # a re-save of the same step (resume at the last step): replace it
        old = ckpt_dir / f".tmp-old-{final.name}-{uuid.uuid4().hex[:8]}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _write_atomic_text(ckpt_dir / "latest", final.name + "\n")
    for old in list_checkpoints(ckpt_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(ckpt_dir: Path) -> Optional[Path]:
    """The checkpoint named by ``latest`` (or the newest complete one), None if there is none."""
    pointer = ckpt_dir / "latest"
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8").strip()
        cand = ckpt_dir / name
        if (cand / STATE_FILE).is_file():
            return cand
    found = list_checkpoints(ckpt_dir)
    return found[-1] if found else None


def load_trainer_state(path: Path) -> dict[str, Any]:
    """The ``trainer_state.pt`` of checkpoint directory ``path``."""
    return torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
