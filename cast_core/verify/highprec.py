"""High-precision numeric decision of exactly written expressions (in-process).

The float stage (`evaluate`) rejects clear mismatches; it cannot tell ``\\pi^{100}+1`` from
``\\pi^{100}``, nor accept ``\\sqrt{12} = 2\\sqrt{3}`` with certainty. Here both sides are
evaluated with mpmath (the arbitrary-precision library sympy is built on; a private
context per thread, so precision never leaks between threads) at each point at two
working precisions, P and P + 64 bits, where P = 128 bits plus the size (in bits) of the
largest intermediate value M (at least 64). With d_P the computed difference:

- d is exactly 0 at both precisions, or d has shrunk to rounding noise at the higher one
  (|d_{P+64}| <= M 2^(32 - P - 64)) while not reproducing the lower one's value:
  **equal at this point** (the difference vanishes to about P bits relative to M);
- d_P and d_{P+64} agree to 20 bits and are nonzero: a genuine difference,
  **different** (this is what separates ``e^{-200}`` from 0 and ``\\pi^{100}+1`` from
  ``\\pi^{100}``, whatever their size);
- anything else: no decision (the caller falls back to sympy).

Constants are decided at their one value; expressions with variables must agree at
two seeded rational points where both sides are defined (after the float stage agreed
at eight), points the answer cannot choose. Powers use the real odd-root convention, as `evaluate` does
(``(-8)^{2/3} = 4``). The cost is bounded: P is capped (`MAX_PRECISION_BITS`), so an
input whose values need more precision gets no decision here.
"""

from __future__ import annotations

import threading
from fractions import Fraction

from .evaluate import evaluate
from .limits import MAX_EXPONENT, MAX_FACTORIAL

__all__ = ["decide", "MAX_PRECISION_BITS"]

MAX_PRECISION_BITS = 6_000
_BASE_BITS = 128
_EXTRA_BITS = 64
_NOISE_BITS = 32
_STABLE_BITS = 20
_local = threading.local()


class _Undefined(Exception):
    """The expression is undefined at this point (1/0, log 0, a pole)."""


class _TooBig(Exception):
    """An intermediate value needs more precision than allowed."""


def _ctx():
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        import mpmath
        ctx = _local.ctx = mpmath.MPContext()
    return ctx


class _Eval:
    def __init__(self, ctx, env: dict[str, Fraction]) -> None:
        self.ctx = ctx
        self.env = env
        self.mag = 0  # log2 of the largest intermediate magnitude

    def note(self, v):
        if v != 0:
            m = self.ctx.mag(v)
            if m > self.mag:
                self.mag = m
                if m > MAX_PRECISION_BITS:
                    raise _TooBig
        return v

    def rat(self, q: Fraction):
        return self.ctx.mpf(q.numerator) / q.denominator

    def exact_int(self, node) -> int | None:
        try:
            v = evaluate(node, self.env)
        except (KeyError, ValueError, ZeroDivisionError, OverflowError):
            return None
        if isinstance(v, Fraction) and v.denominator == 1:
            return int(v)
        return None

    def exact_rat(self, node) -> Fraction | None:
        try:
            v = evaluate(node, self.env)
        except (KeyError, ValueError, ZeroDivisionError, OverflowError):
            return None
        return v if isinstance(v, Fraction) else None

    def power(self, a, b_node):
        ctx = self.ctx
        q = self.exact_rat(b_node)
        if q is not None:
            if abs(q) > MAX_EXPONENT and a not in (0, 1, -1):
                raise _TooBig
            if a == 0:
                if q > 0:
                    return ctx.mpf(0)
                raise _Undefined
            if q.denominator == 1:
                return ctx.power(a, int(q))
            is_real = not isinstance(a, ctx.mpc) or a.imag == 0
            re = a.real if isinstance(a, ctx.mpc) else a
            if is_real and re < 0 and q.denominator % 2 == 1:
                r = ctx.power(-re, ctx.mpf(q.numerator) / q.denominator)
                return r if q.numerator % 2 == 0 else -r
            return ctx.power(a, ctx.mpf(q.numerator) / q.denominator)
        b = self(b_node)
        if abs(b) * max(1, abs(ctx.log(abs(a))) if a != 0 else 1) > 4 * MAX_PRECISION_BITS:
            raise _TooBig
        if a == 0:
            raise _Undefined
        return ctx.power(a, b)

    def __call__(self, node):
        ctx = self.ctx
        tag = node[0]
        if tag == "n":
            return self.note(ctx.mpf(node[1]) / node[2])
        if tag == "s":
            return self.note(self.rat(self.env[node[1]]))
        if tag == "c":
            name = node[1]
            if name == "pi":
                return ctx.pi + 0
            if name == "e":
                return ctx.e + 0
            if name == "i":
                return ctx.mpc(0, 1)
            raise _Undefined
        if tag == "+":
            acc = ctx.mpf(0)
            for t in node[1]:
                acc = self.note(acc + self(t))
            return acc
        if tag == "*":
            acc = ctx.mpf(1)
            for t in node[1]:
                acc = self.note(acc * self(t))
            return acc
        if tag == "neg":
            return -self(node[1])
        if tag == "/":
            a, b = self(node[1]), self(node[2])
            if b == 0:
                raise _Undefined
            return self.note(a / b)
        if tag == "^":
            a = self(node[1])
            return self.note(self.power(a, node[2]))
        if tag == "!":
            k = self.exact_int(node[1])
            if k is not None:
                if k < 0:
                    raise _Undefined
                if k > MAX_FACTORIAL:
                    raise _TooBig
                return self.note(ctx.factorial(k))
            a = self(node[1])
            if abs(a) > 1000:
                raise _TooBig
            return self.note(ctx.gamma(a + 1))
        if tag == "f":
            return self.note(self.function(node[1], self(node[2])))
        if tag == "root":
            a = self(node[1])
            n = self.exact_rat(node[2])
            if n is None or n == 0:
                raise _TooBig
            return self.note(self.power(a, ("n", n.denominator, n.numerator, False)
                                        if n > 0 else ("neg", ("n", n.denominator, -n.numerator, False))))
        if tag == "log":
            a, b = self(node[1]), self(node[2])
            if a == 0 or b == 0:
                raise _Undefined
            lb = ctx.log(b)
            if lb == 0:
                raise _Undefined
            return self.note(ctx.log(a) / lb)
        if tag == "binom":
            n, k = self(node[1]), self(node[2])
            if abs(n) > MAX_FACTORIAL or abs(k) > MAX_FACTORIAL:
                raise _TooBig
            return self.note(ctx.binomial(n, k))
        raise _Undefined

    def function(self, name: str, a):
        ctx = self.ctx
        if name == "abs":
            return abs(a)
        if name == "sqrt":
            return ctx.sqrt(a)
        if name in ("log", "ln"):
            if a == 0:
                raise _Undefined
            return ctx.log(a)
        if abs(a) > 1e6:
            raise _TooBig
        if name == "exp":
            return ctx.exp(a)
        fn = {"sin": ctx.sin, "cos": ctx.cos, "tan": ctx.tan, "arcsin": ctx.asin,
              "arccos": ctx.acos, "arctan": ctx.atan, "sinh": ctx.sinh, "cosh": ctx.cosh,
              "tanh": ctx.tanh}.get(name)
        if fn is not None:
            return fn(a)
        inner = {"cot": ctx.tan, "sec": ctx.cos, "csc": ctx.sin}.get(name)
        if inner is None:
            raise _Undefined
        d = inner(a)
        if d == 0:
            raise _Undefined
        return 1 / d


