"""`is_equivalent`: does a predicted answer equal the reference answer?

Pipeline (cheap and exact first, each stage bounded):

1. Parse both sides with the whitelisted parser (`structure.parse_answer`); a side
   outside the grammar becomes a canonical text string and only equals the same text.
2. Structure (this module): multiple-choice letters compare as letters; assignments
   ``x = 5`` compare by their value with a bare answer and by label with another
   assignment; relations go to `relations.compare`; tuples and intervals compare in
   order with the same brackets; sets, bare lists and interval unions compare
   unordered (a perfect matching, duplicates ignored); a bare list also matches a
   ``( )`` tuple in order; a list of distinct labels (``x = 3, y = 2``) matches an
   unlabelled list in order and a labelled one by label; matrices element-wise.
3. Expressions: `expressions.expr_equal` (exact arithmetic, sampling, modular identity,
   high precision, and sympy in a worker process as the last resort).

Percentages: "p%" equals p/100 and also p (as math-verify does: "50%" matches "0.5",
"50" and "50\\%").
"""

from __future__ import annotations

import math
import re

from . import relations
from .expressions import Ctx, expr_equal
from .limits import DEFAULT_TIMEOUT
from .normalize import normalize_latex
from .parse import ParseError
from .structure import Answer, is_ambiguous_decimal, parse_answer

__all__ = ["is_equivalent", "answers_equal"]

_MC_LEAD = re.compile(r"\(?([A-Ja-j])\)?(?:[.:)]|\s|$)")


def _percent_variants(a: Answer) -> list[tuple]:
    node = a.value
    if not a.percent:
        return [node]
    return [node, ("/", node, ("n", 100, 1, False))]


def _dedupe(xs: list[Answer]) -> list[Answer]:
    seen, out = set(), []
    for x in xs:
        k = repr(x)
        if k not in seen:
            seen.add(k)
            out.append(x)
    return out


def _matching(xs: list[Answer], ys: list[Answer], ctx: Ctx) -> bool:
    """A perfect matching between xs and ys under equivalence (augmenting paths)."""
    n = len(xs)
    if n != len(ys):
        return False
    cache: dict[tuple[int, int], bool] = {}

    def eq(i: int, j: int) -> bool:
        if (i, j) not in cache:
            cache[(i, j)] = answers_equal(xs[i], ys[j], ctx)
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


def _in_order(xs: list[Answer], ys: list[Answer], ctx: Ctx) -> bool:
    return len(xs) == len(ys) and all(answers_equal(u, v, ctx) for u, v in zip(xs, ys))


def _collections_equal(a: Answer, b: Answer, ctx: Ctx) -> bool:
    xs, ys = a.value, b.value
    lab_a = bool(xs) and all(x.kind == "label" for x in xs)
    lab_b = bool(ys) and all(y.kind == "label" for y in ys)
    if lab_a and lab_b:
        return _matching(_dedupe(xs), _dedupe(ys), ctx)
    if lab_a or lab_b:
        labelled, other = (a, b) if lab_a else (b, a)
        names = [x.label for x in labelled.value]
        values = [x.value for x in labelled.value]
        if other.kind not in ("bare", "tuple", "set"):
            return False
        if len(set(names)) == len(names) and (other.kind == "bare" or other.brackets == "()"):
            # x = 3, y = 2 is the ordered pair (3, 2)
            return _in_order(values, other.value, ctx) if lab_a else _in_order(other.value, values, ctx)
        return _matching(_dedupe(values), _dedupe(other.value), ctx) if lab_a else \
            _matching(_dedupe(other.value), _dedupe(values), ctx)
    if a.kind == "tuple" or b.kind == "tuple":
        if a.kind == b.kind == "tuple":
            if a.brackets != b.brackets:
                return False
        elif {a.kind, b.kind} == {"tuple", "bare"}:
            if (a.brackets or b.brackets) != "()":
                return False
        else:
            return False
        return _in_order(xs, ys, ctx)
    unordered = {"set", "bare"}
    if not ((a.kind in unordered and b.kind in unordered) or a.kind == b.kind == "union"):
        return False
    return _matching(_dedupe(xs), _dedupe(ys), ctx)


