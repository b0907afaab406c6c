"""Safety of cast_core.verify: no code execution, bounded time and size, determinism."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cast_core.verify as V
from cast_core.verify import extract_answer, is_equivalent, math_reward
from cast_core.verify._worker import get_pool
from cast_core.verify.cases import ADVERSARIAL, CASES

PKG = pathlib.Path(V.__file__).parent
# Bound for one call in these tests: the cheap stages are milliseconds; anything that
# reaches the worker is cut at `timeout`, plus process-kill slack on a loaded box.
TIMEOUT = 1.0
SLACK = 2.0


@pytest.fixture(scope="module", autouse=True)
def warm_worker():
    V.warmup()  # worker start-up (importing sympy) is not part of the per-call bound


def _adversarial(marker: pathlib.Path) -> list[str]:
    return [a.format(marker=marker) for a in ADVERSARIAL]


def test_source_never_evaluates_strings():
    """No eval/exec/compile, no sympify/parse_expr/lambdify anywhere in the package."""
    banned_calls = {"eval", "exec", "compile", "sympify", "parse_expr", "lambdify",
                    "__import__", "S"}
    for path in PKG.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "re":
                    continue  # re.compile builds a regex, it runs no code
                assert name not in banned_calls, f"{path.name}:{node.lineno} calls {name}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names]
                mod = getattr(node, "module", None) or ""
                assert "torch" not in mod and not any("torch" in n for n in names), path.name
                assert "parsing" not in mod, f"{path.name} imports sympy.parsing"


def test_import_does_not_start_a_worker_or_import_torch():
    code = ("import sys, cast_core.verify as V, cast_core.verify._worker as W; "
            "assert W._POOL is None; assert 'torch' not in sys.modules; "
            "assert V.is_equivalent('1/2', '0.5'); assert W._POOL is None; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


def test_adversarial_inputs_rejected_in_bound_without_side_effects(tmp_path):
    marker = tmp_path / "pwned"
    for text in _adversarial(marker):
        for pred, ref in ((text, "0"), ("0", text), (text, text), (text, "x")):
            t0 = time.monotonic()
            out = is_equivalent(pred, ref, timeout=TIMEOUT)
            dt = time.monotonic() - t0
            assert dt < TIMEOUT + SLACK, (text[:60], dt)
            if pred != ref:
                assert out is False, text[:60]
        t0 = time.monotonic()
        found = extract_answer(text)
        reward = math_reward(text, "0")
        reward2 = math_reward("\\boxed{" + text + "}", text)
        assert time.monotonic() - t0 < 3 * (TIMEOUT + SLACK)
        assert found is None or isinstance(found, str)
        assert reward in (0.0, 1.0) and reward2 in (0.0, 1.0)
    assert not marker.exists()
    assert not pathlib.Path("pwned").exists()


@pytest.mark.parametrize("completion,answer", [
    ("The probability is $\\frac{1}{2}$.", "2"),   # the 2 of a fraction
    ("The area is $x^2$.", "2"),                     # an exponent
    ("AZYUK2A", "2"),                                # a digit inside a word
    ("we need \\sqrt{2} of it", "2"),               # plain-text LaTeX
    ("\\boxed{" + "1+" * 1000 + "1}", "1"),         # over-long box: no fall-through
    ("so 1. \\boxed{" + "(" * 45 + "1" + ")" * 45 + "}", "1"),  # over-deep box content
])
def test_issue_fragments_and_capped_answers_get_no_reward(completion, answer):
    assert math_reward(completion, answer) == 0.0
    found = extract_answer(completion)
    assert found != answer


def test_capped_box_is_no_answer_at_all():
    # the last number "1" is not used once the box was rejected
    assert extract_answer("the sum 1 \\boxed{" + "1+" * 1000 + "1}") is None
    assert extract_answer("7 \\boxed{" + "{" * 60 + "7" + "}" * 60 + "}") is None


def test_no_input_costs_more_than_a_second_of_cpu(tmp_path):
    """Default configuration: each adversarial comparison stays under 1 s of CPU in this
    process, and the 4096-degree identity is decided (in process, without sympy)."""
    for text in _adversarial(tmp_path / "m") + ["((x+1)^{64}-(x-1)^{64})^{64}"]:
        for pred, ref in ((text, "0"), (text, text + "+1"), (text, "x")):
            t0 = time.process_time()
            is_equivalent(pred, ref)
            math_reward("\\boxed{" + pred + "}", ref)
            assert time.process_time() - t0 < 1.0, text[:60]
    kills = get_pool().kills
    t0 = time.process_time()
    assert is_equivalent("((x+1)^{64}-(x-1)^{64})^{64}", "((x-1)^{64}-(x+1)^{64})^{64}")
    assert not is_equivalent("((x+1)^{64}-(x-1)^{64})^{64}", "((x+1)^{64}+(x-1)^{64})^{64}")
    assert time.process_time() - t0 < 1.0
    assert get_pool().kills == kills


def test_identical_injection_text_never_executes(tmp_path):
    # Identical strings compare as text at most; they must still never run.
    marker = tmp_path / "m2"
    s = f"__import__('os').system('touch {marker}')"
    is_equivalent(s, s)
    math_reward("\\boxed{" + s + "}", s)
    assert not marker.exists()


@pytest.mark.parametrize("bomb", ["9**9**9**9", "10^{10^{10}}", "100000!", "2^{2^{2^{2^{2^{2}}}}}",
                                  "10^{100000}", "1e999999999", "(10^{1000})!"])
def test_number_bombs_are_rejected_fast(bomb):
    t0 = time.monotonic()
    assert is_equivalent(bomb, "1") is False
    assert is_equivalent(bomb, bomb + "+1") is False
    assert time.monotonic() - t0 < 1.0


def test_caps_are_not_too_tight():
    # large but reasonable numbers still work exactly
    assert is_equivalent("2^{100}", "1267650600228229401496703205376")
    assert is_equivalent("20!", "2432902008176640000")
    assert is_equivalent("10^{-5}", "0.00001")
    assert not is_equivalent("2^{100}", "1267650600228229401496703205377")


def test_pathological_symbolic_input_times_out_off_the_main_thread():
    """A comparison sympy cannot finish is cut at the timeout in a non-main thread."""
    pred = "e^{e^{e^{e^{e^{e^{x}}}}}}"
    ref = "e^{e^{e^{e^{e^{e^{y}}}}}}"
    result: dict = {}
    kills = get_pool().kills

    def run():
        t0 = time.monotonic()
        result["out"] = is_equivalent(pred, ref, timeout=TIMEOUT)
        result["dt"] = time.monotonic() - t0

    th = threading.Thread(target=run)
    th.start()
    th.join(TIMEOUT + SLACK + 5)
    assert not th.is_alive()
    assert result["out"] is False
    assert result["dt"] < TIMEOUT + SLACK
    assert get_pool().kills == kills + 1  # the hard bound, not luck, stopped it
    # the pool recovers: the next call that needs sympy works
    assert is_equivalent("\\sin(2x)", "2\\sin x\\cos x")
    assert not is_equivalent("\\sin(2x)", "\\sin x\\cos x")


def test_concurrent_callers_get_correct_answers():
    pairs = [(p, r, e) for _, p, r, e in CASES if _ == "sym"][:12]
    errors = []

    def run(chunk):
        for p, r, e in chunk:
            if is_equivalent(p, r) is not e:
                errors.append((p, r))

    threads = [threading.Thread(target=run, args=(pairs[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors


def test_deterministic():
    for _, p, r, _e in CASES[::3]:
        assert len({is_equivalent(p, r) for _ in range(3)}) == 1


def test_argument_errors():
    with pytest.raises(TypeError, match="pred"):
        is_equivalent(1, "1")
    with pytest.raises(TypeError, match="ref"):
        is_equivalent("1", None)
    with pytest.raises(ValueError, match="rel_tol"):
        is_equivalent("1", "1", rel_tol=float("nan"))
    with pytest.raises(ValueError, match="rel_tol"):
        is_equivalent("1", "1", rel_tol=-1)
    with pytest.raises(ValueError, match="timeout"):
        is_equivalent("1", "1", timeout=0)


_ALPHABET = st.sampled_from(list("0123456789+-*/^!()[]{},.=%$ xyzeiABC_|") + [
    "\\frac", "\\sqrt", "\\pi", "\\boxed{", "\\text{", "\\left(", "\\right)", "\\cdot",
    "\\infty", "\\{", "\\}", "\\sin", "\\log_", "e^{", "10^{", "\\binom", "#### ",
    "the answer is ", "__import__", "lambda", ".__class__", "9**9", "!!"])
_TEXT = st.lists(_ALPHABET, max_size=40).map("".join) | st.text(max_size=80)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT, _TEXT)
def test_fuzz_never_raises_and_is_bounded(a, b):
    t0 = time.monotonic()
    out = is_equivalent(a, b, timeout=TIMEOUT)
    assert isinstance(out, bool)
    r = math_reward(a, b, timeout=TIMEOUT)
    assert r in (0.0, 1.0)
    ex = extract_answer(a)
    assert ex is None or isinstance(ex, str)
    assert time.monotonic() - t0 < 2 * (TIMEOUT + SLACK)


@settings(max_examples=100, deadline=None)
@given(st.fractions(max_denominator=10**6), st.fractions(max_denominator=10**6))
def test_fuzz_rationals_match_exact_arithmetic(x, y):
    fx = f"{x.numerator}/{x.denominator}"
    fy = f"\\frac{{{y.numerator}}}{{{y.denominator}}}"
    assert is_equivalent(fx, fy) is (x == y)
    assert is_equivalent(fx, fx)
