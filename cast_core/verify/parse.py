"""Whitelisted parser of one answer expression (plain text and LaTeX) into a small AST.

Nothing here evaluates code: a hand-written tokenizer accepts only numbers, single
letters, a short whitelist of names (`FUNCTIONS`, `CONSTANTS`, `GREEK`), LaTeX commands
from `LATEX_COMMANDS`, matrix environments, and the operators
``+ - * / ^ ** ! ( ) [ ] { } | _ & \\\\``; anything else raises `ParseError`. A
recursive-descent parser turns tokens into plain tuples:

    ("n", p, q, inexact)   the rational p/q (ints, q > 0); inexact: written as a decimal
    ("s", name)            a variable (also a function label such as "f(x)")
    ("c", name)            a constant: "pi", "e", "i", "oo"
    ("+", [a, b, ...])     sum            ("*", [a, b, ...])  product (in written order)
    ("neg", a)             -a             ("/", a, b)         a / b
    ("^", a, b)            a ** b         ("!", a)            factorial
    ("f", name, a)         function of `FUNCTIONS` ("sqrt", "sin", "log", ...)
    ("root", a, n)         n-th root      ("log", a, base)    log of a to a base
    ("binom", n, k)        binomial coefficient
    ("pm", a, sign)        +a or -a: the term after \\pm (sign +1) or \\mp (sign -1)
    ("mat", rows)          a matrix: rows of cells (pmatrix, bmatrix, array, ...)

The tuples are JSON-serialisable, so the symbolic worker receives data, never code.
Every expression is bounded: `MAX_ANSWER_CHARS` characters, `MAX_TOKENS` tokens,
`MAX_DEPTH` nesting (checked by a linear scan first), `MAX_INT_DIGITS` per literal.
The answer structure above expressions (lists, relations, labels, intervals) is in
`structure.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from .braces import check_depth
from .limits import MAX_ANSWER_CHARS, MAX_DEPTH, MAX_INT_DIGITS, MAX_TOKENS

__all__ = [
    "ParseError",
    "parse_expression",
    "expand_pm",
    "canon",
    "has_tag",
    "FUNCTIONS",
    "CONSTANTS",
    "GREEK",
    "LATEX_COMMANDS",
]


class ParseError(ValueError):
    """The answer is outside the whitelisted grammar or over a size limit."""


FUNCTIONS = frozenset({
    "sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan",
    "sinh", "cosh", "tanh", "log", "ln", "exp", "abs",
})
CONSTANTS = {"pi": "pi", "infty": "oo", "infinity": "oo", "inf": "oo", "e": "e", "i": "i"}
GREEK = frozenset({
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
    "vartheta", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "phi",
    "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma",
    "Phi", "Psi", "Omega",
})
LATEX_COMMANDS = frozenset({"frac", "sqrt", "binom", "pi", "infty", "pm", "mp"}) | FUNCTIONS | GREEK
FUNCTION_LETTERS = frozenset("fghFGH")
"""Letters read as a function label when directly followed by ``(``: ``f(x)``."""

# Plain-text names that are not split into single-letter variables.
_WORDS = FUNCTIONS | {"pi", "inf", "infinity"}
_MAX_CELLS = 64

_TOKEN = re.compile(r"""
    (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<matbegin>\\begin\{(?:[pbvBV]?matrix|smallmatrix)\}|\\begin\{array\}\s*\{[^{}]*\})
  | (?P<matend>\\end\{(?:[pbvBV]?matrix|smallmatrix|array)\})
  | (?P<rowsep>\\\\)
  | (?P<sub>_(?:\{\s*[A-Za-z0-9]{1,8}\s*\}|[A-Za-z0-9]))
  | (?P<cmd>\\[a-zA-Z]+)
  | (?P<word>[a-zA-Z]+)
  | (?P<setl>\\\{) | (?P<setr>\\\})
  | (?P<op>\*\*|[-+*/^!,_|&])
  | (?P<lp>[(\[{]) | (?P<rp>[)\]}])
  | (?P<ws>\s+)
""", re.VERBOSE)
_CLOSE = {"(": ")", "[": "]", "{": "}"}


@dataclass
class _Tok:
    kind: str  # num word cmd setl setr op lp rp matbegin matend rowsep
    text: str
    ws: bool = False  # whitespace before this token


def _tokenize(s: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos, n = 0, len(s)
    ws = False
    while pos < n:
        m = _TOKEN.match(s, pos)
        if m is None:
            raise ParseError(f"unexpected character {s[pos]!r} at {pos}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            ws = True
            continue
        text = m.group(0)
        if kind == "word":
            parts = _split_word(text)
            parts[0].ws = ws
            toks.extend(parts)
        elif kind == "cmd":
            name = text[1:]
            if name not in LATEX_COMMANDS:
                raise ParseError(f"LaTeX command {text!r} is not whitelisted")
            toks.append(_Tok("cmd", name, ws))
        else:
            toks.append(_Tok(kind, text, ws))
        ws = False
        if len(toks) > MAX_TOKENS:
            raise ParseError(f"more than {MAX_TOKENS} tokens")
    return toks


def _split_word(w: str) -> list[_Tok]:
    if w in _WORDS:
        return [_Tok("cmd", w if w not in ("inf", "infinity") else "infty")]
    for f in ("sqrt", "sin", "cos", "tan", "log", "ln", "exp"):
        # "sinx" -> sin x; only a one- or two-letter argument, to keep words out.
        if w.startswith(f) and 0 < len(w) - len(f) <= 2:
            return [_Tok("cmd", f)] + _split_word(w[len(f):])
    if len(w) <= 2:
        return [_Tok("word", ch) for ch in w]
    raise ParseError(f"unknown name {w!r}")


def _num(text: str) -> tuple:
    mant, _, exp = text.lower().partition("e")
    int_part, _, frac_part = mant.partition(".")
    if len(int_part) + len(frac_part) > MAX_INT_DIGITS or len(exp) > 6:
        raise ParseError(f"numeric literal {text[:20]!r}... too long")
    e = int(exp) if exp else 0
    if abs(e) > 1000:
        raise ParseError(f"scientific exponent {e} out of range")
    digits = int((int_part or "0") + frac_part)
    scale = e - len(frac_part)
    value = Fraction(digits * 10 ** scale) if scale >= 0 else Fraction(digits, 10 ** -scale)
    inexact = "." in mant or bool(exp)
    return ("n", value.numerator, value.denominator, inexact)


class _Parser:
    def __init__(self, toks: list[_Tok]):
        self.toks = toks
        self.i = 0
        self.depth = 0
        self.abs_depth = 0

    # -- helpers ---------------------------------------------------------------
    def peek(self, k: int = 0) -> _Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> _Tok:
        t = self.peek()
        if t is None:
            raise ParseError("unexpected end of input")
        self.i += 1
        return t

    def is_op(self, text: str) -> bool:
        t = self.peek()
        return t is not None and t.kind == "op" and t.text == text

    def is_cmd(self, *names: str) -> bool:
        t = self.peek()
        return t is not None and t.kind == "cmd" and t.text in names

    def enter(self) -> None:
        self.depth += 1
        if self.depth > 8 * MAX_DEPTH:  # about 5 grammar levels per bracket level
            raise ParseError("expression nested too deeply")

    # -- grammar ---------------------------------------------------------------
    def parse(self) -> tuple:
        node = self.expr()
        if self.peek() is not None:
            raise ParseError(f"unexpected token {self.peek().text!r}")
        return node

    def expr(self) -> tuple:
        self.enter()
        if self.is_cmd("pm", "mp"):
            sign = 1 if self.take().text == "pm" else -1
            terms = [("pm", self.term(), sign)]
        else:
            terms = [self.term()]
        while self.is_op("+") or self.is_op("-") or self.is_cmd("pm", "mp"):
            op = self.take().text
            t = self.term()
            if op in ("pm", "mp"):
                terms.append(("pm", t, 1 if op == "pm" else -1))
            else:
                terms.append(t if op == "+" else ("neg", t))
        self.depth -= 1
        return terms[0] if len(terms) == 1 else ("+", terms)

    def starts_atom(self) -> bool:
        t = self.peek()
        if t is None:
            return False
        if t.kind in ("num", "word", "lp", "matbegin"):
            return True
        if t.kind == "cmd":
            return t.text not in ("pm", "mp")
        return t.kind == "op" and t.text == "|" and self.abs_depth == 0

    def term(self) -> tuple:
        self.enter()
        factors = [self.unary()]
        while True:
            if self.is_op("*") or self.is_op("/"):
                op = self.take().text
                rhs = self.unary()
                if op == "*":
                    factors.append(rhs)
                else:
                    left = factors[0] if len(factors) == 1 else ("*", factors)
                    factors = [("/", left, rhs)]
            elif self.starts_atom():
                prev = self.toks[self.i - 1]
                if prev.kind == "num" and self.peek().kind == "num":
                    raise ParseError("two numbers side by side")
                factors.append(self.power())
            else:
                break
        self.depth -= 1
        return factors[0] if len(factors) == 1 else ("*", factors)

    def unary(self) -> tuple:
        self.enter()
        if self.is_op("-"):
            self.take()
            node = ("neg", self.unary())
        elif self.is_op("+"):
            self.take()
            node = self.unary()
        else:
            node = self.power()
        self.depth -= 1
        return node

    def power(self) -> tuple:
        self.enter()
        base = self.postfix()
        if self.is_op("^") or self.is_op("**"):
            self.take()
            t = self.peek()
            if t is not None and t.kind == "lp" and t.text == "{":
                exp = self.group()
            else:
                exp = self.unary()
            base = ("^", base, exp)
            while self.is_op("!"):
                self.take()
                base = ("!", base)
        self.depth -= 1
        return base

    def postfix(self) -> tuple:
        node = self.atom()
        while self.is_op("!"):
            self.take()
            node = ("!", node)
        return node

    def group(self) -> tuple:
        """A bracketed sub-expression; the closing bracket must match the opening."""
        t = self.take()
        if t.kind != "lp":
            raise ParseError(f"expected a bracket, got {t.text!r}")
        inner = self.expr()
        close = self.take()
        if close.kind != "rp" or close.text != _CLOSE[t.text]:
            raise ParseError(f"unbalanced {t.text!r}")
        return inner

    def arg(self, *, split_digits: bool = False) -> tuple:
        """A LaTeX argument: a {group} or a single token (``\\frac12`` splits digits)."""
        t = self.peek()
        if t is None:
            raise ParseError("missing argument")
        if t.kind == "lp" and t.text == "{":
            return self.group()
        if split_digits and t.kind == "num" and t.text.isdigit() and len(t.text) > 1:
            self.toks[self.i] = _Tok("num", t.text[1:])
            return _num(t.text[0])
        return self.atom()

    def atom(self) -> tuple:
        self.enter()
        t = self.take()
        if t.kind == "num":
            node = _num(t.text)
            nxt = self.peek()
            # Mixed number "2\frac{1}{2}" = 5/2 (the MATH-dataset convention).
            if (nxt is not None and nxt.kind == "cmd" and nxt.text == "frac"
                    and node[2] == 1 and not node[3]):
                save = self.i
                self.take()
                a, b = self.arg(split_digits=True), self.arg(split_digits=True)
                if a[0] == "n" and b[0] == "n" and not a[3] and not b[3] and a[2] == b[2] == 1:
                    node = ("+", [node, ("/", a, b)])
                else:
                    self.i = save
        elif t.kind == "word":
            nxt = self.peek()
            if (t.text in FUNCTION_LETTERS and nxt is not None and nxt.kind == "lp"
                    and nxt.text == "(" and not nxt.ws):
                node = ("s", f"{t.text}({canon(self.group())})")
            else:
                node = self.subscripted(("c", t.text) if t.text in ("e", "i") else ("s", t.text))
        elif t.kind == "cmd":
            node = self.command(t.text)
        elif t.kind == "lp":
            self.i -= 1
            node = self.group()
        elif t.kind == "matbegin":
            node = self.matrix()
        elif t.kind == "op" and t.text == "|" and self.abs_depth == 0:
            self.abs_depth += 1
            inner = self.expr()
            self.abs_depth -= 1
            if not self.is_op("|"):
                raise ParseError("unclosed |")
            self.take()
            node = ("f", "abs", inner)
        else:
            raise ParseError(f"unexpected token {t.text!r}")
        self.depth -= 1
        return node

    def matrix(self) -> tuple:
        rows: list[list[tuple]] = [[]]
        cells = 0
        while True:
            t = self.peek()
            if t is None:
                raise ParseError("unclosed matrix")
            if t.kind == "matend":
                self.take()
                break
            if t.kind == "rowsep":
                self.take()
                rows.append([])
                continue
            rows[-1].append(self.expr())
            cells += 1
            if cells > _MAX_CELLS:
                raise ParseError(f"matrix with more than {_MAX_CELLS} cells")
            if self.is_op("&"):
                self.take()
                if self.peek() is None or self.peek().kind in ("rowsep", "matend", "op"):
                    raise ParseError("empty matrix cell")
        rows = [r for r in rows if r]
        if not rows or len({len(r) for r in rows}) != 1:
            raise ParseError("matrix rows of different lengths")
        return ("mat", rows)

    def subscripted(self, node: tuple) -> tuple:
        t = self.peek()
        if t is None or t.kind != "sub":
            return node
        self.take()
        sub = t.text[1:].strip("{} ")
        return ("s", f"{node[1]}_{sub}")

    def command(self, name: str) -> tuple:
        if name == "frac":
            return ("/", self.arg(split_digits=True), self.arg(split_digits=True))
        if name == "binom":
            return ("binom", self.arg(split_digits=True), self.arg(split_digits=True))
        if name in ("pi", "infty"):
            return ("c", CONSTANTS[name])
        if name in GREEK:
            return self.subscripted(("s", name))
        if name == "sqrt":
            if self.peek() is not None and self.peek().kind == "lp" and self.peek().text == "[":
                n = self.group()
                return ("root", self.arg(), n)
            return ("f", "sqrt", self.arg(split_digits=True))
        if name == "log" and self.peek() is not None and self.peek().kind == "sub":
            sub = self.take().text[1:].strip("{} ")
            base = parse_expression(sub) if sub.isdigit() or len(sub) == 1 else ("s", sub)
            return ("log", self.func_arg(), base)
        if name == "log" and self.is_op("_"):
            self.take()
            base = self.arg(split_digits=True)
            return ("log", self.func_arg(), base)
        if name in ("pm", "mp"):
            raise ParseError(f"misplaced \\{name}")
        # A function: optional power (\sin^2 x), then its argument.
        power = None
        if self.is_op("^"):
            self.take()
            power = self.arg()
        node = ("f", name, self.func_arg())
        return node if power is None else ("^", node, power)

    def func_arg(self) -> tuple:
        """``\\sin(x)``, or without brackets ``\\sin 2x`` = sin(2x), ``\\sin 2\\pi t``: a
        bracket-free argument takes the following implicit product of numbers, letters,
        pi and Greek letters (it stops at operators and other functions)."""
        t = self.peek()
        if t is not None and t.kind == "lp":
            return self.group()
        factors = [self.power()]
        while True:
            t = self.peek()
            if t is None or not (t.kind == "word" or (t.kind == "cmd" and (t.text == "pi" or t.text in GREEK))):
                break
            factors.append(self.power())
        return factors[0] if len(factors) == 1 else ("*", factors)


def canon(node) -> str:
    """A compact canonical spelling of an AST (labels such as f(x), set keys)."""
    if isinstance(node, list):
        return "[" + ",".join(canon(x) for x in node) + "]"
    if not isinstance(node, tuple):
        return str(node)
    tag = node[0]
    if tag == "n":
        return str(Fraction(node[1], node[2]))
    if tag in ("s", "c"):
        return node[1]
    return tag + "(" + ";".join(canon(c) for c in node[1:]) + ")"


def parse_expression(s: str) -> tuple:
    """Parse one expression (no commas, no relations) into the AST described above.

    Raises:
        ParseError: outside the grammar or over a size limit.
    """
    if len(s) > MAX_ANSWER_CHARS:
        raise ParseError(f"answer longer than {MAX_ANSWER_CHARS} characters")
    if not check_depth(s):
        raise ParseError(f"nesting deeper than {MAX_DEPTH}")
    toks = _tokenize(s)
    if not toks:
        raise ParseError("empty expression")
    return _Parser(toks).parse()


def has_tag(node, tag: str) -> bool:
    """Whether an AST node with ``tag`` occurs in ``node``."""
    if not isinstance(node, tuple) or not node:
        return False
    if node[0] == tag:
        return True
    if node[0] == "n":
        return False
    for c in node[1:]:
        if isinstance(c, tuple) and has_tag(c, tag):
            return True
        if isinstance(c, list):
            for x in c:
                if isinstance(x, list):
                    if any(has_tag(y, tag) for y in x):
                        return True
                elif has_tag(x, tag):
                    return True
    return False


def _signed(node, sign: int):
    """Replace every ("pm", a, s) by a (s*sign > 0) or -a."""
    if not isinstance(node, tuple) or node[0] in ("n", "s", "c"):
        return node
    if node[0] == "pm":
        inner = _signed(node[1], sign)
        return inner if node[2] * sign > 0 else ("neg", inner)
    out = [node[0]]
    for c in node[1:]:
        if isinstance(c, tuple):
            out.append(_signed(c, sign))
        elif isinstance(c, list):
            out.append([[_signed(y, sign) for y in x] if isinstance(x, list) else _signed(x, sign)
                        for x in c])
        else:
            out.append(c)
    return tuple(out)


def expand_pm(node: tuple) -> list[tuple]:
    """The values an expression with \\pm / \\mp stands for: every \\pm takes the same
    sign and every \\mp the opposite one (the quadratic-formula convention), so
    ``a \\pm b`` is [a + b, a - b]. An expression without them is [node]."""
    if not has_tag(node, "pm"):
        return [node]
    return [_signed(node, 1), _signed(node, -1)]