def _evaluate(ctx, node, env, prec: int):
    ctx.prec = prec
    ev = _Eval(ctx, env)
    return ev(node), ev.mag


def _point(ctx, x, y, env, inexact: bool, rel_tol: float) -> str:
    """"eq", "ne", "undef" (a side undefined here) or "unknown" at one point."""
    try:
        # first try assumes intermediates below 2^64; re-evaluated when they are larger
        a, ma = _evaluate(ctx, x, env, _BASE_BITS + 64)
        b, mb = _evaluate(ctx, y, env, _BASE_BITS + 64)
        mag = max(ma, mb, 64)
        p1 = _BASE_BITS + mag
        if p1 > MAX_PRECISION_BITS:
            return "unknown"
        if mag > 64:
            a, _ = _evaluate(ctx, x, env, p1)
            b, _ = _evaluate(ctx, y, env, p1)
        if inexact:
            scale = max(abs(a), abs(b))
            return "eq" if abs(a - b) <= rel_tol * scale or scale == 0 else "ne"
        d1 = a - b
        p2 = p1 + _EXTRA_BITS
        a2, _ = _evaluate(ctx, x, env, p2)
        b2, _ = _evaluate(ctx, y, env, p2)
        d2 = a2 - b2
    except _Undefined:
        return "undef"
    except (_TooBig, OverflowError, ValueError, ZeroDivisionError, KeyError, RecursionError):
        return "unknown"
    if d1 == 0 and d2 == 0:
        return "eq"
    if d1 != 0 and d2 != 0 and abs(d1 - d2) <= abs(d2) * ctx.ldexp(1, -_STABLE_BITS):
        return "ne"
    noise = ctx.ldexp(1, mag + _NOISE_BITS - p2)
    if abs(d2) <= noise:
        return "eq"
    return "unknown"


def decide(x: tuple, y: tuple, points: list[dict[str, Fraction]], *, inexact: bool,
           rel_tol: float, need: int) -> bool | None:
    """True / False / None (no decision) for two expression ASTs, evaluated at
    ``points`` (``[{}]`` for constants); ``need`` points must agree, none may differ.
    With ``inexact`` (a decimal literal on a side) values within ``rel_tol`` agree."""
    ctx = _ctx()
    agreed = 0
    for env in points:
        verdict = _point(ctx, x, y, env, inexact, rel_tol)
        if verdict == "ne" or (verdict == "undef" and not env and len(points) == 1):
            return False  # different, or a constant that is undefined (1/0)
        if verdict == "unknown":
            return None
        if verdict == "eq":
            agreed += 1
            if agreed >= need:
                return True
    return None
