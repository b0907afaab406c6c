"""The run folder (``--out``): what counts as a run, checked before anything changes.

A folder is a **run** when it holds ``config.json`` written by cast-train (a JSON object with
``TrainConfig``'s keys) and ``metrics.jsonl``. A run is the user's data:

- :func:`plan_run_dir` only reads. It refuses a path that is a file, a folder that cannot be
  written, a folder that already holds a run (unless resuming or replacing it) and a folder
  that holds cast-train's file names without being a run (``plots/`` alone is not a run, and
  ``--overwrite`` never touches it).
- :meth:`RunDir.claim` is the first write. Replacing a run (``--overwrite``, or a run that
  never finished a step and has no checkpoint) *moves* its files into
  ``OUT/.replaced-<time>-<id>/``; :meth:`RunDir.release` deletes that folder once the new
  run has written its first checkpoint (or finished without checkpoints). A crash before
  then leaves the old run there, whole.
- ``config.json`` always describes what ran: the run's settings, plus under
  ``changed_on_resume`` every setting a resume changed (step, field, old and new value).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .checkpoint import list_checkpoints

__all__ = ["RunDir", "plan_run_dir", "is_run_dir", "read_run_config", "write_run_config", "RUN_ENTRIES",
           "HISTORY_KEY"]

RUN_ENTRIES = ("config.json", "metrics.jsonl", "checkpoints", "tb", "plots", "wandb")   # what a run writes
HISTORY_KEY = "changed_on_resume"
_REPLACED = ".replaced-"
_RUN_KEYS = {"out", "method", "model", "max_steps", "cast"}   # present in every config.json we write
_MAX_CONFIG_BYTES = 1 << 20


def _read_config_doc(path: Path) -> Optional[dict[str, Any]]:
    """``path/config.json`` as a dict when it is one cast-train wrote, else None."""
    f = path / "config.json"
    try:
        if not f.is_file() or f.stat().st_size > _MAX_CONFIG_BYTES:
            return None
        doc = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return doc if isinstance(doc, dict) and _RUN_KEYS <= set(doc) else None


def is_run_dir(path: str | os.PathLike) -> bool:
    """``path`` holds a cast-train ``config.json`` and ``metrics.jsonl``."""
    p = Path(path)
    return _read_config_doc(p) is not None and (p / "metrics.jsonl").is_file()


def read_run_config(path: str | os.PathLike) -> dict[str, Any]:
    """The settings in ``path/config.json`` (without the resume history), for ``--resume``."""
    doc = _read_config_doc(Path(path))
    if doc is None:
        raise ValueError(f"--resume: {str(Path(path) / 'config.json')!r} is missing or was not written by "
                         "cast-train; give the run's folder as --out (or its --preset/--config)")
    return {k: v for k, v in doc.items() if k != HISTORY_KEY}


def write_run_config(path: Path, config: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """Write ``config.json`` atomically: ``config`` plus the resume history (if any)."""
    doc = dict(config)
    if history:
        doc[HISTORY_KEY] = history
    tmp = path / f".config.json.{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    os.replace(tmp, path / "config.json")


def _history(path: Path) -> list[dict[str, Any]]:
    doc = _read_config_doc(path) or {}
    hist = doc.get(HISTORY_KEY, [])
    return list(hist) if isinstance(hist, list) else []


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def _unfinished(path: Path) -> bool:
    """A run with no checkpoint whose metrics hold no RL step (it died during its start)."""
    if list_checkpoints(path / "checkpoints"):
        return False
    f = path / "metrics.jsonl"
    if f.stat().st_size > _MAX_CONFIG_BYTES:
        return False
    for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            if json.loads(line).get("step", 1) != 0:
                return False
        except (json.JSONDecodeError, AttributeError, RecursionError):
            continue
    return True


@dataclass
class RunDir:
    """The checked plan for ``--out`` (from :func:`plan_run_dir`); ``claim`` carries it out.

    Attributes:
        path: the run folder.   mode: ``"new"``, ``"replace"`` or ``"resume"``.
        reason: why a run is replaced (``--overwrite`` or an unfinished start).
        aside: where the replaced run was moved, until :meth:`release`.
    """

    path: Path
    mode: str
    reason: str = ""
    aside: Optional[Path] = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ckpt_dir(self) -> Path:
        return self.path / "checkpoints"

    def claim(self, log: Callable[[str], None]) -> None:
        """Create the folder; when replacing, move the old run's files aside (never delete)."""
        stale = sorted(p.name for p in self.path.glob(_REPLACED + "*")) if self.path.is_dir() else []
        if stale:
            log(f"out: {', '.join(stale)} in {self.path} hold(s) a run replaced by an earlier, interrupted start; "
                "delete or restore it yourself")
        self.path.mkdir(parents=True, exist_ok=True)
        if self.mode != "replace":
            return
        aside = self.path / f"{_REPLACED}{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        aside.mkdir()
        moved: list[str] = []
        try:
            for name in RUN_ENTRIES:
                if (self.path / name).exists() or (self.path / name).is_symlink():
                    os.replace(self.path / name, aside / name)
                    moved.append(name)
        except OSError:
            for name in moved:   # put back what was moved: the folder stays as it was
                os.replace(aside / name, self.path / name)
            aside.rmdir()
            raise
        self.aside = aside
        log(f"out: the previous run in {self.path} ({self.reason}) moved to {aside.name}/; it is deleted once "
            "this run writes its first checkpoint")

    def release(self, log: Callable[[str], None]) -> None:
        """Delete the replaced run (the new run now has a checkpoint, or has finished)."""
        if self.aside is not None:
            shutil.rmtree(self.aside, ignore_errors=True)
            log(f"out: deleted the replaced run {self.aside.name}/")
            self.aside = None


