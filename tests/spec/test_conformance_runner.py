"""The conformance runner: passes cast_core, passes an oracle-backed port, fails a
deliberately wrong port (one that skips the down-flip), and its comparator catches
what it should."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cast_core import conformance
from cast_core.conformance import compare, run_conformance, to_numpy

ROOT = Path(__file__).resolve().parents[2]
from _spec_load import SPEC, load as _load


oracle = _load("oracle")


def oracle_port(rewards, group_ids, gaps, mask, config, step):
    return oracle.cast_advantages(rewards, group_ids, gaps, mask, config.to_dict(), step)


def no_down_flip_port(rewards, group_ids, gaps, mask, config, step):
    """Wrong on purpose: positive-base tokens with g < 0 are never flipped."""
    return oracle.cast_advantages(rewards, group_ids, gaps, mask, {**config.to_dict(), "flip_correct": False}, step)


def test_cast_core_passes_every_vector():
    report = run_conformance()
    n_cases = len(conformance.load_vectors())
    assert report.failed == 0, report.table()
    assert report.passed == n_cases and report.ok


def test_cli_exit_zero_on_cast_core():
    proc = subprocess.run([sys.executable, "-m", "cast_core.conformance"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.endswith("passed, 0 failed") and int(last.split()[0]) > 100


def test_oracle_port_passes_cast_advantages_vectors():
    report = run_conformance(impl=oracle_port)
    assert {r.function for r in report.results} == {"cast_advantages"}
    assert report.ok and report.passed >= 30 + 11  # value cases + error cases


def test_wrong_port_fails_and_names_the_down_flip_cases():
    report = run_conformance(impl=no_down_flip_port)
    assert not report.ok
    failed = {r.name for r in report.failures}
    assert {"positive_side_down_flip", "worked_example_group_1100", "inf_gaps"} <= failed
    assert "positive_side_unflipped" not in failed and "flip_correct_off" not in failed
    bad = next(r for r in report.failures if r.name == "positive_side_down_flip")
    # g = -0.1 is where skipping the flip errs most: -1.0526 expected, +0.9524 produced.
    assert bad.detail.startswith("index (0, 1): got 0.95") and bad.max_abs_err > 2


def test_cli_exit_nonzero_on_wrong_port(tmp_path):
    (tmp_path / "wrong_port.py").write_text(textwrap.dedent(f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("o", {str(SPEC / 'oracle.py')!r})
        o = importlib.util.module_from_spec(spec); spec.loader.exec_module(o)
        def cast_advantages(rewards, group_ids, gaps, mask, config, step):
            return o.cast_advantages(rewards, group_ids, gaps, mask,
                                     {{**config.to_dict(), "flip_correct": False}}, step)
    """))
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, "-m", "cast_core.conformance", "--impl", "wrong_port:cast_advantages"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "positive_side_down_flip" in proc.stdout and " failed" in proc.stdout
    assert "0 failed" not in proc.stdout.splitlines()[-1]


def test_error_case_fails_when_impl_accepts_bad_input():
    def lenient(rewards, group_ids, gaps, mask, config, step):
        return np.zeros(np.shape(gaps))

    report = run_conformance(impl=lenient, only="err_nan_reward")
    assert report.failed == 1 and "returned normally" in report.results[0].detail


def test_wrong_exception_type_is_a_failure():
    def crashes(*args, **kwargs):
        raise IndexError("deep crash")

    report = run_conformance(impl=crashes, only="err_*")
    assert report.passed == 0 and report.failed > 0
    assert all("IndexError" in r.detail for r in report.results)


def test_only_filter_and_summary():
    report = run_conformance(impl=oracle_port, only=["worked_example_*"])
    assert report.passed == 6 and report.failed == 0
    assert report.summary() == "6 passed, 0 failed"
    assert "worked_example_deadband" in report.table()


def test_loss_impl_without_grad_impl_skips_gradients():
    def loss(logp, old_logp, advantages, mask, **kw):
        return oracle.policy_loss(logp.tolist(), old_logp.tolist(), advantages.tolist(), mask.tolist(),
                                  **{k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in kw.items()})

    report = run_conformance(loss_impl=loss)
    assert report.ok and {r.function for r in report.results} == {"policy_loss"}
    assert any("gradient not checked" in r.detail for r in report.results if "expect_error" not in r.detail)


def test_missing_vectors_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="--vectors"):
        run_conformance(impl=oracle_port, vectors_dir=tmp_path / "nope")
    assert conformance.main(["--vectors", str(tmp_path / "nope")]) == 2


def test_unknown_function_override_is_rejected():
    with pytest.raises(ValueError, match="no such function"):
        run_conformance(impls={"cast_advantage": oracle_port})


# -- the comparator ----------------------------------------------------------------------
def test_compare_reports_worst_index_and_errors():
    exp = np.array([[1.0, 2.0], [3.0, 4.0]])
    ok = compare(exp + 1e-13, exp, atol=1e-12, rtol=1e-9)
    assert ok.ok and ok.max_abs_err == pytest.approx(1e-13, rel=1e-2)
    act = exp.copy()
    act[1, 0] += 1e-3
    act[0, 1] += 1e-6
    bad = compare(act, exp, atol=1e-12, rtol=1e-9)
    assert not bad.ok and bad.worst_index == (1, 0) and "index (1, 0)" in bad.message
    assert not compare(np.ones(3), np.ones(4), atol=0, rtol=0).ok
    assert not compare([[np.nan, 2.0], [3.0, 4.0]], exp, atol=1, rtol=1).ok
    assert compare([float("inf")], [float("inf")], atol=0, rtol=0).ok
    assert compare(np.zeros((2, 0)), np.zeros((2, 0)), atol=0, rtol=0).ok


def test_compare_exact_zero_outside_mask():
    exp = np.array([[1.0, 0.0]])
    outside = np.array([[False, True]])
    assert compare([[1.0, 0.0]], exp, atol=1e-12, rtol=1e-9, exact_zero=outside).ok
    assert compare([[1.0, -0.0]], exp, atol=1e-12, rtol=1e-9, exact_zero=outside).ok
    tiny = compare([[1.0, 1e-15]], exp, atol=1e-12, rtol=1e-9, exact_zero=outside)
    assert not tiny.ok and "exactly 0" in tiny.message and tiny.worst_index == (0, 1)


def test_to_numpy_accepts_lists_scalars_and_tensor_likes():
    class FakeTensor:
        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return np.array([1.5, 2.5], dtype=np.float32)

    assert to_numpy([[1, 2]]).dtype == np.float64
    assert to_numpy(0.25).shape == ()
    np.testing.assert_array_equal(to_numpy(FakeTensor()), [1.5, 2.5])
    assert "torch" not in conformance.__dict__  # the runner never imports torch itself
