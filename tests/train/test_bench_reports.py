"""The committed benchmark reports are rendered from their committed JSON, never written by hand."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REPORTS = REPO / "reports"
# bench-real.md: one section per side-by-side run, newest first (the order of --json on --render-only).
BENCH_REAL_RUNS = ["bench-real-current.json", "bench-real-current-fixed.json",
                   "bench-real-natural.json", "bench-real-fixed.json"]


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        yield lambda name: importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


@pytest.mark.parametrize("name", ["bench_rollout", "bench_scoring"])
def test_single_run_reports_match_their_json(bench, name):
    stem = name.replace("_", "-")
    data = json.loads((REPORTS / f"{stem}.json").read_text())
    assert bench(name).render(data) == (REPORTS / f"{stem}.md").read_text()


def test_bench_real_report_matches_its_json_runs(bench, tmp_path):
    mod = bench("bench_real")
    out = tmp_path / "bench-real.md"
    assert mod.main(["--render-only", "--json", ",".join(str(REPORTS / f) for f in BENCH_REAL_RUNS),
                     "--md", str(out)]) == 0
    assert out.read_text() == (REPORTS / "bench-real.md").read_text()
    for f in BENCH_REAL_RUNS:   # every run names the commit it measured
        assert json.loads((REPORTS / f).read_text())["commit"]
