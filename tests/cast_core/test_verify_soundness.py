"""Soundness fuzz: sympy writes random expressions in several equal forms (equal by
construction) and perturbed forms (unequal by construction); the verifier must accept
the former and reject every one of the latter. The strings come from sympy's printer
in this test only; the verifier parses them with its own whitelisted parser."""

from __future__ import annotations

import random

import pytest
import sympy as sp

from cast_core.verify import is_equivalent

X, Y = sp.symbols("x y")


def _random_expr(rng: random.Random, depth: int = 0) -> sp.Expr:
    if depth > 3 or rng.random() < 0.3:
        return rng.choice([X, Y, sp.Integer(rng.randint(-5, 5)),
                           sp.Rational(rng.randint(1, 9), rng.randint(1, 9))])
    a, b = _random_expr(rng, depth + 1), _random_expr(rng, depth + 1)
    op = rng.choice(["+", "-", "*", "pow", "sin", "sqrt"])
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "pow":
        return a ** rng.randint(0, 3)
    if op == "sin":
        return sp.sin(a)
    return sp.sqrt(a ** 2 + 1)


def _run(n: int, seed: int) -> tuple[int, int, list, list]:
    rng = random.Random(seed)
    checked = rejected = 0
    false_neg, false_pos = [], []
    for _ in range(n):
        e = _random_expr(rng)
        if e.has(sp.zoo, sp.nan):
            continue
        ref = str(e)
        forms = [str(sp.expand(e)), str(sp.factor(e))]
        for f in forms:
            if len(f) > 1500:  # over the verifier's answer-length cap by design
                continue
            checked += 1
            if not is_equivalent(f, ref):
                false_neg.append((f, ref))
        bump = sp.Rational(1, rng.randint(2, 1000)) * rng.choice([1, X, Y, X * Y])
        rejected += 1
        if is_equivalent(str(e + bump), ref):
            false_pos.append((str(e + bump), ref))
    return checked, rejected, false_neg, false_pos


def test_soundness_fuzz_small():
    checked, rejected, false_neg, false_pos = _run(40, seed=7)
    assert checked >= 60 and rejected >= 35
    assert not false_pos
    assert len(false_neg) <= 1, false_neg


@pytest.mark.slow
def test_soundness_fuzz_large():
    checked, rejected, false_neg, false_pos = _run(300, seed=1)
    assert not false_pos
    assert len(false_neg) <= 0.01 * checked, false_neg