def _check_creatable(p: Path) -> None:
    q = p.parent
    while not q.exists() and q != q.parent:
        q = q.parent
    if not q.is_dir():
        raise ValueError(f"out: cannot create {str(p)!r}: {str(q)!r} is a file; choose another --out")
    if not _writable(q):
        raise ValueError(f"out: cannot create {str(p)!r}: {str(q)!r} is not writable (read-only or permission "
                         "denied); choose another --out or fix its permissions")


def plan_run_dir(out: str | os.PathLike, *, resume: bool = False, overwrite: bool = False) -> RunDir:
    """Check ``out`` for a new run, a replacement (``overwrite``) or a ``resume``; change nothing.

    Raises:
        ValueError: naming the folder and what to do.
    """
    p = Path(out)
    if resume and overwrite:
        raise ValueError("--resume and --overwrite: choose one (resume continues the run in --out, overwrite "
                         "replaces it)")
    if p.exists() and not p.is_dir():
        raise ValueError(f"out: {str(p)!r} is a file, not a folder; give --out a folder path (created when missing)")
    if not p.exists():
        if resume:
            raise ValueError(f"resume: {str(p)!r} does not exist, so there is no run to resume; check --out")
        _check_creatable(p)
        return RunDir(p, "new")
    if not _writable(p):
        raise ValueError(f"out: {str(p)!r} is not writable (read-only or permission denied); choose another --out "
                         "or fix its permissions")
    run = is_run_dir(p)
    if resume:
        if not run:
            raise ValueError(f"resume: {str(p)!r} is not a cast-train run (no config.json and metrics.jsonl written "
                             "by cast-train); check --out")
        return RunDir(p, "resume", history=_history(p))
    present = [n for n in RUN_ENTRIES if (p / n).exists() or (p / n).is_symlink()]
    if not present:
        return RunDir(p, "new")   # empty, or only the user's own files: nothing of ours to lose
    if not run:
        listed = ", ".join(n + ("/" if (p / n).is_dir() else "") for n in present)
        raise ValueError(f"out: {str(p)!r} holds {listed} but is not a cast-train run (a run has config.json and "
                         "metrics.jsonl written by cast-train), so it is left untouched"
                         f"{' even with --overwrite' if overwrite else ''}; choose another --out or move those "
                         "files away yourself")
    if overwrite:
        return RunDir(p, "replace", reason="--overwrite")
    if _unfinished(p):
        return RunDir(p, "replace", reason="an unfinished start: no checkpoint, no training step")
    raise ValueError(f"out: {str(p)!r} already holds a run; resume it (--resume), choose another --out, or pass "
                     "--overwrite to replace it (the old run is kept until the new one's first checkpoint)")
