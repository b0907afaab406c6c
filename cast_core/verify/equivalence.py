"""`is_equivalent`: does a predicted answer equal the reference answer?

Pipeline (cheap and exact first, each stage bounded):

1. Parse both sides with the whitelisted parser (`parse.parse_answer`); a side outside
   the grammar becomes a canonical text string and only equals the same text.
2. Structure: multiple-choice letters compare as letters; tuples and intervals compare
   in order with the same brackets; sets, bare comma lists and interval unions compare
   unordered (a perfect matching); a bare list also matches a ``( )`` tuple in order.
3. Numbers (in-process, exact): both sides evaluated with `Fraction` arithmetic.
4. Numeric rejection (in-process): irrational constants and expressions with variables
   are evaluated at 8 deterministic sample points (exact where rational, else complex
   floats); a clear mismatch returns False without sympy. Identical parses, and
   rational functions of one variable (exact agreement at deg + 1 points, a proof), are
   accepted here too.
5. Symbolic proof (worker process, hard timeout): for constants, the difference under
   adaptive-precision evaluation; for expressions, ``expand`` / ``simplify`` of the
   difference, then adaptive-precision sampling of the difference as the fallback.
   A timeout returns False.

Tolerance rule: when both sides are written exactly (integers, fractions, radicals, pi,
...) they must be equal (irrational constants: their difference must vanish when
evaluated with adaptive precision, up to 400 digits). When
either side contains a decimal or scientific literal ("0.333", "1.5e3"), values may
differ by ``rel_tol`` relative: |a - b| <= rel_tol · max(|a|, |b|). So "12" vs "1/2",
"2" vs "2.5" and "355/113" vs "\\pi" are False, "0.5" vs "1/2" and "\\sqrt{2}" vs
"1.4142136" are True.

Percentages: "p%" equals p/100 and also p (as math-verify does: "50%" matches "0.5",
"50" and "50\\%").
"""

from __future__ import annotations

import math
import re
import time
from fractions import Fraction

from .evaluate import (INVALID, LimitError, evaluate, free_symbols, has_constant,
                       infinity_sign, is_inexact, sample_points)
from .limits import DEFAULT_TIMEOUT
from .parse import Answer, ParseError, normalize_latex, parse_answer
from ._worker import get_pool

__all__ = ["is_equivalent"]

_MC_LEAD = re.compile(r"\(?([A-Ja-j])\)?(?:[.:]|\s|$)")
_FLOAT_REJECT = 1e-7  # float evaluation error is far below this on sane inputs


class _Ctx:
    def __init__(self, rel_tol: float, timeout: float) -> None:
        self.rel_tol = rel_tol
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout


def _close(a, b, tol: float) -> bool:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        if tol == 0:
            return a == b
        return abs(a - b) <= Fraction(tol) * max(abs(a), abs(b))
    za, zb = complex(a), complex(b)
    scale = max(abs(za), abs(zb))
    return abs(za - zb) <= tol * scale or scale == 0.0


def _expr_equal(x: tuple, y: tuple, ctx: _Ctx) -> bool:
    if time.monotonic() > ctx.deadline:  # many-element answers share one time budget
        return False
    sx, sy = infinity_sign(x), infinity_sign(y)
    if sx or sy:
        return sx == sy
    if has_constant(x, "oo") or has_constant(y, "oo"):
        return x == y
    inexact = is_inexact(x) or is_inexact(y)
    tol = ctx.rel_tol if inexact else 0.0
    names = sorted(free_symbols(x) | free_symbols(y))
    key = repr(x) + "|" + repr(y)
    try:
        if not names:
            va, vb = evaluate(x), evaluate(y)
            if va is INVALID or vb is INVALID:
                # undefined (1/0) or beyond double range: only sympy can tell
                return _worker_equal(x, y, inexact, key, ctx)
            if isinstance(va, Fraction) and isinstance(vb, Fraction):
                return _close(va, vb, tol)
            if inexact and tol >= 1e-10:
                return _close(va, vb, tol)
            if not _close(va, vb, max(tol, _FLOAT_REJECT)):
                return False
        else:
            valid = 0
            for env in sample_points(names, key):
                va, vb = evaluate(x, env), evaluate(y, env)
                if va is INVALID or vb is INVALID:
                    continue
                exact = isinstance(va, Fraction) and isinstance(vb, Fraction)
                if not _close(va, vb, tol if exact else max(tol, _FLOAT_REJECT)):
                    return False
                valid += 1
            if valid and x == y:
                return True
            if valid and len(names) == 1 and _univariate_identity(x, y, names[0]):
                return True
    except (LimitError, ParseError):
        return False
    except (OverflowError, ZeroDivisionError, ValueError):
        return False
    return _worker_equal(x, y, inexact, key, ctx)


