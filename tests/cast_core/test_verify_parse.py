"""Parser, evaluator and symbolic stage of cast_core.verify, unit by unit."""

from __future__ import annotations

from fractions import Fraction

import pytest

from cast_core.verify import is_equivalent
from cast_core.verify.evaluate import INVALID, LimitError, evaluate, sample_points
from cast_core.verify.modular import rational_identity
from cast_core.verify.parse import ParseError, parse_expression
from cast_core.verify.structure import parse_answer
from cast_core.verify._worker import symbolic_equal


@pytest.mark.parametrize("text,value", [
    ("1+2*3", 7), ("2^3^2", 512), ("-2^2", -4), ("(-2)^2", 4), ("2^{-2}", Fraction(1, 4)),
    ("1/2x", None), ("\\frac12", Fraction(1, 2)), ("\\frac{1}{2}+\\frac13", Fraction(5, 6)),
    ("2\\frac{1}{2}", Fraction(5, 2)), ("-2\\frac{1}{2}", Fraction(-5, 2)), ("5!", 120),
    ("3!!", 720), ("\\binom{6}{3}", 20), ("1.5e3", 1500), ("\\sqrt{9/4}", Fraction(3, 2)),
    ("\\sqrt[3]{-27}", -3), ("|{-4}|", 4), ("\\log_{2}{32}", 5), ("2(3+4)", 14),
    ("(1)(2)(3)", 6), ("\\left[ 2 \\right] \\cdot 3", 6),
])
def test_exact_values(text, value):
    node = parse_answer(text).value
    if value is None:
        return
    assert evaluate(node) == Fraction(value)


def test_implicit_product_is_left_to_right():
    node = parse_expression("1/2x")
    assert evaluate(node, {"x": Fraction(4)}) == 2


@pytest.mark.parametrize("text", [
    "__import__('os')", "os.system", "x.y", "lambda", "a;b", "a:b", "\\input{x}",
    "\\def", "abc", "1 2", "2^", "(1", "1)", "[1}", "x_{}", "'1'", "\"1\"", "1 @ 2", "",
])
def test_outside_grammar_raises(text):
    with pytest.raises(ParseError):
        parse_expression(text)


@pytest.mark.parametrize("text", ["9**9**9**9", "10^{10^{10}}", "100000!", "2^{100000}",
                                  "(2^{5000})^{20}", "\\binom{5000}{2}"])
def test_limits_raise_before_building(text):
    with pytest.raises(LimitError):
        evaluate(parse_expression(text))


def test_invalid_points():
    assert evaluate(parse_expression("1/0")) is INVALID
    assert evaluate(parse_expression("\\ln(x-x)"), {"x": Fraction(2)}) is INVALID
    assert evaluate(parse_expression("0^{-1}")) is INVALID


def test_length_and_depth_caps():
    with pytest.raises(ParseError, match="longer"):
        parse_expression("1+" * 1500 + "1")
    with pytest.raises(ParseError, match="nesting"):
        parse_expression("(" * 50 + "1" + ")" * 50)
    assert evaluate(parse_expression("(" * 30 + "1" + ")" * 30)) == 1


@pytest.mark.parametrize("text,kind", [
    ("(B)", "mc"), ("\\{1,2\\}", "set"), ("(1,2]", "tuple"), ("1, 2", "bare"),
    ("(0,1)\\cup(2,3)", "union"), ("\\text{Monday}", "text"), ("5 cm", "expr"),
    ("1,000", "expr"), ("x = 3", "label"), ("50\\%", "expr"), ("x \\le 3", "rel"),
    ("3:4", "ratio"), ("\\begin{pmatrix}1&2\\end{pmatrix}", "matrix"), ("1 \\pm \\sqrt{2}", "set"),
])
def test_structure(text, kind):
    assert parse_answer(text).kind == kind


def test_percent_flag_and_thousands():
    a = parse_answer("12.5\\%")
    assert a.percent and evaluate(a.value) == Fraction(25, 2)
    assert evaluate(parse_answer("1,234,567").value) == 1234567


def test_sample_points_deterministic_and_input_seeded():
    p1, p2 = sample_points(["x", "y"], "k1"), sample_points(["x", "y"], "k1")
    p3 = sample_points(["x", "y"], "k2")
    assert p1 == p2
    assert p1[:4] == p3[:4] and p1[4:] != p3[4:]
    for env in p1 + p3:
        assert all(Fraction(1, 10) < abs(v) <= 3 for v in env.values())


def test_answer_crafted_against_the_fixed_points_is_rejected():
    # agrees with x at the four public points 7/5, -13/11, 29/17, 3/7
    crafted = "x + (x - \\frac{7}{5})(x + \\frac{13}{11})(x - \\frac{29}{17})(x - \\frac{3}{7})"
    for env in sample_points(["x"], "any")[:4]:
        assert evaluate(parse_expression(crafted), env) == env["x"]
    assert not is_equivalent(crafted, "x")


