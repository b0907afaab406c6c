"""Training a grid: warm starts once, reuse of complete runs, a process pool, a lock on OUT;
and reading the run folders back (``metrics.jsonl`` through ``metrics.read_metrics``).

Layout: ``OUT/<preset>/<arm>/seed<k>/`` (the trainer's ``metrics.jsonl`` and
``config.json``) and ``OUT/timing.json`` (warm-start and per-run wall times).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .grid import CompareSettings, run_configs, run_dir

__all__ = ["run_comparison", "prepare_warm_starts", "is_complete", "train_one", "OutLock", "load_runs",
           "load_configs", "last_eval_step"]


def last_eval_step(records: Sequence[Mapping[str, Any]]) -> int | None:
    """The step of the last record that carries an evaluation (None: none does)."""
    steps = [int(r["step"]) for r in records if "eval_accuracy" in r]
    return max(steps) if steps else None


def is_complete(path: Path, config) -> bool:
    """A finished run with exactly this config (so it can be reused)."""
    from ..metrics import read_metrics
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        return False
    try:
        saved = json.loads(cfg_file.read_text())
        records = read_metrics(path)
    except (OSError, ValueError):   # a missing, unreadable or torn file: not reusable
        return False
    drop = lambda d: {k: v for k, v in d.items() if k != "num_threads"}  # noqa: E731 - threads do not change results
    same = drop(saved) == drop(json.loads(json.dumps(config.to_dict())))
    last = last_eval_step(records)
    return same and last is not None and last >= config.max_steps


def train_one(payload: dict[str, Any]) -> dict[str, Any]:
    """Train one run (top-level so a process pool can pickle it)."""
    import torch
    from ..config import config_from_mapping

    cfg = config_from_mapping(payload["config"])
    torch.set_num_threads(cfg.num_threads)
    path = Path(cfg.out)
    if path.exists():
        # Only a directory the comparison itself made is cleared (the trainer appends to
        # metrics.jsonl, so a stale partial run would otherwise mix into the new one).
        if not (path / "config.json").is_file():
            raise ValueError(f"run directory {str(path)!r} exists and is not a cast-train run; move it away")
        shutil.rmtree(path)
    t0 = time.perf_counter()
    quiet = lambda _msg: None  # noqa: E731 - the runner prints one line per run instead
    if payload["privileged"] and cfg.method == "cast":
        from ..analysis import PrivilegedDiagnosticsTrainer
        trainer = PrivilegedDiagnosticsTrainer(cfg, privileged_template=payload["template"], log=quiet)
    else:
        from ..trainer import Trainer
        trainer = Trainer(cfg, log=quiet)
    last = trainer.train()
    return {"out": cfg.out, "seconds": time.perf_counter() - t0, "eval_accuracy": last.get("eval_accuracy")}


def prepare_warm_starts(runs: Sequence[tuple[str, str, int, Any]], log: Callable[[str], None] = print) -> dict:
    """Build (or load) each preset's warm-started tiny model once, before the timed runs."""
    from ..model import cache_root, load_policy, warm_start_key
    info = {}
    for preset, _arm, _seed, cfg in runs:
        if preset in info or cfg.model != "tiny":
            continue
        t0 = time.perf_counter()
        _, _, meta = load_policy(cfg, log=log)
        key = warm_start_key(cfg)
        info[preset] = {"key": key, "cache_dir": str(cache_root(cfg) / f"tiny-{key}"), "source": meta.get("source"),
                        "seconds": time.perf_counter() - t0, "warm_start_steps": cfg.warm_start_steps}
        log(f"[compare] {preset}: warm start {info[preset]['source']} ({info[preset]['seconds']:.1f}s) "
            f"{info[preset]['cache_dir']}")
    return info


