"""Method comparison: train every arm of an experiment grid under one budget and report it.

``cast-train compare`` / ``python examples/compare_methods.py`` trains every
(preset, arm, seed) of a grid with **identical settings** — the preset's defaults plus
the grid's settings, applied to every arm alike — apart from each arm's one documented
difference (e.g. ``cast_contract``: CAST with the contract's default ``CASTConfig``).
Every run of a preset starts from the same model (the tiny presets: one cached warm
start, checked), sees the same training problems and evaluation set; run ``k`` of every
arm uses seed ``k``, so deltas are paired by seed. CAST runs are also scored with a
privileged teacher (analysis only, :mod:`cast_torch.train.analysis`).

Modules, in pipeline order:

- :mod:`.grid`: what to run — a grid is a TOML file (``configs/experiments/*.toml``:
  presets, arms with their overrides, seeds, settings such as the budget, the model or
  LoRA), and the "differs only in" checks;
- :mod:`.run`: training the grid (reuse of complete runs, a process pool, a lock on the
  run root) and reading the run folders back;
- :mod:`.summary`: pure functions, metrics records → the JSON summary with every figure
  the report shows, statistics included;
- :mod:`.plots`: the summary's per-seed curves → PNGs (matplotlib);
- :mod:`.report`: the summary JSON → Markdown, with no computation;
- :mod:`.cli`: the arguments and the pipeline (``--no-train``: summarise existing runs;
  ``--report-only``: re-render from the JSON alone).

Outputs: runs in ``OUT/<preset>/<arm>/seed<k>/``; ``REPORT_DIR/method-comparison.md``,
``method-comparison.json`` (the summary), ``method-comparison-curves.json`` (the plotted
series) and ``method-comparison-*.png``.
"""

from __future__ import annotations

from .cli import MODES, build_parser, main, make_report, parse_args, rerender, run, settings_from_args
from .grid import (Arm, CompareSettings, Grid, grid_from_mapping, list_grids, load_grid, run_configs, select,
                   unexpected_differences)
from .plots import plot_curves
from .report import render, sections, write_report
from .run import is_complete, load_configs, load_runs, run_comparison
from .summary import curves, summarize

__all__ = [
    "Arm", "Grid", "CompareSettings", "MODES", "grid_from_mapping", "load_grid", "list_grids", "select",
    "run_configs", "unexpected_differences", "run_comparison", "is_complete", "load_runs", "load_configs",
    "summarize", "curves", "plot_curves", "render", "sections", "write_report", "make_report", "rerender",
    "build_parser", "parse_args", "settings_from_args", "run", "main",
]