def test_rational_identity_mod_prime():
    P = parse_expression
    a, b = P("(x+1)^{10}"), P("(x^2+2x+1)^5")
    assert rational_identity(a, b, ["x"], "k") is True
    c = P("(x+1)^{10} + (x-1)(x-2)(x-3)(x-4)(x-5)(x-6)(x-7)(x-8)(x-9)(x-10)(x-11)")
    assert rational_identity(a, c, ["x"], "k") is False  # a mismatch mod p is a proof
    # degree 4096: decided in microseconds, where expanding takes seconds
    big1, big2 = P("((x+1)^{64}-(x-1)^{64})^{64}"), P("((x-1)^{64}-(x+1)^{64})^{64}")
    assert rational_identity(big1, big2, ["x"], "k") is True
    assert rational_identity(big1, P("((x+1)^{64}-(x-1)^{64})^{63}"), ["x"], "k") is False
    assert rational_identity(P("\\frac{x^2-y^2}{x-y}"), P("x+y"), ["x", "y"], "k") is True
    # pi is a free variable for the test: an identity in pi holds, a mismatch proves nothing
    assert rational_identity(P("\\frac{3\\pi}{6}"), P("\\pi/2"), [], "k") is True
    assert rational_identity(P("\\pi"), P("3"), [], "k") is None
    assert rational_identity(P("\\sin x"), P("x"), ["x"], "k") is None


def test_symbolic_stage_directly():
    P = parse_expression
    kw = dict(rel_tol=1e-6, inexact=False, key="t", budget=5.0)
    assert symbolic_equal(P("\\sin(2x)"), P("2\\sin x\\cos x"), **kw)
    assert not symbolic_equal(P("\\sin(2x)"), P("\\sin x\\cos x"), **kw)
    assert symbolic_equal(P("\\sqrt{8}"), P("2\\sqrt{2}"), **kw)
    # 35-digit comparison separates values a double cannot
    assert not symbolic_equal(P("\\sqrt{10^{20}+1}"), P("10^{10}"), **kw)
    assert not symbolic_equal(P("x^{100000}"), P("x"), **kw)  # exponent cap, not a hang


def test_exact_irrational_near_miss_needs_the_symbolic_stage():
    assert not is_equivalent("\\sqrt{10^{20}+1}", "10^{10}")
    assert is_equivalent("\\sqrt{10^{20}}", "10^{10}")
    assert is_equivalent("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}")


@pytest.mark.parametrize("raw,norm", [
    ("$\\boxed{1/3}$", "1/3"),
    ("\\\\frac{1}{2}", "\\frac{1}{2}"),               # escaped twice
    ("\\cfrac{1}{3}", "\\frac{1}{3}"),
    ("\\left\\lbrace 1 \\right\\rbrace", "\\{ 1 \\}"),
    ("\\bigl( 2 \\bigr)", "( 2 )"),
    ("32,\\! 349", "32,349"),
    ("14 {, }916", "14,916"),
    ("x_1 = 2,\\quad x_2 = 3", "x_1 = 2,, x_2 = 3"),
    ("a \\leqslant b \\geq c \\neq d", "a \\le b \\ge c \\ne d"),
    ("5\\text{ cm}", "5"),
    ("19, 46, \\text{ and } 82", "19, 46, and 82"),
])
def test_normalize(raw, norm):
    from cast_core.verify.normalize import normalize_latex
    assert normalize_latex(raw) == norm


def test_structure_labels_relations_and_chains():
    a = parse_answer("x = 5+5+1 = 11")
    assert a.kind == "label" and a.label == "x" and evaluate(a.value.value) == 11
    assert parse_answer("48/2 = 24").kind == "expr"            # a computation
    assert parse_answer("2x + 1 = 7").kind == "rel"            # an equation
    assert parse_answer("x = 1/3 \\approx 0.33").value.value == ("/", ("n", 1, 1, False), ("n", 3, 1, False))
    b = parse_answer("(p, q) = (3, 2)")
    assert b.kind == "bare" and [x.label for x in b.value] == ["p", "q"]
    c = parse_answer("x = 1, 2")
    assert [x.kind for x in c.value] == ["label", "label"]     # the label carries over
    assert parse_answer("|AB| = 3").kind == "label"
    assert parse_answer("f(x) = 2").label == "f(x)"
    assert parse_answer("x \\in [0, 1)").brackets == "in"
    assert parse_answer("1 < x < 2").value[1] == ["<", "<"]


def test_high_precision_stage_directly():
    from cast_core.verify.highprec import decide
    P = parse_expression
    kw = dict(inexact=False, rel_tol=0.0, need=1)
    assert decide(P("\\sqrt{12}"), P("2\\sqrt{3}"), [{}], **kw) is True
    assert decide(P("\\pi^{100}+1"), P("\\pi^{100}"), [{}], **kw) is False
    assert decide(P("e^{-200}"), P("0"), [{}], **kw) is False      # tiny, not zero
    assert decide(P("\\sqrt{10^{20}+1}"), P("10^{10}"), [{}], **kw) is False
    assert decide(P("(-8)^{2/3}"), P("4"), [{}], **kw) is True      # real odd roots
    assert decide(P("1/0"), P("1/0"), [{}], **kw) is False          # undefined: never equal
    pts = sample_points(["x"], "t")
    assert decide(P("\\sin^2 x + \\cos^2 x"), P("1"), pts, inexact=False, rel_tol=0.0, need=2) is True
    assert decide(P("x+\\pi^{100}"), P("x+\\pi^{100}+1"), pts, inexact=False, rel_tol=0.0, need=2) is False
    # a value needing more precision than the cap gets no decision (sympy decides)
    assert decide(P("e^{e^{e^{e^{x}}}}"), P("e^{e^{e^{e^{x}}}}+1"), pts, inexact=False,
                  rel_tol=0.0, need=2) is None
