"""Bounded numeric evaluation of parsed answers (no sympy; used in-process).

`evaluate(node, env)` walks the AST of `parse.py` and returns an exact `Fraction` while
every operation stays rational (+ - * /, integer powers, perfect roots, n!, binomials),
and a Python ``complex`` once an irrational operation (sqrt of a non-square, pi, sin,
...) enters. Each step is O(1) in floats or size-checked in exact arithmetic:

- an integer power a^n needs |n| <= MAX_EXPONENT (unless a is exactly 0 or ±1) and an
  estimated result size |n|·bits(a) <= MAX_RESULT_BITS *before* it is computed;
- n! needs 0 <= n <= MAX_FACTORIAL; every exact intermediate stays within
  MAX_RESULT_BITS; radicands within MAX_ROOT_BITS.

A violated cap raises `LimitError` (the answer is rejected as a whole). A point where the
expression is undefined or overflows (1/0, log 0, a float overflow) gives `INVALID`.
"""

from __future__ import annotations

import cmath
import hashlib
import math
import random
from fractions import Fraction
from typing import Union

from .limits import MAX_EXPONENT, MAX_FACTORIAL, MAX_RESULT_BITS, MAX_ROOT_BITS
from .parse import ParseError

__all__ = [
    "LimitError",
    "INVALID",
    "evaluate",
    "free_symbols",
    "has_constant",
    "is_inexact",
    "sample_points",
    "infinity_sign",
]


class LimitError(ParseError):
    """A size cap (exponent, factorial, bit size) was exceeded: the answer is rejected."""


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID = _Invalid()
Value = Union[Fraction, complex, _Invalid]


def _bits(x: Fraction) -> int:
    return max(x.numerator.bit_length(), x.denominator.bit_length())


def _check(x: Fraction) -> Fraction:
    if _bits(x) > MAX_RESULT_BITS:
        raise LimitError(f"exact intermediate over {MAX_RESULT_BITS} bits")
    return x


def _to_complex(x: Value) -> complex:
    if isinstance(x, Fraction):
        try:
            return complex(float(x))
        except OverflowError:
            return complex(math.inf)
    return x


def _finite(z: complex) -> Value:
    return z if cmath.isfinite(z) else INVALID


def _exact_root(x: Fraction, q: int) -> Fraction | None:
    """x^(1/q) when it is rational (x >= 0, small q), else None."""
    if x < 0 or q > 64 or _bits(x) > MAX_ROOT_BITS:
        return None
    out = []
    for v in (x.numerator, x.denominator):
        r = round(v ** (1.0 / q)) if v.bit_length() < 1000 else _iroot(v, q)
        for cand in (r - 1, r, r + 1):
            if cand >= 0 and cand ** q == v:
                out.append(cand)
                break
        else:
            return None
    return Fraction(out[0], out[1])


