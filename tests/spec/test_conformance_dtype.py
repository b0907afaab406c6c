"""The runner's precision option: float32 inputs are checked at the float32 tolerance, float64
stays at the spec's, and neither hides a wrong rule."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cast_core
from cast_core.conformance import DTYPE_TOLERANCES, run_conformance

ROOT = Path(__file__).resolve().parents[2]


def float32_port(rewards, group_ids, gaps, mask, config, step):
    """A float32 implementation: cast_core's rules, every result rounded to float32."""
    return cast_core.cast_advantages(rewards, group_ids, gaps, mask, config=config, step=step).astype(np.float32)


def seen_dtypes():
    seen = set()

    def port(rewards, group_ids, gaps, mask, config, step):
        seen.update({("rewards", str(rewards.dtype)), ("gaps", str(gaps.dtype)), ("group_ids", str(group_ids.dtype))})
        return cast_core.cast_advantages(rewards, group_ids, gaps, mask, config=config, step=step)
    return seen, port


def test_float32_inputs_are_rounded_and_ids_left_alone():
    seen, port = seen_dtypes()
    report = run_conformance(impl=port, only="worked_example_*", dtype="float32")
    assert report.ok
    assert seen == {("rewards", "float32"), ("gaps", "float32"), ("group_ids", "int64")}


def test_float32_port_passes_at_float32_and_fails_at_float64():
    at32 = run_conformance(impl=float32_port, dtype="float32")
    assert at32.ok, at32.table()
    at64 = run_conformance(impl=float32_port)
    # Rounding 1.025 to float32 is an error of ~2e-8, far above the spec's 1e-12 + 1e-9·|x|.
    assert "worked_example_group_1100" in {r.name for r in at64.failures}
    assert at64.failed >= 20


def test_float32_tolerance_still_catches_a_wrong_rule_and_a_small_bias():
    def no_down_flip(rewards, group_ids, gaps, mask, config, step):
        return float32_port(rewards, group_ids, gaps, mask, dataclasses.replace(config, flip_correct=False), step)

    def biased(rewards, group_ids, gaps, mask, config, step):
        out = float32_port(rewards, group_ids, gaps, mask, config, step)
        return out * np.float32(1 + 5e-5)  # 5x the float32 rtol

    wrong = run_conformance(impl=no_down_flip, dtype="float32")
    assert "positive_side_down_flip" in {r.name for r in wrong.failures}
    assert not run_conformance(impl=biased, only="worked_example_*", dtype="float32").ok


def test_tolerance_table_and_bad_dtype():
    assert DTYPE_TOLERANCES["float64"] is None  # the vectors' own atol/rtol
    atol, rtol = DTYPE_TOLERANCES["float32"]
    assert 0 < atol <= 1e-5 and 0 < rtol <= 1e-4
    with pytest.raises(ValueError, match="dtype: must be one of"):
        run_conformance(dtype="float16")


def test_cli_dtype_option():
    proc = subprocess.run([sys.executable, "-m", "cast_core.conformance", "--dtype", "float32",
                           "--only", "worked_example_*"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-2].startswith("inputs in float32; tolerance atol=1e-06") and lines[-1] == "6 passed, 0 failed"
    bad = subprocess.run([sys.executable, "-m", "cast_core.conformance", "--dtype", "float16"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--dtype" in bad.stderr
