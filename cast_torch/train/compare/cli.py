"""``cast-train compare`` / ``examples/compare_methods.py``: arguments and the pipeline.

    train (run.py) → load the runs → summary (summary.py) → method-comparison.json
    → plots (plots.py, from method-comparison-curves.json) → method-comparison.md (report.py)

``--no-train`` starts at "load the runs"; ``--report-only`` re-renders the Markdown (and
the plots, when the curves file is there) from ``REPORT_DIR``'s JSON alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .grid import CompareSettings, _check_template, list_grids, load_grid, select
from .plots import REPORT_NAME, SMOOTH_MIN_STEPS, SMOOTH_WINDOW, plot_curves, plot_entries
from .report import write_report
from .run import load_configs, load_runs, run_comparison
from .summary import SCHEMA, curves, jsonable, summarize

__all__ = ["MODES", "DEFAULT_GRID", "build_parser", "parse_args", "settings_from_args", "make_report",
           "rerender", "run", "main"]

# --quick / --mode NAME: the built-in grids of configs/experiments/.
MODES = {"quick": "tiny-quick", "full": "tiny-full"}
DEFAULT_GRID = MODES["full"]
# Options that choose what to train: meaningless for --report-only, which reads the JSON alone.
_GRID_OPTIONS = {"grid": "--grid", "quick": "--quick", "mode": "--mode", "presets": "--presets",
                 "methods": "--methods", "seeds": "--seeds", "out": "--out", "overrides": "--set", "fresh": "--fresh",
                 "no_privileged": "--no-privileged", "privileged_template": "--privileged-template",
                 "no_train": "--no-train"}


def build_parser(parser: Optional[argparse.ArgumentParser] = None) -> argparse.ArgumentParser:
    """The comparison's arguments (added to ``parser`` when given, e.g. a CLI subcommand)."""
    p = parser or argparse.ArgumentParser(
        prog="cast-train compare",
        description="Train every arm of an experiment grid (presets × arms × seeds, a TOML file in "
                    "configs/experiments/) with the same budget, data and seeds, and write "
                    "REPORT_DIR/method-comparison.md with its JSON and plots.")
    p.add_argument("--grid", default=None,
                   help=f"Experiment grid: a name in configs/experiments/ or a .toml path (default {DEFAULT_GRID}).")
    p.add_argument("--quick", action="store_true", help=f"The quick grid ({MODES['quick']}: <= 10 min on 2 CPU cores).")
    p.add_argument("--mode", choices=sorted(MODES), default=None,
                   help="quick or full: the grids " + ", ".join(f"{k} = {v}" for k, v in MODES.items()) + ".")
    p.add_argument("--presets", default=None, help="Comma-separated subset of the grid's presets.")
    p.add_argument("--methods", default=None,
                   help="Comma-separated arms: the grid's (e.g. cast_contract: CAST with the contract's default "
                        "CASTConfig) or plain methods (grpo, rlsd, rl_zvp, cast, opsd). Default: the grid's arms.")
    p.add_argument("--seeds", default=None, help="Comma-separated seeds (ints >= 0; default: the grid's).")
    p.add_argument("--out", default=None, help="Run directory root (default: the grid's `out`).")
    p.add_argument("--report-dir", default="reports", help="Where method-comparison.md, its JSON and the PNGs go.")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="A TrainConfig setting applied to EVERY run (TOML value syntax); repeatable. Settings "
                        "read by only some methods (cast.*, rlsd_*, zvp_alpha, teacher*) are refused.")
    p.add_argument("--jobs", type=int, default=1, help="Runs in parallel (processes; 1 or 2 on 2 cores).")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run.")
    p.add_argument("--no-privileged", action="store_true", help="Skip the privileged-teacher analysis of CAST runs.")
    p.add_argument("--privileged-template", default=None,
                   help="Privileged teacher context with {prompt} and {answer} (analysis only; default: the grid's).")
    p.add_argument("--fresh", action="store_true", help="Retrain runs whose results already exist.")
    p.add_argument("--no-train", action="store_true",
                   help="Train nothing: summarise the existing runs in --out and write the report.")
    p.add_argument("--report-only", action="store_true",
                   help="Only re-render REPORT_DIR/method-comparison.md (and its plots, when "
                        "method-comparison-curves.json is there) from REPORT_DIR/method-comparison.json.")
    p.add_argument("--list-grids", action="store_true", help="List the grids in configs/experiments/ and exit.")
    return p