def _iroot(v: int, q: int) -> int:
    # Newton iteration on integers (v has at most MAX_ROOT_BITS bits, so this is short).
    x = 1 << ((v.bit_length() + q - 1) // q)
    while True:
        y = ((q - 1) * x + v // x ** (q - 1)) // q
        if y >= x:
            return x
        x = y


def _power(a: Value, b: Value) -> Value:
    if isinstance(b, Fraction) and (b.denominator == 1 or isinstance(a, Fraction)):
        if isinstance(a, Fraction) and a in (0, 1, -1):
            if a == 0:
                return Fraction(0) if b > 0 else (Fraction(1) if b == 0 else INVALID)
            if a == 1:
                return Fraction(1)
            if b.denominator == 1:
                return Fraction(-1 if b.numerator % 2 else 1)
            return _finite(complex(-1) ** complex(float(b)))
        if abs(b) > MAX_EXPONENT:
            raise LimitError(f"exponent {b} beyond ±{MAX_EXPONENT}")
        if isinstance(a, Fraction):
            n = b.numerator
            if abs(n) * _bits(a) > MAX_RESULT_BITS:
                raise LimitError("power result too large")
            if a < 0 and b.denominator % 2 == 1 and b.denominator != 1:
                # real odd root: (-8)^(2/3) = 4, as \sqrt[3]{-8} = -2
                r = _power(-a, b)
                return INVALID if r is INVALID else (r if n % 2 == 0 else -r)
            val = a ** abs(n)
            if b.denominator != 1:
                root = _exact_root(val, b.denominator)
                if root is None:
                    return _finite(_to_complex(a) ** complex(float(b)))
                val = root
            if n < 0:
                return _check(1 / val)
            return _check(val)
        z = _to_complex(a)
        if b.denominator % 2 == 1 and b.denominator != 1 and z.imag == 0 and z.real < 0:
            r = _power(complex(-z.real), b)
            return INVALID if r is INVALID else (r if b.numerator % 2 == 0 else -r)
    try:
        return _finite(_to_complex(a) ** _to_complex(b))
    except (OverflowError, ZeroDivisionError, ValueError):
        return INVALID


def _factorial(a: Value) -> Value:
    if isinstance(a, Fraction) and a.denominator == 1:
        if a < 0:
            return INVALID
        if a > MAX_FACTORIAL:
            raise LimitError(f"factorial of {a} beyond {MAX_FACTORIAL}")
        return Fraction(math.factorial(int(a)))
    z = _to_complex(a)
    if z.imag != 0 or z.real > 170:
        return INVALID
    try:
        return _finite(complex(math.gamma(z.real + 1)))
    except (OverflowError, ValueError):
        return INVALID


_FUNCS = {
    "sin": cmath.sin, "cos": cmath.cos, "tan": cmath.tan, "arcsin": cmath.asin,
    "arccos": cmath.acos, "arctan": cmath.atan, "sinh": cmath.sinh, "cosh": cmath.cosh,
    "tanh": cmath.tanh, "exp": cmath.exp, "log": cmath.log, "ln": cmath.log,
    "cot": lambda z: 1 / cmath.tan(z), "sec": lambda z: 1 / cmath.cos(z),
    "csc": lambda z: 1 / cmath.sin(z),
}


def _function(name: str, a: Value) -> Value:
    if name == "sqrt":
        if isinstance(a, Fraction):
            r = _exact_root(a, 2)
            if r is not None:
                return r
        return _finite(cmath.sqrt(_to_complex(a)))
    if name == "abs":
        return abs(a) if isinstance(a, Fraction) else complex(abs(a))
    if isinstance(a, Fraction) and a == 0 and name in ("sin", "tan", "arcsin", "arctan", "sinh", "tanh"):
        return Fraction(0)
    if isinstance(a, Fraction) and a == 0 and name in ("cos", "exp", "cosh"):
        return Fraction(1)
    if isinstance(a, Fraction) and a == 1 and name in ("log", "ln"):
        return Fraction(0)
    z = _to_complex(a)
    if abs(z) > 1e6 and name in ("exp", "sinh", "cosh", "sin", "cos", "tan", "cot", "sec", "csc"):
        return INVALID  # overflow or meaningless precision at float resolution
    try:
        return _finite(_FUNCS[name](z))
    except (OverflowError, ZeroDivisionError, ValueError):
        return INVALID


def evaluate(node: tuple, env: dict[str, Value] | None = None) -> Value:
    """Value of ``node`` with variables taken from ``env`` (missing variable: KeyError).

    Returns a Fraction (exact), a finite complex, or INVALID. Raises LimitError when a
    size cap is exceeded. Recursion depth is bounded by the parser's nesting cap.
    """
    tag = node[0]
    if tag == "n":
        return Fraction(node[1], node[2])
    if tag == "s":
        return env[node[1]] if env is not None else _missing(node[1])
    if tag == "c":
        name = node[1]
        if name == "pi":
            return complex(math.pi)
        if name == "e":
            return complex(math.e)
        if name == "i":
            return 1j
        return INVALID  # infinity: handled structurally by the caller
    if tag == "+":
        acc: Value = Fraction(0)
        for t in node[1]:
            v = evaluate(t, env)
            if v is INVALID:
                return INVALID
            acc = _check(acc + v) if isinstance(acc, Fraction) and isinstance(v, Fraction) \
                else _finite(_to_complex(acc) + _to_complex(v))
            if acc is INVALID:
                return INVALID
        return acc
    if tag == "*":
        acc = Fraction(1)
        for t in node[1]:
            v = evaluate(t, env)
            if v is INVALID:
                return INVALID
            acc = _check(acc * v) if isinstance(acc, Fraction) and isinstance(v, Fraction) \
                else _finite(_to_complex(acc) * _to_complex(v))
            if acc is INVALID:
                return INVALID
        return acc
    if tag == "neg":
        v = evaluate(node[1], env)
        return INVALID if v is INVALID else -v
    if tag == "/":
        a, b = evaluate(node[1], env), evaluate(node[2], env)
        if a is INVALID or b is INVALID or b == 0:
            return INVALID
        if isinstance(a, Fraction) and isinstance(b, Fraction):
            return _check(a / b)
        return _finite(_to_complex(a) / _to_complex(b))
    if tag == "^":
        a, b = evaluate(node[1], env), evaluate(node[2], env)
        if a is INVALID or b is INVALID:
            return INVALID
        return _power(a, b)
    if tag == "!":
        a = evaluate(node[1], env)
        return INVALID if a is INVALID else _factorial(a)
    if tag == "f":
        a = evaluate(node[2], env)
        return INVALID if a is INVALID else _function(node[1], a)
    if tag == "root":
        a, n = evaluate(node[1], env), evaluate(node[2], env)
        if a is INVALID or n is INVALID or n == 0:
            return INVALID
        if isinstance(n, Fraction):
            if isinstance(a, Fraction) and a < 0 and n.denominator == 1 and n.numerator % 2:
                r = _power(-a, 1 / n)  # real odd root of a negative number
                return INVALID if r is INVALID else -r
            return _power(a, 1 / n)
        return _power(a, 1 / _to_complex(n))
    if tag == "log":
        a, base = evaluate(node[1], env), evaluate(node[2], env)
        la, lb = _function("log", a) if a is not INVALID else INVALID, \
            _function("log", base) if base is not INVALID else INVALID
        if la is INVALID or lb is INVALID or lb == 0:
            return INVALID
        if isinstance(a, Fraction) and isinstance(base, Fraction) and a > 0 and base > 0:
            # exact when a is an integer power of base (log_2 8 = 3)
            for k in range(-64, 65):
                if k and abs(k) * _bits(base) <= MAX_RESULT_BITS and base ** k == a:
                    return Fraction(k)
        return _finite(_to_complex(la) / _to_complex(lb))
    if tag == "binom":
        n, k = evaluate(node[1], env), evaluate(node[2], env)
        if isinstance(n, Fraction) and isinstance(k, Fraction) and n.denominator == k.denominator == 1:
            if n > MAX_FACTORIAL:
                raise LimitError(f"binomial of {n} beyond {MAX_FACTORIAL}")
            if n < 0 or k < 0 or k > n:
                return Fraction(0)
            return Fraction(math.comb(int(n), int(k)))
        return INVALID
    raise ParseError(f"cannot evaluate node {tag!r}")


def _missing(name: str) -> Value:
    raise KeyError(name)


def free_symbols(node: tuple, out: set[str] | None = None) -> set[str]:
    """Names of the variables of ``node``."""
    out = set() if out is None else out
    tag = node[0]
    if tag == "s":
        out.add(node[1])
    elif tag in ("+", "*"):
        for t in node[1]:
            free_symbols(t, out)
    elif tag in ("neg", "!"):
        free_symbols(node[1], out)
    elif tag in ("/", "^", "root", "log", "binom"):
        free_symbols(node[1], out)
        free_symbols(node[2], out)
    elif tag == "f":
        free_symbols(node[2], out)
    return out


def has_constant(node: tuple, name: str) -> bool:
    """Whether constant ``name`` ("oo", "pi", ...) occurs in ``node``."""
    tag = node[0]
    if tag == "c":
        return node[1] == name
    if tag in ("+", "*"):
        return any(has_constant(t, name) for t in node[1])
    if tag in ("neg", "!"):
        return has_constant(node[1], name)
    if tag in ("/", "^", "root", "log", "binom"):
        return has_constant(node[1], name) or has_constant(node[2], name)
    if tag == "f":
        return has_constant(node[2], name)
    return False


def is_inexact(node: tuple) -> bool:
    """Whether a decimal / scientific literal occurs (then comparisons use rel_tol)."""
    tag = node[0]
    if tag == "n":
        return bool(node[3])
    if tag in ("+", "*"):
        return any(is_inexact(t) for t in node[1])
    if tag in ("neg", "!"):
        return is_inexact(node[1])
    if tag in ("/", "^", "root", "log", "binom"):
        return is_inexact(node[1]) or is_inexact(node[2])
    if tag == "f":
        return is_inexact(node[2])
    return False


def infinity_sign(node: tuple) -> int:
    """+1 for ``oo`` / ``+oo``, -1 for ``-oo``, 0 for anything else."""
    if node == ("c", "oo"):
        return 1
    if node[0] == "neg":
        return -infinity_sign(node[1])
    return 0


_BASE_POINTS = (
    Fraction(7, 5), Fraction(-13, 11), Fraction(29, 17), Fraction(3, 7),
    Fraction(-5, 3), Fraction(11, 4), Fraction(-2, 9), Fraction(17, 6),
)


def sample_points(names: list[str], key: str, count: int = 8) -> list[dict[str, Fraction]]:
    """Deterministic sample points: ``count`` assignments of rationals to ``names``.

    Half are fixed, half are drawn from a generator seeded by ``key`` (a digest of both
    answers), so a crafted answer cannot target public points, and the same inputs
    always get the same points. Values lie in [-3, 3] away from 0 and ±1.
    """
    seed = int.from_bytes(hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=8).digest(), "big")
    rng = random.Random(seed)
    pts = []
    for k in range(count):
        env = {}
        for j, name in enumerate(sorted(names)):
            if k < count // 2:
                env[name] = _BASE_POINTS[(k + 3 * j) % len(_BASE_POINTS)] + Fraction(j, 19)
            else:
                q = rng.randint(7, 97)
                p = rng.choice([-1, 1]) * rng.randint(q // 5 + 1, 3 * q)
                env[name] = Fraction(p, q)
        pts.append(env)
    return pts