def answers_equal(a: Answer, b: Answer, ctx: Ctx) -> bool:
    """Whether predicted answer ``a`` equals reference answer ``b`` (structure first)."""
    if ctx.expired():
        return False
    ka, kb = a.kind, b.kind
    if ka == "mc" or kb == "mc":
        return ka == kb and a.value == b.value
    if ka == "text" or kb == "text":
        return ka == kb and a.value == b.value
    if ka == "rel" or kb == "rel":
        return relations.compare(a, b, ctx, answers_equal)
    if ka == "label" and kb == "label":
        if a.label == b.label and answers_equal(a.value, b.value, ctx):
            return True
        return a.label != b.label and relations.compare(a, b, ctx, answers_equal)
    if ka == "label":
        return answers_equal(a.value, b, ctx)
    if kb == "label":
        return answers_equal(a, b.value, ctx)
    if ka == "expr" and kb == "expr":
        if a.percent == b.percent:
            return expr_equal(a.value, b.value, ctx)
        return any(expr_equal(u, v, ctx) for u in _percent_variants(a) for v in _percent_variants(b))
    if ka == "matrix" or kb == "matrix":
        if ka != kb or len(a.value) != len(b.value) or len(a.value[0]) != len(b.value[0]):
            return False
        return all(expr_equal(u, v, ctx) for ra, rb in zip(a.value, b.value) for u, v in zip(ra, rb))
    if ka == "ratio" or kb == "ratio":
        return ka == kb and len(a.value) == len(b.value) and \
            all(expr_equal(u, v, ctx) for u, v in zip(a.value, b.value))
    # one element in a set vs a single answer: {5} == 5
    if ka == "expr" and kb in ("set", "bare") and len(b.value) == 1:
        return answers_equal(a, b.value[0], ctx)
    if kb == "expr" and ka in ("set", "bare") and len(a.value) == 1:
        return answers_equal(a.value[0], b, ctx)
    if ka == "expr" or kb == "expr":
        return False
    return _collections_equal(a, b, ctx)


def _mc_letter(pred: str) -> str | None:
    m = _MC_LEAD.match(normalize_latex(pred))
    return m.group(1).upper() if m else None


def _scalar(x: Answer) -> bool:
    return x.kind == "expr" or (x.kind == "label" and x.value.kind == "expr")


def _parse_pair(pred: str, ref: str, decimal_comma) -> tuple[Answer, Answer]:
    if decimal_comma != "auto":
        return (parse_answer(pred, decimal_comma=decimal_comma),
                parse_answer(ref, decimal_comma=decimal_comma))
    a, b = parse_answer(pred), parse_answer(ref)
    # "1,5" is a decimal where the other side is one number, a list otherwise
    amb_a, amb_b = is_ambiguous_decimal(pred), is_ambiguous_decimal(ref)
    if amb_a and (amb_b or _scalar(b)):
        a = parse_answer(pred, decimal_comma=True)
    if amb_b and (amb_a or _scalar(a)):
        b = parse_answer(ref, decimal_comma=True)
    return a, b


def is_equivalent(pred: str, ref: str, *, rel_tol: float = 1e-6,
                  timeout: float = DEFAULT_TIMEOUT, decimal_comma="auto",
                  allow_relations: bool = False) -> bool:
    """Whether answer ``pred`` equals reference answer ``ref``.

    Args:
        pred: the predicted answer (untrusted model output), e.g. ``"\\frac{1}{2}"``.
        ref: the reference answer, e.g. ``"0.5"``.
        rel_tol: relative tolerance, used only when a side is written with a decimal or
            scientific literal (see `expressions`); >= 0.
        timeout: wall-clock bound (seconds, > 0) on the whole comparison; a comparison
            that would take longer returns False. Holds in any thread. Starting the
            worker process the first time is bounded separately (`STARTUP_TIMEOUT`).
        decimal_comma: how a lone ``1,5`` reads: "auto" (default) as the decimal 1.5
            when the other side is a single number and as the list 1, 5 otherwise;
            True: always a decimal; False: always a list. ``1,000`` (a digit grouping)
            is one thousand in every mode.
        allow_relations: accept a predicted inequality for a reference interval or set
            (``-2 \\le x \\le 7`` for ``[-2, 7]``). Default False: the reference's
            notation is the asked-for form; a reference inequality always accepts its
            interval.

    Returns:
        True or False. Answers outside the grammar, over a size limit, or undefined
        (1/0) are never equal to anything but identical text.

    Raises:
        TypeError: pred or ref is not a str; ValueError: bad rel_tol, timeout or
            decimal_comma. RuntimeError: the sympy worker process cannot be started.
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
    if not (decimal_comma is True or decimal_comma is False
            or (isinstance(decimal_comma, str) and decimal_comma == "auto")):
        raise ValueError(f"decimal_comma: must be 'auto', True or False, got {decimal_comma!r}")
    if not isinstance(allow_relations, bool):
        raise TypeError(f"allow_relations: expected bool, got {type(allow_relations).__name__}")
    ctx = Ctx(float(rel_tol), float(timeout), allow_relations)
    try:
        a, b = _parse_pair(pred, ref, decimal_comma)
        if b.kind == "mc":
            return _mc_letter(pred) == b.value
        return answers_equal(a, b, ctx)
    except (ParseError, RecursionError):
        return False
