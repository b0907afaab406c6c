"""benchmarks/gpu_check.py in its CPU smoke mode: the GPU script's code paths run end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_cpu_smoke_runs_every_section(tmp_path):
    out = tmp_path / "gpu-check.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu-smoke", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["smoke"] is True
    assert [r["dtype"] for r in result["conformance"]] == ["float64", "float32", "bfloat16"]
    assert all(r["failed"] == 0 and r["passed"] > 100 for r in result["conformance"])
    assert result["bench_torch"] and all(r["tokens_per_s"] > 0 for r in result["bench_torch"])
    rows = {r["config"]: r for r in result["trainer"]["rows"]}
    assert set(rows) == {"ours-grpo-full", "trl-grpo-full", "ours-cast-lora", "bridge-cast-lora"}
    for r in rows.values():
        assert "error" not in r, r
        # Fixed-length generation on both sides: every completion has exactly max_new_tokens tokens.
        assert r["tokens_per_step"] == 2 * 2 * 4 and r["step_min"] > 0
    table = done.stdout
    assert table.count("| trainer |") == 5 and "| ratio |" in table
