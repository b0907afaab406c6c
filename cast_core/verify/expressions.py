"""Equality of two expression ASTs (`expr_equal`), cheap and exact stages first.

1. Infinities compare by sign; an expression containing infinity otherwise equals only
   the same AST.
2. Constants: exact `Fraction` arithmetic decides rational values at once. Otherwise a
   float evaluation rejects clear mismatches, and `highprec.decide` settles the rest.
3. Expressions with variables: 8 deterministic sample points (half fixed, half seeded by
   a hash of both answers) reject any clear mismatch; identical ASTs are equal;
   rational functions are decided exactly by `modular.rational_identity`; everything
   else by `highprec.decide` at two seeded points.
4. Only what those stages cannot decide goes to sympy in the worker process (bounded by
   the call's timeout; a timeout is False).

Tolerance rule: when both sides are written exactly (integers, fractions, radicals, pi,
...) they must be equal. When either side contains a decimal or scientific literal
("0.333", "1.5e3"), values may differ by ``rel_tol`` relative:
|a - b| <= rel_tol · max(|a|, |b|).
"""

from __future__ import annotations

import time
from fractions import Fraction

from . import highprec
from ._worker import get_pool
from .evaluate import (INVALID, LimitError, evaluate, free_symbols, has_constant,
                       infinity_sign, is_inexact, sample_points)
from .limits import DEFAULT_TIMEOUT
from .modular import rational_identity
from .parse import ParseError

__all__ = ["Ctx", "expr_equal", "worker_call"]

_FLOAT_REJECT = 1e-7  # float evaluation error is far below this on sane inputs


class Ctx:
    """Options and the shared time budget of one `is_equivalent` call."""

    def __init__(self, rel_tol: float = 1e-6, timeout: float = DEFAULT_TIMEOUT,
                 allow_relations: bool = False) -> None:
        self.rel_tol = rel_tol
        self.timeout = timeout
        self.allow_relations = allow_relations
        self.deadline = time.monotonic() + timeout

    def expired(self) -> bool:
        return time.monotonic() > self.deadline


def _close(a, b, tol: float) -> bool:
    if isinstance(a, Fraction) and isinstance(b, Fraction):
        if tol == 0:
            return a == b
        return abs(a - b) <= Fraction(tol) * max(abs(a), abs(b))
    za, zb = complex(a), complex(b)
    scale = max(abs(za), abs(zb))
    return abs(za - zb) <= tol * scale or scale == 0.0


def expr_equal(x: tuple, y: tuple, ctx: Ctx) -> bool:
    """Whether expression ASTs x and y are equal (see the module docstring)."""
    if ctx.expired():  # many-element answers share one time budget
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
            if isinstance(va, Fraction) and isinstance(vb, Fraction):
                return _close(va, vb, tol)
            if va is not INVALID and vb is not INVALID:
                if inexact and tol >= 1e-10:
                    return _close(va, vb, tol)
                if not _close(va, vb, max(tol, _FLOAT_REJECT)):
                    return False
            verdict = highprec.decide(x, y, [{}], inexact=inexact, rel_tol=tol, need=1)
        else:
            valid = 0
            points = sample_points(names, key)
            for env in points:
                va, vb = evaluate(x, env), evaluate(y, env)
                if va is INVALID or vb is INVALID:
                    continue
                exact = isinstance(va, Fraction) and isinstance(vb, Fraction)
                if not _close(va, vb, tol if exact else max(tol, _FLOAT_REJECT)):
                    return False
                valid += 1
            if valid and x == y:
                return True
            verdict = None
            if not inexact:
                verdict = rational_identity(x, y, names, key)
            if verdict is None:
                verdict = highprec.decide(x, y, points[len(points) // 2:] + points[:len(points) // 2],
                                          inexact=inexact, rel_tol=tol, need=2)
    except (LimitError, ParseError):
        return False
    except (OverflowError, ZeroDivisionError, ValueError, RecursionError):
        return False
    if verdict is not None:
        return verdict
    return worker_call({"op": "equal", "a": x, "b": y, "rel_tol": ctx.rel_tol,
                        "inexact": inexact, "key": key}, ctx)


def worker_call(payload: dict, ctx: Ctx) -> bool:
    """Ask the sympy worker; False when the remaining budget runs out."""
    remaining = ctx.deadline - time.monotonic()
    if remaining <= 0:
        return False
    reply = get_pool().call(dict(payload, budget=remaining), remaining)
    return bool(reply and reply.get("ok") is True)
