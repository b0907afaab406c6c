"""The structure of an answer above single expressions: `parse_answer`.

An answer string (after `normalize.normalize_latex`) is read, outermost first, as:

1. a multiple-choice letter (``B``, ``(B)``);
2. groups separated by ``;`` (``p=5,q=2; p=7,q=2``), each a list;
3. a list: items separated by ``,`` or the words "and"/"or" (``\\quad`` became a comma),
   read unordered; a ``label =`` carries over to the following unlabelled items
   (``x = 1, 2`` means x is 1 or 2);
4. each item a relation chain, split at ``= < > \\le \\ge \\ne \\approx \\in``:
   - ``label = ... = v`` (the left side made of letters only: ``x``, ``a_{37}``,
     ``f(x)``, ``|AB|``, ``A:B``, ``(p,q)``) is an assignment of the last member v;
   - a chain of three or more members, or of constants only (``5+5+1 = 11``), is a
     computation: its value is the last member;
   - ``\\approx v`` tails are approximations of the exact value before them and are
     dropped (``x = 1/3 \\approx 0.33`` is x = 1/3);
   - ``label \\in S`` assigns the set S;
   - anything else with a relation (``2x+4y-3=0``, ``x \\le 5``, ``0 < f(x) < 1``) is a
     relation, compared as a relation (see `relations.py`);
5. a value: ``\\{..\\}`` set, ``(..)``/``[..]`` tuple or interval, ``{..}`` a plain
   group, ``\\cup`` union, ``a:b`` ratio, a matrix, ``\\pm`` (the set of both signs),
   or one expression with optional unit words and ``%``.

Number formats read only when an item is a lone number: ``1,000`` / ``1 000`` (digit
grouping) and, by the ``decimal_comma`` option, ``1,5``.

Text that fits no grammar becomes ``Answer("text", ...)`` (lower-cased, spaces and braces
removed), so plain-word answers still compare.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .braces import check_depth, outer_pair, split_top
from .limits import MAX_ANSWER_CHARS, MAX_DEPTH, MAX_ELEMENTS
from .normalize import normalize_latex
from .parse import GREEK, ParseError, canon, expand_pm, has_tag, parse_expression

__all__ = ["Answer", "parse_answer", "is_ambiguous_decimal", "label_of"]


@dataclass(frozen=True)
class Answer:
    """A parsed answer.

    kind:
      "mc" (value: the letter); "text" (value: canonical string);
      "expr" (value: AST; percent: written with a trailing %);
      "set" (``\\{..\\}``, ``\\pm``), "bare" (a list without brackets), "union"
      (``\\cup``): value is a list of Answer, compared unordered;
      "tuple" (value: list of Answer; brackets: e.g. "()", "(]" for an interval);
      "ratio" (value: list of AST); "matrix" (value: rows of AST);
      "rel" (value: (members: list of AST, ops: list of str), ops in
      ``= < > \\le \\ge \\ne``);
      "label" (value: the assigned Answer; label: canonical key of the left side;
      node: the left side's AST when it is an expression; brackets "in" for ``\\in``).
    """

    kind: str
    value: object
    percent: bool = False
    brackets: str = ""
    label: str | None = None
    node: object = None


_MC = re.compile(r"\(?([A-J])\)?")
_GROUP_SEP = re.compile(r";")
# A list separator: a comma (not inside a digit grouping such as 1,000), or "and"/"or".
_LIST_SEP = re.compile(r",|\s*\b(?:and|or)\b\s*")
_REL_SEP = re.compile(r"=|<|>|\\(?:le|ge|ne|approx|in)(?![a-zA-Z])")
_UNION_SEP = re.compile(r"\\cup(?![a-zA-Z])")
_RATIO_SEP = re.compile(r":")
_THOUSANDS_TOP = re.compile(r"(?<![\d.,])[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?(?![\d,])")
_LONE_COMMA = re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?%?")
_LONE_SPACE = re.compile(r"[+-]?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?%?")
_DECIMAL_COMMA = re.compile(r"([+-]?\d+),(\d+%?)")
_UNIT_POWER = re.compile(r"\^\{?\d\}?$")
_WORDS = frozenset({"sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp",
                    "pi", "inf", "infinity", "arcsin", "arccos", "arctan", "sinh", "cosh",
                    "tanh", "abs"})
_WORD_LABEL = re.compile(r"[A-Za-z][A-Za-z ]{2,30}")
_PERCENT_WORDS = re.compile(r"\s*(?:percentage|percent|pct)$")


def is_ambiguous_decimal(s: str) -> bool:
    """Whether ``s`` is a lone ``digits,digits`` number that is not a digit grouping
    (``1,5``, ``0,111``, ``1000,99``): a decimal comma or a two-item list."""
    t = normalize_latex(s)
    return bool(_DECIMAL_COMMA.fullmatch(t)) and not _LONE_COMMA.fullmatch(t)


def _strip_units(s: str) -> str:
    """Drop trailing unit words ("5 cm", "12 dollars", "3 m^2") when something remains."""
    for _ in range(4):
        t = s.rstrip()
        m = _UNIT_POWER.search(t)
        core = t[:m.start()].rstrip() if m else t
        k = w_end = len(core)
        while k > 0 and t[k - 1].isalpha() and t[k - 1].isascii():
            k -= 1
        word = t[k:w_end]
        if len(word) < 2 or word in _WORDS or word in GREEK:
            return t
        # "2xy" is a product; "5 cm" / "7apples" carry a unit.
        if len(word) == 2 and not (k > 0 and t[k - 1] == " "):
            return t
        if k > 0 and t[k - 1] == "\\":
            return t
        head = t[:k].rstrip()
        if not head or head[-1] in "+-*/^=(,[{\\_<>":
            return t
        s = head
    return s.rstrip()


class _Reader:
    """One parse: the options and the element budget."""

    def __init__(self, decimal_comma: bool) -> None:
        self.decimal_comma = decimal_comma
        self.elements = 0

    def count(self, n: int) -> None:
        self.elements += n
        if self.elements > 4 * MAX_ELEMENTS:
            raise ParseError(f"more than {4 * MAX_ELEMENTS} elements in one answer")

    # -- top levels -------------------------------------------------------------
    def answer(self, s: str, level: int = 0) -> Answer:
        if level > 4:
            raise ParseError("answer structure nested too deeply")
        s = s.strip()
        if not s:
            raise ParseError("empty answer")
        lone = self.lone_number(s)
        if lone is not None:
            return self.value(lone, level)
        groups = [p for p, _ in split_top(s, _GROUP_SEP, ";")]
        if len(groups) > 1:
            groups = [g for g in groups if g]
            if len(groups) > MAX_ELEMENTS:
                raise ParseError("too many elements")
            self.count(len(groups))
            items = [self.list(g, level + 1) for g in groups]
            return items[0] if len(items) == 1 else Answer("bare", items)
        return self.list(s, level)

    def list(self, s: str, level: int) -> Answer:
        s = _protect_thousands(s)
        parts = [p for p, _ in split_top(s, _LIST_SEP, ", ao")]
        parts = [p for p in parts if p]
        if not parts:
            raise ParseError("empty answer")
        if len(parts) > MAX_ELEMENTS:
            raise ParseError("too many elements")
        if len(parts) == 1:
            return self.item(parts[0], level)
        self.count(len(parts))
        items, carry = [], None
        for p in parts:
            it = self.item(p, level + 1)
            if it.kind == "label" and it.brackets != "in":
                carry = it
            elif carry is not None and it.kind not in ("label", "rel"):
                it = Answer("label", it, label=carry.label, node=carry.node)
            items.append(it)
        return Answer("bare", items)

    # -- one item: relations and assignments -------------------------------------
    def item(self, s: str, level: int) -> Answer:
        pieces = split_top(s, _REL_SEP, "=<>\\")
        if len(pieces) == 1:
            return self.value(s, level)
        members = [p for p, _ in pieces]
        ops = [sep for _, sep in pieces[1:]]
        # "\approx v" approximates the exact value before it: drop it, except that
        # "x \approx 11" (a label alone on the left) assigns 11.
        if "\\approx" in ops:
            k = ops.index("\\approx")
            if k == 0 and label_of(members[0]) is not None:
                ops[0] = "="
                cut = next((j for j in range(1, len(ops)) if ops[j] == "\\approx"), len(ops))
            else:
                cut = k
            members, ops = members[:cut + 1], ops[:cut]
            if not ops:
                return self.value(members[0], level)
        if any(not m for m in members):
            raise ParseError("empty side of a relation")
        if ops == ["\\in"]:
            lab = label_of(members[0])
            if lab is None:
                raise ParseError("\\in after a non-label")
            return _labelled(lab, self.value(members[1], level), "in")
        if "\\in" in ops or "\\approx" in ops:
            raise ParseError("unsupported relation chain")
        if all(op == "=" for op in ops):
            lab = label_of(members[0])
            if lab is not None:
                return _labelled(lab, self.value(members[-1], level))
            if len(members) >= 3:
                return self.value(members[-1], level)
            nodes = [parse_expression(m) for m in members]
            if not any(_has_variable(n) for n in nodes):
                return self.value(members[-1], level)  # "48/2 = 24": a computation
            return Answer("rel", (nodes, ops))
        nodes = [parse_expression(m) for m in members]
        if any(has_tag(n, "mat") or has_tag(n, "pm") for n in nodes):
            raise ParseError("relation between matrices or with \\pm")
        return Answer("rel", (nodes, ops))

    # -- values --------------------------------------------------------------------
    def lone_number(self, s: str) -> str | None:
        """``1,000`` / ``1 000`` -> ``1000``; ``1,5`` -> ``1.5`` with decimal_comma."""
        if _LONE_COMMA.fullmatch(s):
            return s.replace(",", "")
        if _LONE_SPACE.fullmatch(s):
            return s.replace(" ", "")
        if self.decimal_comma:
            m = _DECIMAL_COMMA.fullmatch(s)
            if m:
                return m.group(1) + "." + m.group(2)
        return None

    def value(self, s: str, level: int) -> Answer:
        if level > 4:
            raise ParseError("answer structure nested too deeply")
        s = s.strip()
        m = _PERCENT_WORDS.search(s)
        if m and m.start() > 0:
            s = s[:m.start()] + "%"
        s = _strip_units(s)
        if not s:
            raise ParseError("empty answer")
        lone = self.lone_number(s)
        if lone is not None:
            s = lone
        pair = outer_pair(s)
        if pair is not None:
            opener, closer = pair
            inner = s[len(opener):len(s) - len(closer)]
            if opener == "{" and closer == "}":
                return self.answer(inner, level + 1)  # a plain group: {1, 2} is a list
            parts = [p for p, _ in split_top(inner, _LIST_SEP, ", ao")]
            if len(parts) == 1 and opener != "\\{":
                parts = [p for p, _ in split_top(inner, _GROUP_SEP, ";")]
            if opener == "\\{":
                parts = [p for p in parts if p]
                if len(parts) > MAX_ELEMENTS:
                    raise ParseError("too many elements")
                self.count(len(parts))
                return Answer("set", [self.item(p, level + 1) for p in parts])
            if len(parts) > 1:
                if len(parts) > MAX_ELEMENTS or any(not p for p in parts):
                    raise ParseError("too many or empty elements")
                self.count(len(parts))
                return Answer("tuple", [self.item(p, level + 1) for p in parts],
                              brackets=opener + closer)
        if "\\cup" in s:
            parts = [p for p, _ in split_top(s, _UNION_SEP, "\\")]
            if len(parts) > 1:
                if len(parts) > MAX_ELEMENTS:
                    raise ParseError("too many elements")
                self.count(len(parts))
                return Answer("union", [self.value(p, level + 1) for p in parts])
        if ":" in s:
            parts = [p for p, _ in split_top(s, _RATIO_SEP, ":")]
            if len(parts) > 1:
                if len(parts) > MAX_ELEMENTS:
                    raise ParseError("too many elements")
                return Answer("ratio", [parse_expression(p) for p in parts])
        percent = s.endswith("%")
        if percent:
            s = s[:-1].rstrip()
        node = parse_expression(s)
        if has_tag(node, "mat"):
            if percent:
                raise ParseError("a matrix with a percent sign")
            return Answer("matrix", matrix_value(node))
        if has_tag(node, "pm"):
            return Answer("set", [Answer("expr", v, percent=percent) for v in expand_pm(node)])
        return Answer("expr", node, percent=percent)


def _protect_thousands(s: str) -> str:
    """Remove the commas of digit groupings (``1,000``) outside brackets, so the list
    split does not cut them; ``(1,100)`` stays an interval."""
    if "," not in s or not _THOUSANDS_TOP.search(s):
        return s
    out, depth, last = [], 0, 0
    for m in _THOUSANDS_TOP.finditer(s):
        seg = s[last:m.start()]
        for ch in seg:
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
        out.append(seg)
        out.append(m.group(0).replace(",", "") if depth == 0 else m.group(0))
        last = m.end()
    out.append(s[last:])
    return "".join(out)


def _has_variable(node) -> bool:
    return has_tag(node, "s")


def _labelled(lab: tuple[str, object, list | None], inner: Answer, how: str = "") -> Answer:
    """An assignment; ``(p,q) = (3,2)`` becomes the list p = 3, q = 2."""
    key, node, parts = lab
    if (parts is not None and how != "in" and inner.kind == "tuple" and inner.brackets == "()"
            and len(inner.value) == len(parts)):
        return Answer("bare", [Answer("label", v, label=k, node=n) for (k, n), v in zip(parts, inner.value)])
    return Answer("label", inner, label=key, node=node, brackets=how)


def _is_name_node(node) -> bool:
    """Letters only: no numbers, no pi/infinity, no matrices or \\pm."""
    if not isinstance(node, tuple):
        return True
    tag = node[0]
    if tag == "n" or tag in ("mat", "pm"):
        return False
    if tag == "c":
        return node[1] in ("e", "i")
    if tag == "s":
        return True
    for c in node[1:]:
        if isinstance(c, tuple) and not _is_name_node(c):
            return False
        if isinstance(c, list) and not all(_is_name_node(x) for x in c):
            return False
    return True


def label_of(s: str) -> tuple[str, object, list | None] | None:
    """(key, AST or None, parts) when ``s`` is the left side of an assignment: letters
    only (``x``, ``a_{37}``, ``f(x)``, ``|AB|``, ``\\frac{NO}{BO}``), words (``Area``), a
    ratio of such (``A:B``) or a tuple of such (``(p, q)``; parts lists its [(key, AST)]);
    else None."""
    s = s.strip()
    if not s or len(s) > 200:
        return None
    pair = outer_pair(s)
    if pair == ("(", ")"):
        inner = s[1:-1]
        names = [p for p, _ in split_top(inner, re.compile(","), ",")]
        if len(names) > 1:
            subs = [label_of(p) for p in names]
            if all(x is not None and x[2] is None for x in subs):
                parts = [(x[0], x[1]) for x in subs]
                return ("(" + ",".join(k for k, _ in parts) + ")", None, parts)
            return None
    if ":" in s:
        names = [p for p, _ in split_top(s, _RATIO_SEP, ":")]
        if len(names) > 1:
            subs = [label_of(p) for p in names]
            if all(x is not None and x[2] is None for x in subs):
                return (":".join(x[0] for x in subs), None, None)
            return None
    try:
        node = parse_expression(s)
    except ParseError:
        if _WORD_LABEL.fullmatch(s):  # "Area = 12", "total cost = 30"
            return (" ".join(s.lower().split()), None, None)
        return None
    if not _is_name_node(node):
        return None
    return (canon(node), node, None)


def matrix_value(node) -> list[list[tuple]]:
    """The entries of a matrix expression: sums, products (in order), negation, scalar
    multiples and small positive powers of matrices, as rows of entry ASTs."""
    m = _mat(node)
    if not isinstance(m, list):
        raise ParseError("not a matrix")
    return m


def _mat(node):
    """A matrix (rows of ASTs) or, for a scalar subexpression, the AST itself."""
    if not has_tag(node, "mat"):
        return node
    tag = node[0]
    if tag == "mat":
        return [[_scalar(c) for c in row] for row in node[1]]
    if tag == "neg":
        m = _mat(node[1])
        return [[("neg", c) for c in row] for row in m]
    if tag == "+":
        terms = [_mat(t) for t in node[1]]
        if not all(isinstance(t, list) for t in terms):
            raise ParseError("matrix plus scalar")
        shape = (len(terms[0]), len(terms[0][0]))
        if any((len(t), len(t[0])) != shape for t in terms):
            raise ParseError("matrix sum of different shapes")
        return [[("+", [t[i][j] for t in terms]) for j in range(shape[1])] for i in range(shape[0])]
    if tag == "*":
        acc = None
        scalars = []
        for f in node[1]:
            v = _mat(f)
            if isinstance(v, list):
                acc = v if acc is None else _matmul(acc, v)
            else:
                scalars.append(v)
        if scalars:
            acc = [[("*", scalars + [c]) for c in row] for row in acc]
        return acc
    if tag == "^":
        base = _mat(node[1])
        e = node[2]
        if isinstance(base, list) and e[0] == "n" and e[2] == 1 and 1 <= e[1] <= 8:
            acc = base
            for _ in range(e[1] - 1):
                acc = _matmul(acc, base)
            return acc
    raise ParseError("unsupported matrix expression")


def _scalar(node):
    if has_tag(node, "mat") or has_tag(node, "pm"):
        raise ParseError("nested matrix or \\pm in a matrix cell")
    return node


def _matmul(a, b):
    if len(a[0]) != len(b):
        raise ParseError("matrix product of incompatible shapes")
    return [[("+", [("*", [a[i][k], b[k][j]]) for k in range(len(b))]) for j in range(len(b[0]))]
            for i in range(len(a))]


def parse_answer(s: str, *, decimal_comma: bool = False) -> Answer:
    """Parse a whole answer (see the module docstring).

    Args:
        s: the answer text (untrusted).
        decimal_comma: read a lone ``1,5`` as 1.5 (True) or as the list 1, 5 (False).
            Digit groupings (``1,000``) are read as thousands either way.

    Raises:
        ParseError: only for size limits (over-long or over-nested input); anything else
            outside the grammar becomes a text answer.
    """
    if len(s) > MAX_ANSWER_CHARS:
        raise ParseError(f"answer longer than {MAX_ANSWER_CHARS} characters")
    if not check_depth(s):
        raise ParseError(f"nesting deeper than {MAX_DEPTH}")
    norm = normalize_latex(s)
    m = _MC.fullmatch(norm)
    if m:
        return Answer("mc", m.group(1))
    try:
        return _Reader(decimal_comma).answer(norm)
    except (ParseError, RecursionError):
        text = re.sub(r"[\s{}\\]", "", norm).lower()
        if not text:
            raise ParseError("empty answer") from None
        return Answer("text", text)
