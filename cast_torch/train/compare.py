"""Method comparison: train GRPO, RLSD, RL-ZVP and CAST under one budget and write a report.

``cast-train compare`` / ``python examples/compare_methods.py`` runs every
(preset, method, seed) with **identical settings**: the preset's defaults plus the
mode's budget overrides (:data:`MODES`), applied to every method alike — no method
gets its own tuning. The one documented exception is the extra arm ``cast_contract``
(:data:`ARMS`): CAST with the contract's default ``CASTConfig`` instead of the preset's
CAST parameters (the tiny presets set ``cast.deadband = (0.95, 1.05)``), so the report
shows CAST both as the preset configures it and with the contract's defaults. Every run of a preset starts from the same cached warm-started
model (the cache key does not depend on the seed or the method; the runner checks it),
sees the same training problems and the same evaluation set; the seed sets the prompt
order, the sampling and the update shuffling, and run ``k`` of every method uses seed
``k``, so deltas between methods are paired by seed.

CAST runs are also scored with a privileged teacher (the reference answer in its
context, analysis only, never trained on; :mod:`cast_torch.train.analysis`), so the
report can set the answer-free teacher's gap statistics beside the privileged one's.

Outputs:

- runs: ``OUT/<preset>/<method or arm>/seed<k>/`` (the trainer's ``metrics.jsonl``, ``config.json``);
- ``REPORT_DIR/method-comparison.md``, ``method-comparison.json`` (every number in the
  report) and ``method-comparison-*.png`` plots beside it.

The report is generated from the metrics files only (``--report-only`` regenerates it
from existing runs). Final accuracy is the greedy pass@1 on the preset's held-out
problems at the last step; "mean ± std" is over seeds with the sample std (ddof 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

__all__ = [
    "MODES", "ARMS", "DEFAULT_METHODS", "DEFAULT_PRESETS", "DEFAULT_SEEDS", "CompareSettings", "build_parser",
    "parse_args", "settings_from_args", "run_configs", "prepare_warm_starts", "run_comparison", "load_runs",
    "load_configs", "arm_method", "arm_overrides", "unexpected_differences", "eval_curve", "step_curve", "summarize", "plot_comparison", "write_report", "make_report",
    "run", "main",
]

# Comparison arms that are not a trainer method of their own: arm -> the trainer method it
# runs. Each differs from the preset in exactly one documented setting (arm_overrides).
# "cast_contract" exists because the tiny presets give CAST alone a non-default deadband;
# showing CAST with the contract's defaults beside it keeps the comparison from tuning
# CAST alone.
ARMS: dict[str, str] = {"cast_contract": "cast"}
DEFAULT_METHODS = ("grpo", "rlsd", "rl_zvp", "cast", "cast_contract")
DEFAULT_PRESETS = ("tiny-arithmetic", "tiny-multistep")
DEFAULT_SEEDS = (0, 1, 2)

# Budget overrides per mode, applied to every method and seed alike. Everything else
# (lr, temperature, teacher, CAST/RLSD/RL-ZVP parameters, ...) is the preset's default.
# "full" is the presets' own budget (300 steps); "quick" cuts it to 60 steps so the 30
# runs fit in 10 minutes on 2 CPU cores (about 0.2 s per step and 12 s per run there).
MODES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "tiny-arithmetic": dict(max_steps=60, eval_every=20),
        "tiny-multistep": dict(max_steps=60, eval_every=20),
    },
    "full": {
        "tiny-arithmetic": dict(),
        "tiny-multistep": dict(),
    },
}
# Run-plumbing settings (no effect on the learning itself), the same for every run.
_PLUMBING = dict(tensorboard=False, progress=False, save_every=0, keep_checkpoints=1)

REPORT_NAME = "method-comparison"
# Keys averaged over steps in the dynamics table.
DYNAMICS_KEYS = ("reward_mean", "frac_all_correct", "frac_all_wrong", "frac_mixed", "entropy", "step_time")
# Gap statistics of the answer-free teacher; the privileged teacher's carry the prefix "priv_".
GAP_TABLE_KEYS = ("teacher_pos_frac_correct", "teacher_pos_frac_wrong", "gap_mean_correct", "gap_mean_wrong",
                  "seq_gap_auc", "flip_rate_correct", "flip_rate_wrong")
TAIL_EVALS = 3      # the secondary metric: mean accuracy of the last 3 evaluations (less noisy than one)
_LAGGED_EPS = 1e-9   # |g| mean above this: the teacher's weights differ from the policy's


@dataclasses.dataclass(frozen=True)
class CompareSettings:
    """What to run and where (validated by :func:`parse_args`).

    Attributes:
        presets / methods / seeds: the grid (every method runs every preset and seed);
            ``methods`` holds trainer methods and :data:`ARMS` names.
        mode: "quick" or "full" (see :data:`MODES`).
        out: root of the run directories.   report_dir: where the report and plots go.
        overrides: extra ``TrainConfig`` settings applied to every run (``--set``).
        jobs: runs in parallel (processes).   threads: torch threads per run.
        privileged: score CAST runs with the privileged teacher too (analysis).
        privileged_template: that teacher's context ({prompt} and {answer}).
        fresh: rerun runs that are already complete.   report_only: only write the report.
        command: the command line recorded in the report.
    """

    presets: tuple[str, ...] = DEFAULT_PRESETS
    methods: tuple[str, ...] = DEFAULT_METHODS
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    mode: str = "full"
    out: str = "runs/compare"
    report_dir: str = "reports"
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    jobs: int = 1
    threads: int = 1
    privileged: bool = True
    privileged_template: str = ""
    fresh: bool = False
    report_only: bool = False
    command: str = ""


# =========================================================================================
# arguments
# =========================================================================================
def build_parser(parser: Optional[argparse.ArgumentParser] = None) -> argparse.ArgumentParser:
    """The comparison's arguments (added to ``parser`` when given, e.g. a CLI subcommand)."""
    p = parser or argparse.ArgumentParser(
        prog="cast-train compare",
        description="Train GRPO, RLSD, RL-ZVP, CAST and cast_contract (CAST with the contract's default CASTConfig) "
                    "with the same budget, data and seeds on the tiny "
                    "presets and write reports/method-comparison.md with plots.")
    p.add_argument("--quick", action="store_true", help="Quick mode (<= 10 min on 2 CPU cores); same as --mode quick.")
    p.add_argument("--mode", choices=sorted(MODES), default=None, help="Budget mode (default: full).")
    p.add_argument("--presets", default=",".join(DEFAULT_PRESETS), help="Comma-separated presets.")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help="Comma-separated methods (grpo, rlsd, rl_zvp, cast, opsd) and arms (cast_contract: CAST "
                        "with the contract's default CASTConfig instead of the preset's); must include grpo and "
                        "cast for the CAST - GRPO delta.")
    p.add_argument("--seeds", default=",".join(map(str, DEFAULT_SEEDS)), help="Comma-separated seeds (ints >= 0).")
    p.add_argument("--out", default=None, help="Run directory root (default: runs/compare-<mode>).")
    p.add_argument("--report-dir", default="reports", help="Where method-comparison.md and the PNGs go.")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="A TrainConfig setting applied to EVERY run (TOML value syntax); repeatable. Settings "
                        "read by only some methods (cast.*, rlsd_*, zvp_alpha, teacher*) are refused.")
    p.add_argument("--jobs", type=int, default=1, help="Runs in parallel (processes; 1 or 2 on 2 cores).")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run.")
    p.add_argument("--no-privileged", action="store_true", help="Skip the privileged-teacher analysis of CAST runs.")
    p.add_argument("--privileged-template", default=None,
                   help="Privileged teacher context with {prompt} and {answer} (analysis only).")
    p.add_argument("--fresh", action="store_true", help="Rerun runs whose results already exist.")
    p.add_argument("--report-only", action="store_true", help="Only (re)write the report from existing runs.")
    return p