_MAX_PROOF_DEGREE = 40


def _degree(node: tuple) -> tuple[int, int] | None:
    """(deg P, deg Q) of the unreduced fraction P/Q that ``node`` builds, when ``node`` is
    a rational function of one variable with integer powers; None otherwise."""
    tag = node[0]
    if tag == "n":
        return (0, 0)
    if tag == "s":
        return (1, 0)
    if tag in ("+", "*"):
        acc = (0, 0)
        for t in node[1]:
            d = _degree(t)
            if d is None:
                return None
            if tag == "+":
                acc = (max(acc[0] + d[1], d[0] + acc[1]), acc[1] + d[1])
            else:
                acc = (acc[0] + d[0], acc[1] + d[1])
            if max(acc) > _MAX_PROOF_DEGREE:
                return None
        return acc
    if tag == "neg":
        return _degree(node[1])
    if tag == "/":
        a, b = _degree(node[1]), _degree(node[2])
        if a is None or b is None:
            return None
        return (a[0] + b[1], a[1] + b[0])
    if tag == "^":
        base, e = _degree(node[1]), node[2]
        sign = 1
        if e[0] == "neg":
            sign, e = -1, e[1]
        if base is None or e[0] != "n" or e[2] != 1 or e[1] > _MAX_PROOF_DEGREE:
            return None
        k = e[1]
        return (base[0] * k, base[1] * k) if sign > 0 else (base[1] * k, base[0] * k)
    return None


def _univariate_identity(x: tuple, y: tuple, name: str) -> bool:
    """Exact proof that two rational functions of one variable are identical.

    With x = P/Q and y = R/S (unreduced, degrees from `_degree`), x = y as functions iff
    the polynomial PS - RQ is zero; its degree is at most D = max(deg P + deg S,
    deg R + deg Q), so exact agreement at D + 1 distinct points where both sides are
    defined proves it (a nonzero polynomial of degree D has at most D roots).
    """
    dx, dy = _degree(x), _degree(y)
    if dx is None or dy is None:
        return False
    need = max(dx[0] + dy[1], dy[0] + dx[1]) + 1
    if need > _MAX_PROOF_DEGREE + 1:
        return False
    agreed = 0
    for k in range(need + 16):
        t = Fraction((2 * k + 3) * (-1) ** k, 7)
        va, vb = evaluate(x, {name: t}), evaluate(y, {name: t})
        if va is INVALID or vb is INVALID:
            continue
        if not (isinstance(va, Fraction) and isinstance(vb, Fraction)) or va != vb:
            return False
        agreed += 1
        if agreed >= need:
            return True
    return False


def _worker_equal(x: tuple, y: tuple, inexact: bool, key: str, ctx: _Ctx) -> bool:
    remaining = ctx.deadline - time.monotonic()
    if remaining <= 0:
        return False
    payload = {"a": x, "b": y, "rel_tol": ctx.rel_tol, "inexact": inexact, "key": key,
               "budget": remaining}
    reply = get_pool().call(payload, remaining)
    return bool(reply and reply.get("ok") is True)


def _percent_variants(a: Answer) -> list[tuple]:
    node = a.value
    if not a.percent:
        return [node]
    return [node, ("/", node, ("n", 100, 1, False))]


