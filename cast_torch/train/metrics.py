"""Metric sinks: ``OUT/metrics.jsonl`` (one JSON object per line), TensorBoard, W&B.

Every RL step writes one line with ``step`` and the trainer's metrics (names in
``docs/trainer.md``); evaluation-only records (``step`` 0, before training) carry just
``step`` and the ``eval_*`` keys. Non-finite floats are written as ``null`` so every
line is strict JSON.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

__all__ = ["MetricsLogger", "read_metrics", "REQUIRED_STEP_KEYS", "truncate_metrics"]

# Keys present on every RL-step line (the list; diagnostics keys come on top).
REQUIRED_STEP_KEYS = (
    "step", "reward_mean", "frac_all_correct", "frac_all_wrong", "frac_mixed", "flip_rate_correct",
    "flip_rate_wrong", "loss", "grad_norm", "approx_kl", "clip_frac", "entropy", "step_time", "tokens_per_s",
    "time_generate", "time_score", "time_update", "skipped",
)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class MetricsLogger:
    """Append-only JSONL writer plus optional TensorBoard / W&B mirrors.

    Args:
        out_dir: run directory; writes ``out_dir/metrics.jsonl`` and ``out_dir/tb``.
        tensorboard: mirror scalars to TensorBoard.
        wandb: mirror to Weights & Biases (ImportError if not installed).
        wandb_project / run_config: W&B project and the config to record.
    """

    def __init__(self, out_dir: str | os.PathLike, *, tensorboard: bool = True, wandb: bool = False,
                 wandb_project: str = "cast", run_config: Optional[Mapping[str, Any]] = None) -> None:
        self.path = Path(out_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        self._tb = None
        self._wandb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self._tb = SummaryWriter(log_dir=str(Path(out_dir) / "tb"))
        if wandb:
            try:
                import wandb as wandb_mod
            except ImportError as e:
                raise ImportError("TrainConfig.wandb: true but the wandb package is not installed") from e
            self._wandb = wandb_mod.init(project=wandb_project, dir=str(out_dir), config=dict(run_config or {}))

    def log(self, record: Mapping[str, Any]) -> None:
        """Write one record (must contain ``step``) to every sink."""
        if "step" not in record:
            raise ValueError("metrics record: missing 'step'")
        clean = {k: _clean(v) for k, v in record.items()}
        self._file.write(json.dumps(clean, sort_keys=False) + "\n")
        self._file.flush()
        step = int(record["step"])
        if self._tb is not None:
            for k, v in record.items():
                if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in clean.items() if k != "step"}, step=step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def read_metrics(out_dir: str | os.PathLike, *, drop_torn_tail: bool = False) -> list[dict[str, Any]]:
    """All records of ``out_dir/metrics.jsonl`` (a missing file is a ``ValueError``).

    Args:
        drop_torn_tail: skip the *last* line when it does not parse (a write cut short by a
            kill); any other line that does not parse is still a ``ValueError``.
    """
    return _read(out_dir, drop_torn_tail)[0]


def _read(out_dir: str | os.PathLike, drop_torn_tail: bool) -> tuple[list[dict[str, Any]], Optional[int]]:
    path = Path(out_dir) / "metrics.jsonl"
    if not path.is_file():
        raise ValueError(f"metrics: {str(path)!r} does not exist (is {str(out_dir)!r} a cast-train run directory?)")
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    records, torn = [], None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError) as e:
            if drop_torn_tail and i == len(lines) - 1:
                torn = i + 1
                continue
            raise ValueError(f"metrics: {path}: line {i + 1} is not JSON: {e}") from None
    return records, torn


def truncate_metrics(out_dir: str | os.PathLike, last_step: int, *, drop_torn_tail: bool = False,
                     log: Optional[Callable[[str], None]] = None) -> None:
    """Drop records with ``step > last_step`` (a resumed run rewrites them), atomically.

    ``drop_torn_tail``: a last line that does not parse (a kill during a write; it comes after
    the checkpoint by definition) is dropped too, and reported to ``log``.
    """
    path = Path(out_dir) / "metrics.jsonl"
    if not path.is_file():
        return
    records, torn = _read(out_dir, drop_torn_tail)
    if torn is not None and log is not None:
        log(f"resume: dropped the torn last line {torn} of {path} (a write cut short)")
    keep = [r for r in records if int(r["step"]) <= last_step]
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in keep:
            f.write(json.dumps(r) + "\n")
    os.replace(tmp, path)