class OutLock:
    """``OUT/.compare.lock`` (holding the pid): two comparisons must not train into one OUT,
    since each clears and rewrites the run directories it trains."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / ".compare.lock"

    def __enter__(self) -> "OutLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _attempt in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    pid = int(self.path.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and _alive(pid):
                    raise ValueError(f"--out: another comparison (pid {pid}) is training into "
                                     f"{str(self.path.parent)!r}; wait for it or use another --out") from None
                self.path.unlink(missing_ok=True)   # a stale lock from a process that is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return self
        raise ValueError(f"--out: cannot take the lock {str(self.path)!r}")

    def __exit__(self, *exc: Any) -> None:
        self.path.unlink(missing_ok=True)


def _machine() -> dict[str, Any]:
    """Where the runs were timed: CPUs this process may use, and the GPU's name (None without one)."""
    import torch
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return {"cpus": cpus, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_comparison(settings: CompareSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the grid (reusing complete runs unless ``fresh``); returns timing information."""
    runs = run_configs(settings)
    with OutLock(Path(settings.out)):
        return _run_locked(settings, runs, log)


def _run_locked(settings: CompareSettings, runs, log: Callable[[str], None]) -> dict[str, Any]:
    t_all = time.perf_counter()
    warm = prepare_warm_starts(runs, log=log)
    t_runs = time.perf_counter()
    todo = []
    for preset, arm, seed, cfg in runs:
        if not settings.fresh and is_complete(Path(cfg.out), cfg):
            log(f"[compare] {preset} {arm} seed {seed}: complete, reused")
            continue
        # to_dict() turns a callable reward into its "module:qualname", which the worker re-imports.
        todo.append({"config": cfg.to_dict(), "privileged": settings.grid.privileged,
                     "template": settings.grid.privileged_template})
    seconds: dict[str, float] = {}

    def done(res: dict[str, Any]) -> None:
        seconds[res["out"]] = res["seconds"]
        acc = res["eval_accuracy"]
        log(f"[compare] {res['out']}: {res['seconds']:.1f}s, final eval_accuracy "
            f"{'n/a' if acc is None else f'{acc:.3f}'}")

    if settings.jobs == 1 or len(todo) <= 1:
        for p in todo:
            done(train_one(p))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=settings.jobs, mp_context=mp.get_context("spawn")) as pool:
            for res in pool.map(train_one, todo):
                done(res)
    tfile = Path(settings.out) / "timing.json"
    earlier: dict[str, Any] = {}
    if tfile.is_file():
        try:
            earlier = json.loads(tfile.read_text())
        except json.JSONDecodeError:
            earlier = {}
    # Reused runs keep the wall time measured when they were trained.
    per_run = {**earlier.get("per_run_seconds", {}), **seconds}
    timing = {"warm_start": warm, "runs_seconds": time.perf_counter() - t_runs,
              "total_seconds": time.perf_counter() - t_all, "trained": len(todo), "reused": len(runs) - len(todo),
              "per_run_seconds": per_run, "jobs": settings.jobs, "threads": settings.threads, "machine": _machine()}
    Path(settings.out).mkdir(parents=True, exist_ok=True)
    tfile.write_text(json.dumps(timing, indent=1))
    return timing


# =========================================================================================
# reading the runs back
# =========================================================================================
def load_runs(root: str | os.PathLike, presets: Sequence[str], arms: Sequence[str],
              seeds: Sequence[int]) -> dict[str, dict[str, dict[int, list[dict[str, Any]]]]]:
    """``{preset: {arm: {seed: records}}}`` from ``root/<preset>/<arm>/seed<k>/metrics.jsonl``.

    A missing run, or one whose last evaluation is before its ``config.json``'s
    ``max_steps`` (an interrupted run), is a ``ValueError`` naming its directory, so a
    report never shows an unfinished run's accuracy as final.
    """
    from ..metrics import read_metrics
    out: dict[str, dict[str, dict[int, list[dict[str, Any]]]]] = {}
    for preset in presets:
        for arm in arms:
            for seed in seeds:
                path = run_dir(str(root), preset, arm, seed)
                if not (path / "metrics.jsonl").is_file():
                    raise ValueError(f"runs: no metrics for {preset} / {arm} / seed {seed} in {str(path)!r} "
                                     "(run the comparison first, without --no-train)")
                records = read_metrics(path)
                cfg_file = path / "config.json"
                if cfg_file.is_file():
                    want = int(json.loads(cfg_file.read_text()).get("max_steps", 0))
                    last = last_eval_step(records)
                    if last is None or last < want:
                        raise ValueError(f"runs: {preset} / {arm} / seed {seed} in {str(path)!r} is incomplete "
                                         f"(last evaluation at step {last}, max_steps {want}); rerun the "
                                         "comparison without --no-train to finish it")
                out.setdefault(preset, {}).setdefault(arm, {})[seed] = records
    return out


def load_configs(root: str | os.PathLike, presets: Sequence[str], arms: Sequence[str],
                 seeds: Sequence[int]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{preset: {arm: [config.json of each run that has one]}}``."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for preset in presets:
        for arm in arms:
            for seed in seeds:
                f = run_dir(str(root), preset, arm, seed) / "config.json"
                if f.is_file():
                    out.setdefault(preset, {}).setdefault(arm, []).append(json.loads(f.read_text()))
    return out