def _csv(text: str, what: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ValueError(f"{what}: empty list")
    if len(set(items)) != len(items):
        raise ValueError(f"{what}: duplicate entries in {text!r}")
    return items


def _parse_override(item: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with the value in TOML syntax (as ``cast-train train --set``), else a string."""
    from .cli import parse_set
    path, value = parse_set(item)
    return ".".join(path), value


# Settings that only some methods read: changing them would tune those methods alone.
_METHOD_SPECIFIC = ("cast", "rlsd_lam", "rlsd_lam_decay_steps", "rlsd_eps_w", "zvp_alpha", "teacher",
                    "teacher_refresh_steps", "teacher_ema_decay", "teacher_context", "allow_privileged_teacher")


def settings_from_args(args: argparse.Namespace, argv: Sequence[str] = ()) -> CompareSettings:
    """Validate parsed arguments into :class:`CompareSettings` (``ValueError`` naming the argument)."""
    from .config import METHODS, PRESETS, TrainConfig
    from .analysis import DEFAULT_PRIVILEGED_TEMPLATE

    if args.quick and args.mode not in (None, "quick"):
        raise ValueError(f"--quick conflicts with --mode {args.mode}")
    mode = "quick" if args.quick else (args.mode or "full")
    methods = _csv(args.methods, "--methods")
    bad = [m for m in methods if m not in METHODS and m not in ARMS]
    if bad:
        raise ValueError(f"--methods: unknown method {bad[0]!r}; choose from {', '.join([*METHODS, *ARMS])}")
    presets = _csv(args.presets, "--presets")
    bad = [p for p in presets if p not in PRESETS]
    if bad:
        raise ValueError(f"--presets: unknown preset {bad[0]!r}; known: {', '.join(sorted(PRESETS))}")
    missing = [p for p in presets if p not in MODES[mode]]
    if missing:
        raise ValueError(f"--presets: {missing[0]!r} has no {mode} budget in compare.MODES "
                         f"(comparable presets: {', '.join(MODES[mode])})")
    seeds = []
    for s in _csv(args.seeds, "--seeds"):
        try:
            v = int(s)
        except ValueError:
            raise ValueError(f"--seeds: {s!r} is not an integer") from None
        if v < 0:
            raise ValueError(f"--seeds: {v} is negative")
        seeds.append(v)
    overrides = dict(_parse_override(o) for o in args.overrides)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for key in overrides:
        if key.split(".")[0] in _METHOD_SPECIFIC:
            raise ValueError(f"--set: {key!r} is read by only some methods; the comparison runs every method "
                             "with the preset defaults and does not tune one method alone")
        if key in ("method", "seed", "out"):
            raise ValueError(f"--set: {key!r} is set by the comparison itself")
        if key not in known:
            raise ValueError(f"--set: unknown TrainConfig setting {key!r}")
    for name in ("jobs", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name}: must be >= 1, got {getattr(args, name)}")
    template = args.privileged_template or DEFAULT_PRIVILEGED_TEMPLATE
    if "{answer}" not in template or "{prompt}" not in template:
        raise ValueError(f"--privileged-template: needs both {{prompt}} and {{answer}} slots, got {template!r}")
    return CompareSettings(
        presets=tuple(presets), methods=tuple(methods), seeds=tuple(seeds), mode=mode,
        out=args.out or f"runs/compare-{mode}", report_dir=args.report_dir, overrides=overrides,
        jobs=args.jobs, threads=args.threads, privileged=not args.no_privileged, privileged_template=template,
        fresh=args.fresh, report_only=args.report_only,
        command=" ".join(shlex.quote(a) for a in [*_invocation(), *(a for a in argv if a != "--report-only")]))


def _invocation() -> list[str]:
    """How this process was started, for the report's regenerate command."""
    if Path(sys.argv[0]).name == "cast-train":
        return ["cast-train", "compare"]
    return ["python", "examples/compare_methods.py"]


def parse_args(argv: Sequence[str]) -> CompareSettings:
    """Parse and validate ``argv`` (``ValueError`` with a clear message on bad input)."""
    argv = list(argv)
    return settings_from_args(build_parser().parse_args(argv), argv)


# =========================================================================================
# running
# =========================================================================================
def run_dir(settings: CompareSettings, preset: str, method: str, seed: int) -> Path:
    return Path(settings.out) / preset / method / f"seed{seed}"


def arm_method(arm: str) -> str:
    """The trainer method an arm runs (a plain method is its own arm)."""
    return ARMS.get(arm, arm)


def arm_overrides(arm: str) -> dict[str, Any]:
    """The arm's one documented ``TrainConfig`` difference from the preset (``{}`` for a plain method).

    ``cast_contract``: ``cast`` = the contract's default :class:`cast_core.CASTConfig`
    (as a JSON-ready mapping), replacing the preset's CAST parameters.
    """
    if arm == "cast_contract":
        from cast_core.config import CASTConfig
        return {"cast": json.loads(json.dumps(CASTConfig().to_dict()))}
    if arm in ARMS:
        raise ValueError(f"arm {arm!r}: no overrides defined")
    return {}


def unexpected_differences(reference: Mapping[str, Any], cfg: Mapping[str, Any], arm: str) -> list[str]:
    """Settings where a run's saved config differs from ``reference`` beyond what is allowed.

    Allowed: ``method`` (must be :func:`arm_method` of ``arm``), ``seed``, ``out``,
    ``num_threads`` and, for an arm of :data:`ARMS`, exactly its :func:`arm_overrides`.
    ``reference`` is the config of a plain-method run of the same preset (or of a run of
    the same arm). Returns the differing keys, sorted (``[]`` when the run conforms).
    """
    want = json.loads(json.dumps({**reference, **arm_overrides(arm)}))
    got = json.loads(json.dumps(dict(cfg)))
    keys = sorted((set(want) | set(got)) - {"method", "seed", "out", "num_threads"})
    bad = [k for k in keys if want.get(k) != got.get(k)]
    if got.get("method") != arm_method(arm):
        bad.insert(0, "method")
    return bad


def run_configs(settings: CompareSettings) -> list[tuple[str, str, int, Any]]:
    """Every run's ``(preset, method or arm, seed, TrainConfig)``; checks the shared warm start.

    An arm of :data:`ARMS` runs its trainer method with its :func:`arm_overrides`.
    Raises ``ValueError`` if two runs of one preset would start from different
    warm-started models (they must differ only in method, seed and an arm's override).
    """
    from .config import get_preset
    from .model import warm_start_key

    out = []
    for preset in settings.presets:
        keys = set()
        for method in settings.methods:
            for seed in settings.seeds:
                cfg = get_preset(preset, **{**MODES[settings.mode][preset], **_PLUMBING, **settings.overrides,
                                            **arm_overrides(method), "num_threads": settings.threads,
                                            "method": arm_method(method), "seed": seed,
                                            "out": str(run_dir(settings, preset, method, seed))})
                if cfg.model == "tiny":
                    keys.add(warm_start_key(cfg))
                out.append((preset, method, seed, cfg))
        if len(keys) > 1:
            raise ValueError(f"preset {preset!r}: runs would start from {len(keys)} different warm starts")
    return out


def _is_complete(path: Path, config) -> bool:
    """A finished run with exactly this config (so it can be reused)."""
    cfg_file, met_file = path / "config.json", path / "metrics.jsonl"
    if not (cfg_file.is_file() and met_file.is_file()):
        return False
    try:
        saved = json.loads(cfg_file.read_text())
        records = [json.loads(line) for line in met_file.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError):
        return False
    same = {k: v for k, v in saved.items() if k != "num_threads"} == \
        {k: v for k, v in json.loads(json.dumps(config.to_dict())).items() if k != "num_threads"}
    return same and any(r.get("step") == config.max_steps and "eval_accuracy" in r for r in records)


def _train_one(payload: dict[str, Any]) -> dict[str, Any]:
    """Train one run (top-level so a process pool can pickle it)."""
    import torch
    from .config import config_from_mapping

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
    if payload["privileged"] and cfg.method in ("cast",):
        from .analysis import PrivilegedDiagnosticsTrainer
        trainer = PrivilegedDiagnosticsTrainer(cfg, privileged_template=payload["template"], log=quiet)
    else:
        from .trainer import Trainer
        trainer = Trainer(cfg, log=quiet)
    last = trainer.train()
    return {"out": cfg.out, "seconds": time.perf_counter() - t0, "eval_accuracy": last.get("eval_accuracy")}


def _payload(cfg, settings: CompareSettings) -> dict[str, Any]:
    # to_dict() turns a callable reward into its "module:qualname", which the worker re-imports.
    return {"config": cfg.to_dict(), "privileged": settings.privileged, "template": settings.privileged_template}


def prepare_warm_starts(runs: Sequence[tuple[str, str, int, Any]], log: Callable[[str], None] = print) -> dict:
    """Build (or load) each preset's warm-started model once, before the timed runs."""
    from .model import cache_root, load_policy, warm_start_key
    info = {}
    for preset, _method, _seed, cfg in runs:
        if preset in info or cfg.model != "tiny":
            continue
        t0 = time.perf_counter()
        _, _, meta = load_policy(cfg, log=log)
        info[preset] = {"key": warm_start_key(cfg), "cache_dir": str(cache_root(cfg) / f"tiny-{warm_start_key(cfg)}"),
                        "source": meta.get("source"), "seconds": time.perf_counter() - t0,
                        "warm_start_steps": cfg.warm_start_steps}
        log(f"[compare] {preset}: warm start {info[preset]['source']} ({info[preset]['seconds']:.1f}s) "
            f"{info[preset]['cache_dir']}")
    return info


def run_comparison(settings: CompareSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the grid (reusing complete runs unless ``fresh``); returns timing information."""
    runs = run_configs(settings)
    with _OutLock(Path(settings.out)):
        return _run_locked(settings, runs, log)


class _OutLock:
    """``OUT/.compare.lock`` (holding the pid): two comparisons must not train into one OUT,
    since each clears and rewrites the run directories it trains."""

    def __init__(self, out: Path) -> None:
        self.path = out / ".compare.lock"

    def __enter__(self) -> "_OutLock":
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_locked(settings: CompareSettings, runs, log: Callable[[str], None]) -> dict[str, Any]:
    t_all = time.perf_counter()
    warm = prepare_warm_starts(runs, log=log)
    t_runs = time.perf_counter()
    todo = []
    for preset, method, seed, cfg in runs:
        if not settings.fresh and _is_complete(Path(cfg.out), cfg):
            log(f"[compare] {preset} {method} seed {seed}: complete, reused")
            continue
        todo.append(_payload(cfg, settings))
    seconds: dict[str, float] = {}

    def done(res: dict[str, Any]) -> None:
        seconds[res["out"]] = res["seconds"]
        acc = res["eval_accuracy"]
        log(f"[compare] {res['out']}: {res['seconds']:.1f}s, final eval_accuracy "
            f"{'n/a' if acc is None else f'{acc:.3f}'}")

    if settings.jobs == 1 or len(todo) <= 1:
        for p in todo:
            done(_train_one(p))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=settings.jobs, mp_context=mp.get_context("spawn")) as pool:
            for res in pool.map(_train_one, todo):
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
              "per_run_seconds": per_run, "jobs": settings.jobs, "threads": settings.threads}
    Path(settings.out).mkdir(parents=True, exist_ok=True)
    tfile.write_text(json.dumps(timing, indent=1))
    return timing


# =========================================================================================
# loading and summarising
# =========================================================================================
def _read_records(path: Path) -> list[dict[str, Any]]:
    from .metrics import read_metrics
    return read_metrics(path)


def load_runs(root: str | os.PathLike, presets: Sequence[str], methods: Sequence[str],
              seeds: Sequence[int]) -> dict[str, dict[str, dict[int, list[dict[str, Any]]]]]:
    """``{preset: {method: {seed: records}}}`` from ``root/<preset>/<method>/seed<k>/metrics.jsonl``.

    A missing run, or one whose last evaluation is before its ``config.json``'s
    ``max_steps`` (an interrupted run), is a ``ValueError`` naming its directory, so a
    report never shows an unfinished run's accuracy as final.
    """
    out: dict[str, dict[str, dict[int, list[dict[str, Any]]]]] = {}
    for preset in presets:
        for method in methods:
            for seed in seeds:
                path = Path(root) / preset / method / f"seed{seed}"
                if not (path / "metrics.jsonl").is_file():
                    raise ValueError(f"runs: no metrics for {preset} / {method} / seed {seed} in {str(path)!r} "
                                     "(run the comparison first, without --report-only)")
                records = _read_records(path)
                cfg_file = path / "config.json"
                if cfg_file.is_file():
                    want = int(json.loads(cfg_file.read_text()).get("max_steps", 0))
                    steps, _ = eval_curve(records)
                    if not steps.size or int(steps[-1]) < want:
                        last = int(steps[-1]) if steps.size else None
                        raise ValueError(f"runs: {preset} / {method} / seed {seed} in {str(path)!r} is incomplete "
                                         f"(last evaluation at step {last}, max_steps {want}); rerun the "
                                         "comparison without --report-only to finish it")
                out.setdefault(preset, {}).setdefault(method, {})[seed] = records
    return out


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None else float("nan")


def eval_curve(records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """``(steps [E], eval_accuracy [E])`` of the records that carry an evaluation, by step."""
    pts = sorted((int(r["step"]), _num(r["eval_accuracy"])) for r in records if "eval_accuracy" in r)
    return np.array([p[0] for p in pts], dtype=np.int64), np.array([p[1] for p in pts], dtype=np.float64)


def step_curve(records: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps [S], values [S])`` of ``key`` over RL-step records (step >= 1); missing → NaN."""
    pts = sorted((int(r["step"]), _num(r.get(key))) for r in records if int(r["step"]) >= 1 and "reward_mean" in r)
    return np.array([p[0] for p in pts], dtype=np.int64), np.array([p[1] for p in pts], dtype=np.float64)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    v = np.array([x for x in values if math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _lagged(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """RL-step records where the teacher's weights differ from the policy's (g not all 0)."""
    return [r for r in records if int(r["step"]) >= 1 and "reward_mean" in r and _num(r.get("gap_abs_mean")) > _LAGGED_EPS]


def _sign_test_p(k: int, n: int) -> float:
    """Two-sided exact binomial sign-test p-value of k successes in n fair trials."""
    if n == 0:
        return float("nan")
    tail = sum(math.comb(n, i) for i in range(0, min(k, n - k) + 1)) / 2.0 ** n
    return min(1.0, 2.0 * tail)


def summarize(runs: Mapping[str, Mapping[str, Mapping[int, Sequence[Mapping[str, Any]]]]]) -> dict[str, Any]:
    """Every number the report shows, computed from the metrics records.

    Per preset: per method the final eval accuracy (per seed, mean, sample std), the
    step-0 accuracy, step-averaged dynamics; the paired delta CAST − GRPO (per seed,
    mean, std, ranges, whether the per-seed ranges are disjoint, seeds won) as
    ``delta_cast_grpo`` and the same for the ``cast_contract`` arm as
    ``delta_cast_contract_grpo``; the gap statistics of CAST runs (``gaps``; those of
    ``cast_contract`` runs as ``gaps_cast_contract``) for the answer-free and (when logged) privileged teacher,
    averaged over the steps where the teacher is lagged, and sign tests of the
    per-step AUC against 0.5.
    """
    summary: dict[str, Any] = {}
    for preset, by_method in runs.items():
        ps: dict[str, Any] = {"methods": {}}
        for method, by_seed in by_method.items():
            final, start, tail, dyn = {}, {}, {}, {k: {} for k in DYNAMICS_KEYS}
            for seed, recs in by_seed.items():
                steps, acc = eval_curve(recs)
                if steps.size == 0:
                    raise ValueError(f"runs: {preset} / {method} / seed {seed} has no evaluation")
                final[seed] = float(acc[-1])
                tail[seed] = float(acc[steps >= 1][-TAIL_EVALS:].mean()) if (steps >= 1).any() else float(acc[-1])
                if steps[0] == 0:
                    start[seed] = float(acc[0])
                for k in DYNAMICS_KEYS:
                    dyn[k][seed] = _nanmean(step_curve(recs, k)[1])
            last_steps = {seed: int(eval_curve(recs)[0][-1]) for seed, recs in by_seed.items()}
            m, s = _mean_std(list(final.values()))
            tm, ts = _mean_std(list(tail.values()))
            ps["methods"][method] = {
                "final": final, "final_mean": m, "final_std": s, "final_step": last_steps,
                "tail": tail, "tail_mean": tm, "tail_std": ts,
                "start": start, "dynamics": {k: {"mean": _mean_std(list(v.values()))[0],
                                                 "std": _mean_std(list(v.values()))[1]} for k, v in dyn.items()},
            }
        meths = ps["methods"]
        for arm in ("cast", "cast_contract"):
            if arm in meths and "grpo" in meths:
                ps[f"delta_{arm}_grpo"] = _paired_delta(meths[arm], meths["grpo"])
            if arm in runs[preset]:
                ps["gaps" if arm == "cast" else f"gaps_{arm}"] = _gap_summary(runs[preset][arm])
        summary[preset] = ps
    return summary


def _paired_delta(a: Mapping[str, Any], grpo: Mapping[str, Any]) -> dict[str, Any]:
    """Paired-by-seed final-accuracy delta of a CAST arm ``a`` minus GRPO (the ``cast_*`` keys name ``a``)."""
    seeds = sorted(set(a["final"]) & set(grpo["final"]))
    deltas = {s: a["final"][s] - grpo["final"][s] for s in seeds}
    dm, ds = _mean_std(list(deltas.values()))
    c_vals = [a["final"][s] for s in seeds]
    g_vals = [grpo["final"][s] for s in seeds]
    tm, ts = _mean_std([a["tail"][s] - grpo["tail"][s] for s in seeds])
    return {
        "per_seed": deltas, "mean": dm, "std": ds, "diff_of_means": a["final_mean"] - grpo["final_mean"],
        "cast_range": [min(c_vals), max(c_vals)] if seeds else [float("nan")] * 2,
        "grpo_range": [min(g_vals), max(g_vals)] if seeds else [float("nan")] * 2,
        "ranges_disjoint": bool(seeds) and (min(c_vals) > max(g_vals) or max(c_vals) < min(g_vals)),
        "seeds_cast_better": sum(d > 0 for d in deltas.values()),
        "seeds_tied": sum(d == 0 for d in deltas.values()), "n": len(seeds), "tail_mean": tm, "tail_std": ts,
    }


def _gap_summary(by_seed: Mapping[int, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    teachers = {"answer_free": ""}
    if any("priv_gap_mean_correct" in r for recs in by_seed.values() for r in recs):
        teachers["privileged"] = "priv_"
    out: dict[str, Any] = {"lagged_steps": {}, "total_steps": {}}
    for seed, recs in by_seed.items():
        out["lagged_steps"][seed] = len(_lagged(recs))
        out["total_steps"][seed] = sum(1 for r in recs if int(r["step"]) >= 1 and "reward_mean" in r)
    for name, prefix in teachers.items():
        stats: dict[str, Any] = {}
        for key in GAP_TABLE_KEYS:
            per_seed = {}
            for seed, recs in by_seed.items():
                vals = [_num(r.get(prefix + key)) for r in _lagged(recs)]
                vals = [v for v in vals if math.isfinite(v)]
                per_seed[seed] = float(np.mean(vals)) if vals else float("nan")
            m, s = _mean_std(list(per_seed.values()))
            stats[key] = {"per_seed": per_seed, "mean": m, "std": s}
        above = below = 0
        pos_higher = pos_total = 0
        for recs in by_seed.values():
            for r in _lagged(recs):
                auc = _num(r.get(prefix + "seq_gap_auc"))
                if math.isfinite(auc) and auc != 0.5:
                    above += auc > 0.5
                    below += auc < 0.5
                pc, pw = _num(r.get(prefix + "teacher_pos_frac_correct")), _num(r.get(prefix + "teacher_pos_frac_wrong"))
                if math.isfinite(pc) and math.isfinite(pw) and pc != pw:
                    pos_total += 1
                    pos_higher += pc > pw
        stats["auc_steps_above"] = above
        stats["auc_steps_below"] = below
        stats["auc_sign_p"] = _sign_test_p(above, above + below)
        stats["pos_frac_steps_higher_on_correct"] = pos_higher
        stats["pos_frac_steps"] = pos_total
        stats["pos_frac_sign_p"] = _sign_test_p(pos_higher, pos_total)
        out[name] = stats
    return out


# =========================================================================================
# plots
# =========================================================================================
_COLORS = {"grpo": "#4c72b0", "rlsd": "#55a868", "rl_zvp": "#8172b2", "cast": "#c44e52", "opsd": "#937860",
           "cast_contract": "#dd8452"}
_TEACHER_COLORS = {"answer_free": "#c44e52", "privileged": "#2a9d8f"}


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing NaN-aware moving average (window 1: unchanged)."""
    if window <= 1 or y.size == 0:
        return y
    out = np.full_like(y, np.nan)
    for i in range(y.size):
        seg = y[max(0, i - window + 1):i + 1]
        seg = seg[np.isfinite(seg)]
        if seg.size:
            out[i] = seg.mean()
    return out


def _stack(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Align per-seed curves on their common steps → ``(steps [S], values [seeds, S])``."""
    common = sorted(set.intersection(*(set(s.tolist()) for s, _ in curves))) if curves else []
    steps = np.array(common, dtype=np.int64)
    vals = np.stack([np.array([v[list(s).index(t)] for t in common], dtype=np.float64) for s, v in curves]) \
        if common else np.zeros((len(curves), 0))
    return steps, vals


def _band(ax, steps: np.ndarray, vals: np.ndarray, color: str, label: str, linestyle: str = "-") -> None:
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(vals, axis=0)
            lo, hi = np.nanmin(vals, axis=0), np.nanmax(vals, axis=0)
    ax.plot(steps, mean, color=color, label=label, linestyle=linestyle, linewidth=1.6)
    if vals.shape[0] > 1:
        ax.fill_between(steps, lo, hi, color=color, alpha=0.15, linewidth=0)


def _window(n_steps: int) -> int:
    return 1 if n_steps < 15 else 5


def plot_comparison(runs, report_dir: str | os.PathLike, title_suffix: str = "") -> list[Path]:
    """Write the comparison PNGs into ``report_dir``; returns their paths.

    Step metrics are shown as a trailing 5-step moving average when a run has 15 or
    more steps (raw otherwise); lines are the mean over seeds, bands the min..max.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    presets = list(runs)
    ncol = len(presets)
    paths: list[Path] = []

    def finish(fig, name: str) -> None:
        fig.tight_layout()
        path = report_dir / f"{REPORT_NAME}-{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    def method_panel(ax, preset: str, key: str, ylabel: str, eval_key: bool = False) -> None:
        for method, by_seed in runs[preset].items():
            curves = [eval_curve(r) if eval_key else step_curve(r, key) for r in by_seed.values()]
            steps, vals = _stack(curves)
            if not eval_key:
                vals = np.stack([_smooth(v, _window(steps.size)) for v in vals]) if vals.size else vals
            # Arms are dashed so a variant stays distinguishable from its method in grey-scale too.
            _band(ax, steps, vals, _COLORS.get(method, "k"), method, "--" if method in ARMS else "-")
        ax.set_title(f"{preset}{title_suffix}", fontsize=10)
        ax.set_xlabel("RL step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        # Below the axes, so the legend never hides a curve (five methods fill the panel).
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(5, len(runs[preset])),
                  frameon=False)

    # 1. eval accuracy
    fig, axes = plt.subplots(1, ncol, figsize=(5.2 * ncol, 3.8), squeeze=False)
    for j, preset in enumerate(presets):
        method_panel(axes[0, j], preset, "eval_accuracy", "greedy eval accuracy", eval_key=True)
    finish(fig, "eval-accuracy")

    # 2. reward
    fig, axes = plt.subplots(1, ncol, figsize=(5.2 * ncol, 3.8), squeeze=False)
    for j, preset in enumerate(presets):
        method_panel(axes[0, j], preset, "reward_mean", "train reward (mean of N)")
    finish(fig, "reward")

    # 3. zero-variance groups
    fig, axes = plt.subplots(2, ncol, figsize=(5.2 * ncol, 6.6), squeeze=False)
    for j, preset in enumerate(presets):
        method_panel(axes[0, j], preset, "frac_all_correct", "frac. all-correct groups")
        method_panel(axes[1, j], preset, "frac_all_wrong", "frac. all-wrong groups")
    finish(fig, "zero-variance")

    # 4/5. CAST teacher diagnostics: answer-free vs privileged
    def teacher_panel(ax, preset: str, key_pairs: Sequence[tuple[str, str, str]], ylabel: str,
                      hline: Optional[float] = None, teachers: Sequence[str] = ("answer_free", "privileged")) -> None:
        by_seed = runs[preset].get("cast", {})
        for teacher, prefix in (("answer_free", ""), ("privileged", "priv_")):
            if teacher not in teachers:
                continue
            for key, style, label in key_pairs:
                curves = []
                for recs in by_seed.values():
                    lag = _lagged(recs)
                    if not lag or not any(prefix + key in r for r in lag):
                        continue
                    curves.append((np.array([int(r["step"]) for r in lag]),
                                   np.array([_num(r.get(prefix + key)) for r in lag])))
                if not curves:
                    continue
                steps, vals = _stack(curves)
                vals = np.stack([_smooth(v, _window(steps.size)) for v in vals]) if vals.size else vals
                _band(ax, steps, vals, _TEACHER_COLORS[teacher], f"{teacher.replace('_', '-')} {label}", style)
        if hline is not None:
            ax.axhline(hline, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(f"{preset}: CAST runs{title_suffix}", fontsize=10)
        ax.set_xlabel("RL step (lagged-teacher steps only)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)

    fig, axes = plt.subplots(2, ncol, figsize=(5.2 * ncol, 6.6), squeeze=False)
    for j, preset in enumerate(presets):
        teacher_panel(axes[0, j], preset, [("flip_rate_correct", "-", "down-flips (correct)")],
                      "flip rate, correct completions")
        teacher_panel(axes[1, j], preset, [("flip_rate_wrong", "-", "up-flips (wrong)")],
                      "flip rate, wrong completions")
    finish(fig, "flip-rates")

    # The two teachers' mean gaps differ by orders of magnitude, so each gets its own row.
    fig, axes = plt.subplots(4, ncol, figsize=(5.2 * ncol, 12.4), squeeze=False)
    gap_pairs = [("gap_mean_correct", "-", "correct"), ("gap_mean_wrong", "--", "wrong")]
    for j, preset in enumerate(presets):
        teacher_panel(axes[0, j], preset, gap_pairs, "mean token gap g (answer-free)", hline=0.0,
                      teachers=("answer_free",))
        teacher_panel(axes[1, j], preset, gap_pairs, "mean token gap g* (privileged)", hline=0.0,
                      teachers=("privileged",))
        teacher_panel(axes[2, j], preset, [("teacher_pos_frac_correct", "-", "correct"),
                                           ("teacher_pos_frac_wrong", "--", "wrong")],
                      "frac. tokens with g > 0")
        teacher_panel(axes[3, j], preset, [("seq_gap_auc", "-", "AUC")],
                      "AUC: sum g, correct vs wrong", hline=0.5)
    finish(fig, "gaps")
    return paths


# =========================================================================================
# the report
# =========================================================================================
def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.1f}"


def _pm(m: float, s: float, scale: float = 100.0, digits: int = 1) -> str:
    if not math.isfinite(m):
        return "n/a"
    return f"{scale * m:.{digits}f} ± {scale * s:.{digits}f}"


def _verdict(preset: str, d: Mapping[str, Any], name: str = "CAST") -> str:
    n = d["n"]
    if not math.isfinite(d["mean"]):
        return f"**{preset}:** no {name} − GRPO comparison (missing runs)."
    if d["mean"] > 0:
        head = f"{name} beat GRPO here by {100 * d['mean']:.1f} accuracy points on average"
    elif d["mean"] < 0:
        head = f"{name} did **not** beat GRPO here: it was {100 * -d['mean']:.1f} accuracy points lower on average"
    else:
        head = f"{name} and GRPO tied on average"
    spread = (f"paired delta {100 * d['mean']:+.1f} ± {100 * d['std']:.1f} points over {n} seeds; "
              f"{name} better on {d['seeds_cast_better']} of {n} seeds, tied on {d['seeds_tied']}")
    rng = (f"per-seed ranges {name} [{_pct(d['cast_range'][0])}, {_pct(d['cast_range'][1])}] vs GRPO "
           f"[{_pct(d['grpo_range'][0])}, {_pct(d['grpo_range'][1])}]")
    sig = ("the ranges do not overlap, so the difference exceeds the seed spread"
           if d["ranges_disjoint"] else "the ranges overlap, so the difference does **not** exceed the seed spread")
    if math.isfinite(d["std"]) and n > 1 and abs(d["mean"]) <= d["std"]:
        sig += ", and the mean paired delta is within one std of zero"
    tail = ""
    if math.isfinite(d.get("tail_mean", float("nan"))):
        tail = (f" On the mean of the last {TAIL_EVALS} evaluations (less noisy than the final one) the paired "
                f"delta is {100 * d['tail_mean']:+.1f} ± {100 * d['tail_std']:.1f} points.")
    return f"**{preset}:** {head} ({spread}); {rng}: {sig}.{tail}"


def write_report(runs, summary: Mapping[str, Any], settings: CompareSettings, timing: Optional[Mapping] = None,
                 plots: Sequence[Path] = (), configs: Optional[Mapping[str, Sequence[Mapping[str, Any]]]] = None
                 ) -> Path:
    """Write ``REPORT_DIR/method-comparison.md`` and ``.json``; returns the markdown path.

    Args:
        runs: ``{preset: {method: {seed: records}}}`` (:func:`load_runs`).
        summary: :func:`summarize` of ``runs``.   settings: the comparison's settings.
        timing: what :func:`run_comparison` returned (optional).   plots: PNG paths to embed.
        configs: ``{preset: {method or arm: [config.json dicts of its runs]}}``
            (:func:`load_configs`); the setup section is read from them (else from the
            presets) and checked to agree across runs, apart from method, seed, output
            directory and each arm's one documented difference (:func:`arm_overrides`).
    """
    from .config import PRESETS, get_preset

    report_dir = Path(settings.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    md: list[str] = []
    w = md.append
    mode_name = "quick-mode" if settings.mode == "quick" else "full-mode"
    w("# Method comparison: GRPO vs RLSD vs RL-ZVP vs CAST" +
      (" (+ CAST with the contract's defaults)" if "cast_contract" in settings.methods else ""))
    w("")
    w(f"_Generated by `cast_torch.train.compare` from the runs' `metrics.jsonl` files; every number below is "
      f"computed from them ({mode_name} figures)._")
    w("")
    w("Regenerate (trains the runs, then writes this file and the plots; complete runs already in the run "
      "directory are reused, `--fresh` retrains them):")
    w("")
    w("```bash")
    w(settings.command or "python examples/compare_methods.py")
    w("```")
    w("")
    w(f"`--report-only` rewrites the report from the existing runs in `{settings.out}`.")
    w("")
    w("## Verdict")
    w("")
    for preset, ps in summary.items():
        if "delta_cast_grpo" in ps:
            w("- " + _verdict(preset, ps["delta_cast_grpo"]))
    contract = [(p, ps["delta_cast_contract_grpo"]) for p, ps in summary.items() if "delta_cast_contract_grpo" in ps]
    if contract:
        w("")
        w("The same for `cast_contract` (CAST with the contract's default CASTConfig instead of the preset's CAST "
          "parameters; see Setup):")
        w("")
        for preset, d in contract:
            w("- " + _verdict(preset, d, name="cast_contract"))
    w("")
    w("Final accuracy is greedy pass@1 on the preset's held-out problems at the last step. "
      "\"±\" is the sample standard deviation over seeds (ddof 1); deltas are paired by seed "
      "(run k of every method uses seed k).")
    w("")

    # -- setup -------------------------------------------------------------------------------
    w("## Setup (identical for every method" +
      (", apart from `cast_contract`'s one documented difference)" if any(a in ARMS for a in settings.methods)
       else ")"))
    w("")
    w(f"- Mode: **{settings.mode}**. Methods: {', '.join(settings.methods)}. Seeds: "
      f"{', '.join(map(str, settings.seeds))}. Presets: {', '.join(settings.presets)}.")
    has_contract = "cast_contract" in settings.methods
    w("- **No method-specific tuning**: every method runs with the preset's defaults; the only changes from "
      "the presets are the budget overrides below, applied to all methods and seeds alike (the runner refuses "
      "`--set` on settings only some methods read)" +
      (". The one exception is the `cast_contract` arm, stated below: it moves CAST *to* the contract's "
       "defaults, away from the preset's CAST-only deadband." if has_contract else "."))
    configs = configs or {}
    contract_lines: list[tuple[str, str]] = []
    for preset in settings.presets:
        ov = {**MODES[settings.mode][preset], **settings.overrides}
        by_arm = configs.get(preset, {})
        ran = [c for cs in by_arm.values() for c in cs]
        ref = _reference_config(by_arm)
        cfg_dict = ref if ref is not None else get_preset(preset, **ov).to_dict()
        cfg = _ConfigView(cfg_dict)
        w(f"- `{preset}` overrides: `{json.dumps(ov, sort_keys=True)}` → {cfg.max_steps} RL steps × "
          f"{cfg.prompts_per_step} prompts × G = {cfg.group_size} completions (N = "
          f"{cfg.prompts_per_step * cfg.group_size}), lr {cfg.lr:g} (warm-up {cfg.warmup_steps}), temperature "
          f"{cfg.temperature:g}, max_new_tokens {cfg.max_new_tokens}, teacher `{cfg.teacher}` refreshed every "
          f"{cfg.teacher_refresh_steps} steps, CAST λ0 {cfg.cast['lam']:g} (decay steps "
          f"{cfg.cast['lam_decay_steps']}), eval every {cfg.eval_every} steps on {cfg.eval_size} held-out problems.")
        arms_here = [a for a in by_arm if a in ARMS]
        if ran:
            bad = sorted({k for a, cs in by_arm.items() for c in cs for k in unexpected_differences(ref, c, a)})
            allowed = (" and the documented difference of " + ", ".join(f"`{a}`" for a in arms_here)) \
                if arms_here else ""
            w(f"  - Checked from the {len(ran)} runs' `config.json`: their settings are "
              f"{'identical' if not bad else '**NOT identical**'} apart from method, seed and output directory"
              f"{allowed}" + (f" (differing: {', '.join(f'`{k}`' for k in bad)})." if bad else "."))
        if has_contract:
            contract_lines.append((preset, _contract_difference(cfg_dict)))
        tuned = _method_specific_differences(cfg_dict)
        if tuned:
            w(f"  - Method-specific settings that the **preset** (not this comparison) sets away from the library "
              f"defaults: {', '.join(tuned)}. They come with the preset as its author chose them (see the preset "
              "comments in `cast_torch/train/config.py`); the comparison changes no method-specific setting" +
              (" except in the `cast_contract` arm." if has_contract else "."))
    if contract_lines:
        if len({line for _p, line in contract_lines}) == 1:
            stated = f"(every preset).** {contract_lines[0][1]}"
        else:
            stated = ".** " + " ".join(f"`{p}`: {line}" for p, line in contract_lines)
        w(f"- **One documented difference {stated} It shows CAST with the library/contract defaults beside CAST as the preset configures it, so the "
          "preset's CAST-only deadband is not the only CAST in the comparison.")
    w(f"- Run plumbing (no effect on learning): `{json.dumps(_PLUMBING, sort_keys=True)}`, "
      f"{settings.threads} torch thread(s) per run, {settings.jobs} run(s) at a time.")
    warm = (timing or {}).get("warm_start", {})
    w("- **Same starting model**: every run of a preset loads the same cached warm-started tiny model (the "
      "cache key hashes only the model and warm-start settings, never the seed or method, and the runner "
      "checks that all runs of a preset share it). The seed changes the prompt order, the sampling and the "
      "minibatch shuffling, not the starting weights, the training problems or the evaluation set.")
    for preset, info in warm.items():
        w(f"  - `{preset}`: warm start `{info['key']}` ({info['warm_start_steps']} supervised steps; "
          f"{info['source']}, {info['seconds']:.0f}s in this invocation).")
    w("- The privileged teacher (CAST runs only) is analysis only: the same lagged teacher weights scored "
      f"with the context `{settings.privileged_template!r}`; its gaps never enter the advantages "
      "(`cast_torch.train.analysis`)." if settings.privileged else
      "- The privileged-teacher analysis was switched off (`--no-privileged`).")
    w("- RLSD here uses the trainer's answer-free lagged teacher (the same one CAST uses), not the privileged "
      "teacher of the RLSD paper.")
    if timing:
        per_run = timing.get("per_run_seconds", {})
        w(f"- Wall time of the last invocation: {timing['total_seconds'] / 60:.1f} min ({timing['trained']} runs "
          f"trained, {timing.get('reused', 0)} reused); training time summed over the {len(per_run)} runs: "
          f"{sum(per_run.values()) / 60:.1f} min ({settings.jobs} at a time, on 2 CPU cores shared with other "
          "work).")
    w("")

    # -- per preset -------------------------------------------------------------------------
    for preset, ps in summary.items():
        w(f"## {preset}")
        w("")
        seeds = sorted({s for m in ps["methods"].values() for s in m["final"]})
        w("Final greedy eval accuracy (%):")
        w("")
        header = ("| method | mean ± std | " + " | ".join(f"seed {s}" for s in seeds) +
                  f" | Δ vs GRPO (paired) | last-{TAIL_EVALS}-eval mean ± std | step-0 |")
        w(header)
        w("|" + "---|" * (len(seeds) + 5))
        grpo = ps["methods"].get("grpo")
        for method, m in ps["methods"].items():
            cells = [_pct(m["final"].get(s, float("nan"))) for s in seeds]
            if grpo is not None and method != "grpo":
                d = [m["final"][s] - grpo["final"][s] for s in seeds if s in m["final"] and s in grpo["final"]]
                dm, ds = _mean_std(d)
                delta = f"{100 * dm:+.1f} ± {100 * ds:.1f}"
            else:
                delta = "—"
            start = sorted(set(round(v, 6) for v in m["start"].values()))
            start_s = "/".join(_pct(v) for v in start) if start else "n/a"
            w(f"| {method} | {_pm(m['final_mean'], m['final_std'])} | " + " | ".join(cells) +
              f" | {delta} | {_pm(m['tail_mean'], m['tail_std'])} | {start_s} |")
        w("")
        for key, name in (("delta_cast_grpo", "CAST"), ("delta_cast_contract_grpo", "cast_contract")):
            if key in ps:
                d = ps[key]
                w(f"{name} − GRPO per seed: " +
                  ", ".join(f"seed {s}: {100 * v:+.1f}" for s, v in d["per_seed"].items()) +
                  f"; mean {100 * d['mean']:+.1f} ± {100 * d['std']:.1f} points.")
                w("")
        w("Training dynamics (mean over all RL steps, then mean ± std over seeds):")
        w("")
        w("| method | reward (%) | all-correct groups (%) | all-wrong groups (%) | mixed groups (%) | entropy | s/step |")
        w("|---|---|---|---|---|---|---|")
        for method, m in ps["methods"].items():
            dy = m["dynamics"]
            w(f"| {method} | {_pm(dy['reward_mean']['mean'], dy['reward_mean']['std'])} | "
              f"{_pm(dy['frac_all_correct']['mean'], dy['frac_all_correct']['std'])} | "
              f"{_pm(dy['frac_all_wrong']['mean'], dy['frac_all_wrong']['std'])} | "
              f"{_pm(dy['frac_mixed']['mean'], dy['frac_mixed']['std'])} | "
              f"{_pm(dy['entropy']['mean'], dy['entropy']['std'], 1.0, 3)} | "
              f"{_pm(dy['step_time']['mean'], dy['step_time']['std'], 1.0, 2)} |")
        w("")
        if "gaps" in ps:
            _write_gap_section(w, preset, ps["gaps"], ps.get("gaps_cast_contract"))

    # -- plots ---------------------------------------------------------------------------------
    if plots:
        w("## Plots")
        w("")
        w("Lines are the mean over seeds, bands the min..max over seeds. Step metrics use a trailing 5-step "
          "moving average when a run has 15+ steps. Teacher diagnostics are drawn only at steps where the "
          "snapshot teacher differs from the policy (the gap is identically 0 on the step right after each "
          "refresh and on step 1, when the teacher is still the starting model).")
        w("")
        captions = {"eval-accuracy": "Greedy eval accuracy vs step", "reward": "Mean training reward",
                    "zero-variance": "Zero-variance groups: all-correct (top), all-wrong (bottom)",
                    "flip-rates": "CAST flip rates: answer-free teacher vs what the privileged teacher would flip",
                    "gaps": "Gap diagnostics of CAST runs, correct vs wrong completions, answer-free vs privileged teacher"}
        for p in plots:
            key = p.stem[len(REPORT_NAME) + 1:]
            w(f"### {captions.get(key, key)}")
            w("")
            w(f"![{key}]({p.name})")
            w("")

    # -- caveats ------------------------------------------------------------------------------
    w("## Caveats")
    w("")
    w("- A tiny character-level model on synthetic arithmetic, a few minutes of CPU per run: this measures the "
      "estimators on a controlled task, not the paper's setting (a 1.5B–8B model on math benchmarks).")
    evals = sorted({get_preset(p).eval_size for p in settings.presets if p in PRESETS})
    if evals:
        n = evals[0]
        w(f"- The evaluation set has {n} problems, so one problem is {100 / n:.2f} points and the binomial "
          f"standard error of an accuracy near 50% is about {100 * math.sqrt(0.25 / n):.1f} points per run.")
    if settings.mode == "quick":
        w("- **Quick mode**: very short runs with small batches; differences this small in budget mostly reflect "
          "noise. The full mode (`--mode full`, the presets' own budgets) is the fairer comparison.")
    w("- The privileged teacher's context is out of distribution for the tiny model (it never saw an answer in "
      "its prompt during the warm start), so its gap measures how well a small model *can* exploit the hint, "
      "not the paper's large-model privileged teacher.")
    w("")

    path = report_dir / f"{REPORT_NAME}.md"
    path.write_text("\n".join(md))
    refs = {p: _reference_config(by_arm) for p, by_arm in configs.items()}
    refs = {p: r for p, r in refs.items() if r is not None}
    if refs:
        w("## Exact run settings")
        w("")
        for preset, ref in refs.items():
            shown = {k: v for k, v in ref.items() if k not in ("method", "seed", "out")}
            arms_note = "".join(f"; `{a}` runs differ only in {', '.join(f'`{k}`' for k in arm_overrides(a))} "
                                "as stated in Setup" for a in configs[preset] if a in ARMS)
            w(f"<details><summary><code>{preset}</code>: the TrainConfig of every run (method, seed and out "
              f"differ{arms_note})</summary>")
            w("")
            w("```json")
            w(json.dumps(shown, indent=1, sort_keys=True))
            w("```")
            w("")
            w("</details>")
            w("")
    payload = {"mode": settings.mode, "command": settings.command, "settings": _settings_json(settings),
               "timing": timing, "summary": summary, "configs": refs,
               "arm_overrides": {a: arm_overrides(a) for a in settings.methods if a in ARMS}}
    (report_dir / f"{REPORT_NAME}.json").write_text(json.dumps(_jsonable(payload), indent=1, sort_keys=True))
    return path


def _write_gap_section(w: Callable[[str], None], preset: str, gaps: Mapping[str, Any],
                       contract: Optional[Mapping[str, Any]] = None) -> None:
    teachers = [t for t in ("answer_free", "privileged") if t in gaps]
    lag = gaps["lagged_steps"]
    tot = gaps["total_steps"]
    rows = [("cast", t, gaps) for t in teachers]
    extra = ""
    if contract is not None:
        rows += [("cast_contract", t, contract) for t in ("answer_free", "privileged") if t in contract]
        extra = (f" of the `cast` runs and the {sum(contract['lagged_steps'].values())} of "
                 f"{sum(contract['total_steps'].values())} of the `cast_contract` runs")
    w(f"Teacher-gap diagnostics of the CAST runs (average over the {sum(lag.values())} of {sum(tot.values())} "
      f"steps{extra}, all seeds, where the lagged teacher differs from the policy; then mean ± std over seeds). "
      "Token fractions, mean gaps and flip rates are read after the run's own deadband, as the estimator sees "
      "them (so the `cast_contract` rows use the contract's deadband); the AUC uses the raw summed gap of each "
      "completion, within groups that have both correct and wrong ones:")
    w("")
    w("| run | teacher | g>0 frac, correct (%) | g>0 frac, wrong (%) | mean g, correct | mean g, wrong | "
      "AUC of Σg (correct vs wrong) | down-flip rate (%) | up-flip rate (%) |")
    w("|---|---|---|---|---|---|---|---|---|")
    for arm, t, src in rows:
        s = src[t]
        w(f"| {arm} | {t.replace('_', '-')} | {_pm(s['teacher_pos_frac_correct']['mean'], s['teacher_pos_frac_correct']['std'])} | "
          f"{_pm(s['teacher_pos_frac_wrong']['mean'], s['teacher_pos_frac_wrong']['std'])} | "
          f"{_pm(s['gap_mean_correct']['mean'], s['gap_mean_correct']['std'], 1.0, 4)} | "
          f"{_pm(s['gap_mean_wrong']['mean'], s['gap_mean_wrong']['std'], 1.0, 4)} | "
          f"{_pm(s['seq_gap_auc']['mean'], s['seq_gap_auc']['std'], 1.0, 3)} | "
          f"{_pm(s['flip_rate_correct']['mean'], s['flip_rate_correct']['std'])} | "
          f"{_pm(s['flip_rate_wrong']['mean'], s['flip_rate_wrong']['std'])} |")
    w("")
    if contract is not None:
        w("The notes below are about the `cast` runs:")
        w("")
    for t in teachers:
        s = gaps[t]
        name = t.replace("_", "-")
        auc = s["seq_gap_auc"]["mean"]
        k, n = s["auc_steps_above"], s["auc_steps_above"] + s["auc_steps_below"]
        pk, pn = s["pos_frac_steps_higher_on_correct"], s["pos_frac_steps"]
        if not math.isfinite(auc) or n == 0:
            w(f"- {name} teacher: no step with a mixed group and a non-zero gap, so no alignment estimate.")
            continue
        side = "above" if auc > 0.5 else ("below" if auc < 0.5 else "at")
        chance = ("better aligned with correctness than chance" if auc > 0.5 and s["auc_sign_p"] < 0.05 else
                  "anti-aligned with correctness" if auc < 0.5 and s["auc_sign_p"] < 0.05 else
                  "not distinguishable from chance at the 5% level")
        w(f"- {name} teacher: within-group AUC of the completion's summed gap {auc:.3f} ({side} the chance level "
          f"0.5); per-step AUC above 0.5 on {k} of {n} informative steps (two-sided sign test p = "
          f"{s['auc_sign_p']:.3g}) → {chance}. The teacher-positive token fraction was higher on correct than on "
          f"wrong completions on {pk} of {pn} steps (p = {s['pos_frac_sign_p']:.3g}).")
    af = gaps["answer_free"]["seq_gap_auc"]["mean"]
    if math.isfinite(af) and af < 0.5 and gaps["answer_free"]["auc_sign_p"] < 0.05:
        w("- Reading an answer-free AUC below 0.5: the lagged teacher is an *older copy of the policy*. While RL "
          "raises the probability of correct completions, the current policy already gives them more mass than "
          "the older teacher, so g = log π_T − log π_old tends to be negative on correct and positive on wrong "
          "completions. This is one mechanism that produces the anti-alignment; these runs do not isolate it.")
    if "privileged" in teachers:
        a, p = gaps["answer_free"]["seq_gap_auc"]["mean"], gaps["privileged"]["seq_gap_auc"]["mean"]
        if math.isfinite(a) and math.isfinite(p):
            if a == p:
                w(f"- Answer-free vs privileged: the same AUC ({a:.3f}).")
            else:
                hi, lo = ("answer-free", "privileged") if a > p else ("privileged", "answer-free")
                w(f"- Answer-free vs privileged: AUC {a:.3f} vs {p:.3f} (0.5 = chance): the {hi} teacher's summed gap "
                  f"ranks a correct completion above a wrong one of the same prompt more often than the {lo} "
                  "teacher's does.")
    w("")


def _method_specific_differences(cfg: Mapping[str, Any]) -> list[str]:
    """Method-specific settings of a saved config that differ from the library defaults."""
    from cast_core.config import CASTConfig
    from .config import TrainConfig

    out = []
    default_cast = json.loads(json.dumps(CASTConfig().to_dict()))
    for k, v in (cfg.get("cast") or {}).items():
        if k in default_cast and default_cast[k] != v:
            out.append(f"`cast.{k}` = {v} (default {default_cast[k]})")
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for k in _METHOD_SPECIFIC:
        if k != "cast" and k in cfg and k in defaults and cfg[k] != defaults[k]:
            out.append(f"`{k}` = {cfg[k]} (default {defaults[k]})")
    return out


class _ConfigView:
    """Attribute access to a saved ``config.json`` dict."""

    def __init__(self, d: Mapping[str, Any]) -> None:
        self.__dict__.update(d)


def _reference_config(by_arm: Mapping[str, Sequence[Mapping[str, Any]]]) -> Optional[dict[str, Any]]:
    """The config the others are checked against: the first plain-method run's. With only
    arms in the grid, the first run's: :func:`unexpected_differences` applies the arm's
    overrides to the reference, which leaves an arm's own config unchanged."""
    for arm, cs in by_arm.items():
        if arm not in ARMS and cs:
            return dict(cs[0])
    for cs in by_arm.values():
        if cs:
            return dict(cs[0])
    return None


def _fmt_setting(v: Any) -> str:
    return "(" + ", ".join(str(x) for x in v) + ")" if isinstance(v, (list, tuple)) else str(v)


def _contract_difference(preset_cfg: Mapping[str, Any]) -> str:
    """The sentence stating ``cast_contract``'s one difference from the preset's config."""
    default = arm_overrides("cast_contract")["cast"]
    preset_cast = json.loads(json.dumps(preset_cfg.get("cast") or {}))
    diffs = [k for k in default if preset_cast.get(k) != default[k]]
    if not diffs:
        return ("cast_contract: CAST with the contract's default CASTConfig, which this preset already uses; "
                "nothing else differs.")
    what = " and ".join(f"{k} {_fmt_setting(default[k])}" for k in diffs)
    was = " and ".join(_fmt_setting(preset_cast.get(k)) for k in diffs)
    return f"cast_contract: CAST with the contract's default {what} instead of the preset's {was}; nothing else differs."


def load_configs(root: str | os.PathLike, presets: Sequence[str], methods: Sequence[str],
                 seeds: Sequence[int]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{preset: {method or arm: [config.json of each run that has one]}}``."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for preset in presets:
        for method in methods:
            for seed in seeds:
                f = Path(root) / preset / method / f"seed{seed}" / "config.json"
                if f.is_file():
                    out.setdefault(preset, {}).setdefault(method, []).append(json.loads(f.read_text()))
    return out


def _settings_json(settings: CompareSettings) -> dict[str, Any]:
    d = dataclasses.asdict(settings)
    d["overrides"] = dict(settings.overrides)
    return d


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def make_report(settings: CompareSettings, timing: Optional[Mapping[str, Any]] = None) -> Path:
    """Load the runs of ``settings`` and write the report and plots; returns the report path."""
    runs = load_runs(settings.out, settings.presets, settings.methods, settings.seeds)
    if timing is None:
        tfile = Path(settings.out) / "timing.json"
        timing = json.loads(tfile.read_text()) if tfile.is_file() else None
    summary = summarize(runs)
    suffix = " (quick mode)" if settings.mode == "quick" else ""
    plots = plot_comparison(runs, settings.report_dir, title_suffix=suffix)
    configs = load_configs(settings.out, settings.presets, settings.methods, settings.seeds)
    return write_report(runs, summary, settings, timing, plots, configs)


# =========================================================================================
# entry point
# =========================================================================================
def run(settings: CompareSettings, log: Callable[[str], None] = print) -> Path:
    """Train (unless ``report_only``) and write the report; returns the report path."""
    timing = None
    if not settings.report_only:
        timing = run_comparison(settings, log=log)
    path = make_report(settings, timing)
    log(f"[compare] report: {path}")
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``cast-train compare`` / ``examples/compare_methods.py``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        settings = settings_from_args(parser.parse_args(argv), argv)
    except ValueError as e:
        parser.error(str(e))   # exits with status 2 and the message on stderr
    run(settings)
    return 0


if __name__ == "__main__":   # pragma: no cover
    sys.exit(main())
