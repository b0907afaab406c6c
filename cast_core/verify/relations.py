"""Equations and inequalities: when two relations, or a relation and a set, agree.

A relation chain ``a_0 op_1 a_1 op_2 a_2 ...`` is the conjunction of its links. One link
``l op r`` is written canonically as ``f op' 0`` with f = l - r and op' one of
``< \\le = \\ne`` (``l > r`` is ``r - l < 0``). Two links agree when their op' is the same
and f_1 = c·f_2 for a constant c, with c > 0 for inequalities and c != 0 for
equations: ``x \\le 5`` = ``5 \\ge x``, ``-x > -1`` = ``x < 1``,
``2x+4y-3=0`` = ``y=-\\frac12x+\\frac34`` (c = 4), ``34x+45y-20z+100=0`` = its negation.
Chains agree link by link, in order or reversed (``0 < x < 1`` = ``1 > x > 0``).

Solution sets (one variable): a chain that bounds one expression by constants, the
expression being the variable (``-2 \\le x \\le 7``, ``0 < f(x) < 1``), linear in it
(``-x > -1``) or the absolute value of a linear one (``1 \\le |z| \\le 3/2`` is
``[-3/2, -1] \\cup [1, 3/2]``), is turned into its interval or union in process; anything
else (``x^2 < 4``) is solved by sympy in the worker (``as_set``, bounded by the call's
timeout). Relations that are not proportional
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


def _interval(lo, hi) -> Answer:
    """An interval Answer from bounds (node, closed); None bounds are infinite."""
    lo_node, lo_closed = lo if lo is not None else (("neg", _INF), False)
    hi_node, hi_closed = hi if hi is not None else (_INF, False)
    brackets = ("[" if lo_closed else "(") + ("]" if hi_closed else ")")
    return Answer("tuple", [Answer("expr", lo_node), Answer("expr", hi_node)], brackets=brackets)


def _affine_preimage(lo, hi, m: Fraction, k: Fraction):
    """Bounds on v from bounds (value, closed) on m·v + k (m != 0)."""
    def pull(b):
        return None if b is None else ((b[0] - k) / m, b[1])
    lo2, hi2 = pull(lo), pull(hi)
    return (lo2, hi2) if m > 0 else (hi2, lo2)


def _node_bounds(lo, hi):
    return tuple(None if b is None else (_frac_node(b[0]), b[1]) for b in (lo, hi))


def _to_interval(rel) -> tuple[str, Answer] | None:
    """(variable, interval or union Answer): the solution set of a one-variable chain of
    inequalities that bounds one expression E by constants, where E is the variable
    itself (the written endpoints are kept), linear in it, or |linear|."""
    var = _variable(rel)
    if var is None:
        return None
    members, ops = rel
    if any(op in ("=", "\\ne") for op in ops):
        return None
    moving = [k for k, m in enumerate(members) if free_symbols(m)]
    if len(moving) != 1:
        return None
    e_at = moving[0]
    lo = hi = None  # (node, closed)
    for k, op in enumerate(ops):
        if k == e_at:       # E op c
            upper, const = op in ("<", "\\le"), members[k + 1]
        elif k + 1 == e_at:  # c op E
            upper, const = op in (">", "\\ge"), members[k]
        else:
            return None
        bound = (const, op in ("\\le", "\\ge"))
        if upper:
            if hi is not None:
                return None
            hi = bound
        else:
            if lo is not None:
                return None
            lo = bound
    e = members[e_at]
    if e == ("s", var):
        return var, _interval(lo, hi)
    # exact rational bounds from here on
    vals = []
    for b in (lo, hi):
        if b is None:
            vals.append(None)
            continue
        v = evaluate(b[0])
        if not isinstance(v, Fraction):
            return None
        vals.append((v, b[1]))
    lo_v, hi_v = vals
    if e[0] == "f" and e[1] == "abs":
        lin = _linear(e[2], var)
        if lin is None or lin[0] == 0:
            return None
        if lo_v is None or lo_v[0] < 0:
            lo_v = (Fraction(0), True)  # |L| >= 0 always
        if hi_v is not None and (hi_v[0] < lo_v[0] or (hi_v[0] == lo_v[0] and not (hi_v[1] and lo_v[1]))):
            return None  # empty set
        m, k = lin
        if lo_v[0] == 0 and lo_v[1]:
            neg_hi = None if hi_v is None else (-hi_v[0], hi_v[1])
            return var, _interval(*_node_bounds(*_affine_preimage(neg_hi, hi_v, m, k)))
        neg = _affine_preimage(None if hi_v is None else (-hi_v[0], hi_v[1]), (-lo_v[0], lo_v[1]), m, k)
        pos = _affine_preimage(lo_v, hi_v, m, k)
        parts = sorted([neg, pos], key=lambda b: (b[0] is not None, b[0][0] if b[0] else 0))
        return var, Answer("union", [_interval(*_node_bounds(*b)) for b in parts])
    lin = _linear(e, var)
    if lin is None or lin[0] == 0:
        return None
    return var, _interval(*_node_bounds(*_affine_preimage(lo_v, hi_v, *lin)))


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