def _csv(text: str, what: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ValueError(f"{what}: empty list")
    if len(set(items)) != len(items):
        raise ValueError(f"{what}: duplicate entries in {text!r}")
    return items


def _seeds(text: str) -> list[int]:
    out = []
    for s in _csv(text, "--seeds"):
        try:
            v = int(s)
        except ValueError:
            raise ValueError(f"--seeds: {s!r} is not an integer") from None
        if v < 0:
            raise ValueError(f"--seeds: {v} is negative")
        out.append(v)
    return out


def settings_from_args(args: argparse.Namespace, argv: Sequence[str] = ()) -> CompareSettings:
    """Validate parsed arguments into :class:`CompareSettings` (``ValueError`` naming the argument)."""
    from ..cli import set_layer
    from .grid import check_shared_settings

    for name in ("jobs", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name}: must be >= 1, got {getattr(args, name)}")
    if args.report_only:
        given = [flag for dest, flag in _GRID_OPTIONS.items() if getattr(args, dest) not in (None, False, [])]
        if given:
            raise ValueError(f"--report-only re-renders {args.report_dir}/{REPORT_NAME}.json alone; drop {given[0]}")
        return CompareSettings(grid=None, report_dir=args.report_dir, action="render")
    chosen = [x for x in (args.grid and f"--grid {args.grid}", args.quick and "--quick",
                          args.mode and f"--mode {args.mode}") if x]
    if len(chosen) > 1 and not (args.quick and args.mode == "quick" and not args.grid):
        raise ValueError(f"{chosen[0]} conflicts with {chosen[1]}")
    name = args.grid or MODES["quick" if args.quick else args.mode or "full"]
    grid = load_grid(name)
    grid = select(grid, presets=_csv(args.presets, "--presets") if args.presets is not None else None,
                  arms=_csv(args.methods, "--methods") if args.methods is not None else None,
                  seeds=_seeds(args.seeds) if args.seeds is not None else None)
    if args.no_privileged or args.privileged_template is not None:
        template = args.privileged_template if args.privileged_template is not None else grid.privileged_template
        _check_template(template, "--privileged-template")
        grid = dataclasses.replace(grid, privileged=not args.no_privileged, privileged_template=template)
    overrides = set_layer(args.overrides)
    check_shared_settings(overrides, "--set")
    return CompareSettings(
        grid=grid, out=args.out or grid.out, report_dir=args.report_dir, overrides=overrides, jobs=args.jobs,
        threads=args.threads, fresh=args.fresh, action="summarize" if args.no_train else "train",
        command=" ".join(shlex.quote(a) for a in [*_invocation(), *(a for a in argv if a != "--no-train")]))


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
# the pipeline
# =========================================================================================
def _write_json(path: Path, data: Any, indent: Optional[int] = 1) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(jsonable(data), indent=indent, allow_nan=False), encoding="utf-8")
    os.replace(tmp, path)


def _finish(summary: dict[str, Any], report_dir: Path, curves_data: Optional[dict[str, Any]]) -> Path:
    """Plots (from the curves), then the JSON, then the Markdown rendered from that JSON."""
    if curves_data is not None:
        teacher = next((c["teacher_arm"] for c in curves_data.values() if c["teacher_arm"]), None)
        label = next((a["label"] for a in summary["grid"]["arms"] if a["name"] == teacher), None)
        paths = plot_curves(curves_data, summary["grid"]["arms"], report_dir, title_suffix=f" ({summary['grid']['name']})")
        summary["plots"] = plot_entries(paths, label)
    summary["plot_note"] = {"window": SMOOTH_WINDOW, "min_steps": SMOOTH_MIN_STEPS}
    _write_json(report_dir / f"{REPORT_NAME}.json", summary)
    # Rendered from the file just written, so --report-only reproduces it exactly.
    return write_report(json.loads((report_dir / f"{REPORT_NAME}.json").read_text(encoding="utf-8")), report_dir)


def make_report(settings: CompareSettings, timing: Optional[dict[str, Any]] = None) -> Path:
    """Load the runs of ``settings`` and write the JSON, curves, plots and report; returns the report path."""
    grid = settings.grid
    arms = [a.name for a in grid.arms]
    runs = load_runs(settings.out, grid.presets, arms, grid.seeds)
    if timing is None:
        tfile = Path(settings.out) / "timing.json"
        timing = json.loads(tfile.read_text()) if tfile.is_file() else None
    summary = summarize(runs, settings, load_configs(settings.out, grid.presets, arms, grid.seeds), timing)
    report_dir = Path(settings.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    teacher = next((a.name for a in grid.arms if a.method == "cast"), None)
    curves_data = jsonable(curves(runs, teacher))
    _write_json(report_dir / f"{REPORT_NAME}-curves.json", curves_data, indent=None)
    return _finish(summary, report_dir, curves_data)


def rerender(report_dir: str | os.PathLike) -> Path:
    """``--report-only``: re-render the report (and the plots, when the curves file is there) from the JSON."""
    report_dir = Path(report_dir)
    path = report_dir / f"{REPORT_NAME}.json"
    if not path.is_file():
        raise ValueError(f"--report-only: {str(path)!r} not found; run the comparison (or --no-train) first")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"--report-only: {path} is not JSON: {e}") from None
    if not isinstance(summary, dict) or summary.get("schema") != SCHEMA:
        raise ValueError(f"--report-only: {path} has schema {summary.get('schema') if isinstance(summary, dict) else None!r}, "
                         f"this version renders schema {SCHEMA}; re-summarise the runs with --no-train")
    cfile = report_dir / f"{REPORT_NAME}-curves.json"
    curves_data = json.loads(cfile.read_text(encoding="utf-8")) if cfile.is_file() else None
    if curves_data is None:
        # Keep the plots already there (e.g. a summary migrated without its curves).
        summary["plots"] = [p for p in summary.get("plots", []) if (report_dir / p["file"]).is_file()]
    return _finish(summary, report_dir, curves_data)


def run(settings: CompareSettings, log: Callable[[str], None] = print) -> Path:
    """Do ``settings.action`` (train, then report; summarise existing runs; or re-render); returns the report path."""
    if settings.action == "render":
        path = rerender(settings.report_dir)
    else:
        timing = run_comparison(settings, log=log) if settings.action == "train" else None
        path = make_report(settings, timing)
    log(f"[compare] report: {path}")
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``cast-train compare`` / ``examples/compare_methods.py``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_grids:
        print("\n".join(list_grids()))
        return 0
    try:
        settings = settings_from_args(args, argv)
        run(settings)
    except ValueError as e:
        parser.error(str(e))   # exits with status 2 and the message on stderr
    return 0
