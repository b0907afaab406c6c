"""Exact identity test for rational functions, by evaluation modulo a large prime.

Two rational functions x = P/Q and y = R/S (any number of variables, rational
coefficients, integer powers) are equal iff the polynomial PS - RQ is zero. Evaluated at
a point mod the prime p = 2^127 - 1 (where the denominators do not vanish), equal
functions give equal values, so **one mismatch proves them different**; and a nonzero
polynomial of total degree D vanishes at a uniformly random point with probability at
most D/p (Schwartz-Zippel), so **agreement at three random points proves them equal**
up to (D/p)^3 < 2^-190 (D is bounded before the test; the points are drawn from a
generator seeded by both answers, so a crafted answer cannot target them).

This decides ``((x+1)^{64}-(x-1)^{64})^{64}`` (degree 4096) in microseconds, where
expanding costs seconds. ``\\pi`` and ``e`` are transcendental, so an identity that holds
with them as free variables holds for their values: they are treated as variables, but
then a mismatch proves nothing (``e^{i\\pi} = -1``) and is left to the numeric stage.
"""

from __future__ import annotations

import hashlib
import random
from fractions import Fraction

from .evaluate import evaluate

__all__ = ["PRIME", "rational_identity"]

PRIME = (1 << 127) - 1
_MAX_DEGREE = 1 << 64
_POINTS = 3


class _Unsupported(Exception):
    pass


class _Undefined(Exception):
    pass


def _int_exponent(node) -> int:
    """The exponent of a power when it is an exact integer constant."""
    try:
        v = evaluate(node)
    except (KeyError, ValueError, ZeroDivisionError, OverflowError):
        raise _Unsupported from None
    if not isinstance(v, Fraction) or v.denominator != 1 or abs(v) > 10 ** 6:
        raise _Unsupported
    return int(v)


def _degree(node) -> tuple[int, int]:
    """(numerator, denominator) total-degree bounds of the unreduced fraction built."""
    tag = node[0]
    if tag == "n":
        return (0, 0)
    if tag in ("s", "c"):
        return (1, 0)
    if tag == "+":
        acc = (0, 0)
        for t in node[1]:
            d = _degree(t)
            acc = (max(acc[0] + d[1], d[0] + acc[1]), acc[1] + d[1])
        return acc
    if tag == "*":
        acc = (0, 0)
        for t in node[1]:
            d = _degree(t)
            acc = (acc[0] + d[0], acc[1] + d[1])
        return acc
    if tag == "neg":
        return _degree(node[1])
    if tag == "/":
        a, b = _degree(node[1]), _degree(node[2])
        return (a[0] + b[1], a[1] + b[0])
    if tag == "^":
        k = _int_exponent(node[2])
        d = _degree(node[1])
        return (d[0] * k, d[1] * k) if k >= 0 else (d[1] * -k, d[0] * -k)
    raise _Unsupported


def _eval(node, env: dict[str, int]) -> int:
    tag = node[0]
    if tag == "n":
        q = node[2] % PRIME
        if q == 0:
            raise _Unsupported
        return node[1] * pow(q, -1, PRIME) % PRIME
    if tag == "s":
        return env[node[1]]
    if tag == "c":
        if node[1] in ("pi", "e"):
            return env["\\" + node[1]]
        raise _Unsupported
    if tag == "+":
        return sum(_eval(t, env) for t in node[1]) % PRIME
    if tag == "*":
        acc = 1
        for t in node[1]:
            acc = acc * _eval(t, env) % PRIME
        return acc
    if tag == "neg":
        return -_eval(node[1], env) % PRIME
    if tag == "/":
        b = _eval(node[2], env)
        if b == 0:
            raise _Undefined
        return _eval(node[1], env) * pow(b, -1, PRIME) % PRIME
    if tag == "^":
        k = _int_exponent(node[2])
        a = _eval(node[1], env)
        if k < 0:
            if a == 0:
                raise _Undefined
            return pow(pow(a, -1, PRIME), -k, PRIME)
        return pow(a, k, PRIME)
    raise _Unsupported


def _has_constant(node) -> bool:
    if node[0] == "c":
        return True
    if node[0] in ("n", "s"):
        return False
    return any(isinstance(c, tuple) and _has_constant(c) or
               isinstance(c, list) and any(_has_constant(t) for t in c) for c in node[1:])


def rational_identity(x: tuple, y: tuple, names: list[str], key: str) -> bool | None:
    """True: x and y are the same rational function (see the module docstring); False:
    provably different; None: not rational functions (or no decision)."""
    try:
        dx, dy = _degree(x), _degree(y)
    except (_Unsupported, RecursionError):
        return None
    if max(dx[0] + dy[1], dy[0] + dx[1]) >= _MAX_DEGREE:
        return None
    with_constants = _has_constant(x) or _has_constant(y)
    seed = int.from_bytes(hashlib.blake2b(("mod|" + key).encode("utf-8", "replace"),
                                          digest_size=16).digest(), "big")
    rng = random.Random(seed)
    variables = list(names) + ["\\pi", "\\e"]
    agreed = 0
    for _ in range(3 * _POINTS):
        env = {v: rng.randrange(2, PRIME - 1) for v in variables}
        try:
            a, b = _eval(x, env), _eval(y, env)
        except _Undefined:
            continue
        except (_Unsupported, KeyError, RecursionError):
            return None
        if a != b:
            return None if with_constants else False
        agreed += 1
        if agreed >= _POINTS:
            return True
    return None

