"""Equations and inequalities: when two relations, or a relation and a set, agree.

A relation chain ``a_0 op_1 a_1 op_2 a_2 ...`` is the conjunction of its links. One link
``l op r`` is written canonically as ``f op' 0`` with f = l - r and op' one of
``< \\le = \\ne`` (``l > r`` is ``r - l < 0``). Two links agree when their op' is the same
and f_1 = c·f_2 for a constant c, with c > 0 for inequalities and c != 0 for
equations: ``x \\le 5`` = ``5 \\ge x``, ``-x > -1`` = ``x < 1``,
``2x+4y-3=0`` = ``y=-\\frac12x+\\frac34`` (c = 4), ``34x+45y-20z+100=0`` = its negation.
Chains agree link by link, in order or reversed (``0 < x < 1`` = ``1 > x > 0``).

Solution sets (one variable): a chain whose links are linear in the variable
(``-2 \\le x \\le 7``, ``0 < f(x) < 1``, ``-x > -1``) is turned into its interval in
process; anything else (``1 \\le |z| \\le 3/2``, ``x^2 < 4``) is solved by sympy in the
worker (``as_set``, bounded by the call's timeout). Relations that are not proportional
are compared through their solution sets when both have one variable.

Direction (`Ctx.allow_relations`, default False): a *reference* written as a relation
accepts its solution set as a predicted interval or set (``(0,1)`` for ``0 < f(x) < 1``:
the prediction names the set the reference describes). A *predicted* relation for a
reference interval is accepted only with ``allow_relations=True``: a question that
asks for interval notation is not answered by an inequality.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable

from .evaluate import INVALID, evaluate, free_symbols, sample_points
from .expressions import Ctx, expr_equal, worker_call
from .modular import rational_identity
from .structure import Answer

__all__ = ["compare"]

_FLIP = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le", "=": "=", "\\ne": "\\ne"}
_ZERO = ("n", 0, 1, False)
_INF = ("c", "oo")


def _links(rel) -> list[tuple[str, tuple, tuple]]:
    members, ops = rel
    return [(ops[k], members[k], members[k + 1]) for k in range(len(ops))]


def _canonical(op: str, lhs: tuple, rhs: tuple) -> tuple[str, tuple]:
    if op in (">", "\\ge"):
        return _FLIP[op], ("+", [rhs, ("neg", lhs)])
    return op, ("+", [lhs, ("neg", rhs)])


def _frac_node(q: Fraction) -> tuple:
    return ("n", q.numerator, q.denominator, False) if q >= 0 else \
        ("neg", ("n", -q.numerator, q.denominator, False))


def _proportional(f1: tuple, f2: tuple, positive: bool, ctx: Ctx) -> bool:
    """Whether f1 = c·f2 for a constant c (c > 0 when ``positive``, else c != 0)."""
    names = sorted(free_symbols(f1) | free_symbols(f2))
    c = None
    for env in sample_points(names, repr(f1) + "~" + repr(f2)) if names else [{}]:
        v1, v2 = evaluate(f1, env), evaluate(f2, env)
        if isinstance(v1, Fraction) and isinstance(v2, Fraction) and v2 != 0:
            c = v1 / v2
            break
    if c is None:
        # f2 vanishes at every point: both sides must vanish identically
        return expr_equal(f2, _ZERO, ctx) and expr_equal(f1, _ZERO, ctx)
    if c == 0 or (positive and c < 0):
        return False
    return expr_equal(f1, ("*", [_frac_node(c), f2]), ctx)


def _link_equal(a: tuple, b: tuple, ctx: Ctx) -> bool:
    op1, f1 = _canonical(*a)
    op2, f2 = _canonical(*b)
    return op1 == op2 and _proportional(f1, f2, op1 in ("<", "\\le"), ctx)


def _relations_equal(ra, rb, ctx: Ctx, equal: Callable) -> bool:
    la, lb = _links(ra), _links(rb)
    if len(la) == len(lb):
        if all(_link_equal(x, y, ctx) for x, y in zip(la, lb)):
            return True
        if len(la) > 1 and all(_link_equal(x, y, ctx) for x, y in zip(la, reversed(lb))):
            return True
    # one-variable relations: compare solution sets
    va, vb = _variable(ra), _variable(rb)
    if va is None or va != vb or any(op in ("=", "\\ne") for op in ra[1] + rb[1]):
        return False
    ia, ib = _to_interval(ra), _to_interval(rb)
    if ia is not None and ib is not None:
        return equal(ia[1], ib[1], ctx)
    return worker_call({"op": "relset", "rel": list(ra), "var": va,
                        "set": {"kind": "rel", "rel": list(rb)}}, ctx)


def _variable(rel) -> str | None:
    names = set()
    for m in rel[0]:
        free_symbols(m, names)
    return next(iter(names)) if len(names) == 1 else None


def _linear(f: tuple, var: str) -> tuple[Fraction, Fraction] | None:
    """(m, k) with f = m·var + k exactly (rational m, k), else None."""
    k, v1 = evaluate(f, {var: Fraction(0)}), evaluate(f, {var: Fraction(1)})
    if not (isinstance(k, Fraction) and isinstance(v1, Fraction)):
        return None
    m = v1 - k
    affine = ("+", [("*", [_frac_node(m), ("s", var)]), _frac_node(k)])
    if rational_identity(f, affine, [var], repr(f)) is not True:
        return None
    return m, k


def _to_interval(rel) -> tuple[str, Answer] | None:
    """(variable, interval Answer) for a one-variable chain of inequalities whose links
    are linear in the variable (or bound the bare variable by a constant)."""
    var = _variable(rel)
    if var is None:
        return None
    lo, lo_closed, hi, hi_closed = ("neg", _INF), False, _INF, False
    lo_val, hi_val = None, None
    for op, lhs, rhs in _links(rel):
        if op in ("=", "\\ne"):
            return None
        cop, f = _canonical(op, lhs, rhs)  # f < 0 or f <= 0
        closed = cop == "\\le"
        # bare variable against a constant: keep the written endpoint
        l_var, r_var = lhs == ("s", var), rhs == ("s", var)
        const = rhs if l_var else lhs if r_var else None
        if const is not None and not free_symbols(const):
            upper = (l_var and op in ("<", "\\le")) or (r_var and op in (">", "\\ge"))
            bound, val = const, evaluate(const)
        else:
            lin = _linear(f, var)
            if lin is None or lin[0] == 0:
                return None
            m, k = lin
            q = -k / m
            upper = m > 0
            bound, val = _frac_node(q), q
        if val is INVALID:
            return None
        if upper:
            if hi_val is not None:
                return None  # two upper bounds: not a plain interval chain
            hi, hi_closed, hi_val = bound, closed, val
        else:
            if lo_val is not None:
                return None
            lo, lo_closed, lo_val = bound, closed, val
    brackets = ("[" if lo_closed else "(") + ("]" if hi_closed else ")")
    return var, Answer("tuple", [Answer("expr", lo), Answer("expr", hi)], brackets=brackets)


def _set_description(s: Answer) -> dict | None:
    """JSON description of an interval / union / finite set for the worker."""
    def interval(t: Answer):
        if t.kind != "tuple" or len(t.value) != 2 or t.brackets not in ("()", "[]", "(]", "[)"):
            return None
        if any(v.kind != "expr" for v in t.value):
            return None
        return [t.value[0].value, t.value[1].value, t.brackets[0] == "(", t.brackets[1] == ")"]

    if s.kind == "tuple":
        iv = interval(s)
        return None if iv is None else {"kind": "intervals", "items": [iv]}
    if s.kind == "union":
        items = [interval(t) for t in s.value]
        return None if any(i is None for i in items) else {"kind": "intervals", "items": items}
    if s.kind in ("set", "bare") and all(v.kind == "expr" for v in s.value):
        return {"kind": "finite", "items": [v.value for v in s.value]}
    if s.kind == "expr":
        return {"kind": "finite", "items": [s.value]}
    return None


def _rel_vs_set(rel: Answer, other: Answer, ctx: Ctx, equal: Callable) -> bool:
    var_label = None
    if other.kind == "label":
        if other.brackets != "in":
            return False
        var_label, other = other.label, other.value
    if other.kind not in ("tuple", "union", "set"):
        return False
    var = _variable(rel.value)
    if var is None or (var_label is not None and var_label != var):
        # the variable of "1 \le |z| \le 2" is z: the label must name it
        return False
    conv = _to_interval(rel.value)
    if conv is not None:
        return equal(conv[1], other, ctx)
    desc = _set_description(other)
    if desc is None:
        return False
    return worker_call({"op": "relset", "rel": list(rel.value), "var": var, "set": desc}, ctx)


def _as_relation(a: Answer):
    """The equation of an assignment ``label = expr`` (label an expression), a relation
    itself, or None."""
    if a.kind == "rel":
        return a.value
    if a.kind == "label" and a.brackets != "in" and a.node is not None \
            and a.value.kind == "expr" and not a.value.percent:
        return ([a.node, a.value.value], ["="])
    return None


def compare(a: Answer, b: Answer, ctx: Ctx, equal: Callable) -> bool:
    """Pred ``a`` vs reference ``b`` where at least one is a relation, or both are
    assignments to different labels; ``equal`` compares two Answers (structure)."""
    ra, rb = _as_relation(a), _as_relation(b)
    if ra is not None and rb is not None:
        return _relations_equal(ra, rb, ctx, equal)
    if a.kind == "rel":
        return ctx.allow_relations and _rel_vs_set(a, b, ctx, equal)
    if b.kind == "rel":
        return _rel_vs_set(b, a, ctx, equal)
    return False