def _answers_equal(a: Answer, b: Answer, ctx: _Ctx) -> bool:
    if a.kind == "mc" or b.kind == "mc":
        return a.kind == b.kind and a.value == b.value
    if a.kind == "text" or b.kind == "text":
        return a.kind == b.kind and a.value == b.value
    if a.kind == "expr" and b.kind == "expr":
        if a.percent == b.percent:
            return _expr_equal(a.value, b.value, ctx)
        pa, pb = _percent_variants(a), _percent_variants(b)
        return any(_expr_equal(u, v, ctx) for u in pa for v in pb)
    # one element in a set vs a single answer: {5} == 5
    if a.kind == "expr" and b.kind == "set" and len(b.value) == 1:
        return _answers_equal(a, b.value[0], ctx)
    if b.kind == "expr" and a.kind == "set" and len(a.value) == 1:
        return _answers_equal(a.value[0], b, ctx)
    if a.kind == "expr" or b.kind == "expr":
        return False
    if len(a.value) != len(b.value):
        return False
    ordered = {"tuple"}
    if a.kind in ordered or b.kind in ordered:
        if a.kind == b.kind == "tuple":
            if a.brackets != b.brackets:
                return False
        elif {a.kind, b.kind} == {"tuple", "bare"}:
            if (a.brackets or b.brackets) != "()":
                return False
        else:
            return False
        return all(_answers_equal(u, v, ctx) for u, v in zip(a.value, b.value))
    unordered = {"set", "bare"}
    if not ((a.kind in unordered and b.kind in unordered) or a.kind == b.kind == "union"):
        return False
    return _matching(a.value, b.value, ctx)


def _matching(xs: list[Answer], ys: list[Answer], ctx: _Ctx) -> bool:
    """A perfect matching between xs and ys under equivalence (augmenting paths)."""
    n = len(xs)
    cache: dict[tuple[int, int], bool] = {}

    def eq(i: int, j: int) -> bool:
        if (i, j) not in cache:
            cache[(i, j)] = _answers_equal(xs[i], ys[j], ctx)
        return cache[(i, j)]

    match_y: list[int] = [-1] * n

    def augment(i: int, seen: list[bool]) -> bool:
        for j in range(n):
            if not seen[j] and eq(i, j):
                seen[j] = True
                if match_y[j] < 0 or augment(match_y[j], seen):
                    match_y[j] = i
                    return True
        return False

    return all(augment(i, [False] * n) for i in range(n))


def _mc_letter(pred: str) -> str | None:
    m = _MC_LEAD.match(normalize_latex(pred))
    return m.group(1).upper() if m else None


def is_equivalent(pred: str, ref: str, *, rel_tol: float = 1e-6,
                  timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Whether answer ``pred`` equals reference answer ``ref``.

    Args:
        pred: the predicted answer (untrusted model output), e.g. ``"\\frac{1}{2}"``.
        ref: the reference answer, e.g. ``"0.5"``.
        rel_tol: relative tolerance, used only when a side is written with a decimal or
            scientific literal (see the module docstring); >= 0.
        timeout: wall-clock bound (seconds, > 0) on the symbolic stage; a comparison
            that would take longer returns False. Holds in any thread. Starting the
            worker process the first time is bounded separately (`STARTUP_TIMEOUT`).

    Returns:
        True or False. Answers outside the grammar, over a size limit, or undefined
        (1/0) are never equal to anything but identical text.

    Raises:
        TypeError: pred or ref is not a str; ValueError: bad rel_tol or timeout.
        RuntimeError: the sympy worker process cannot be started at all.
    """
    if not isinstance(pred, str):
        raise TypeError(f"pred: expected str, got {type(pred).__name__}")
    if not isinstance(ref, str):
        raise TypeError(f"ref: expected str, got {type(ref).__name__}")
    if isinstance(rel_tol, bool) or not isinstance(rel_tol, (int, float)) \
            or not math.isfinite(rel_tol) or rel_tol < 0:
        raise ValueError(f"rel_tol: must be a finite number >= 0, got {rel_tol!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout: must be a finite number > 0, got {timeout!r}")
    ctx = _Ctx(float(rel_tol), float(timeout))
    try:
        b = parse_answer(ref)
        if b.kind == "mc":
            return _mc_letter(pred) == b.value
        a = parse_answer(pred)
        return _answers_equal(a, b, ctx)
    except (ParseError, RecursionError):
        return False
