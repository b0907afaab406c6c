"""Whitelisted parser of answer strings (plain text and LaTeX) into a small AST.

Nothing here evaluates code: a hand-written tokenizer accepts only numbers, single
letters, a short whitelist of names (`FUNCTIONS`, `CONSTANTS`, `GREEK`), LaTeX commands
from `LATEX_COMMANDS`, and the operators ``+ - * / ^ ** ! ( ) [ ] { } | , =``; anything
else raises `ParseError`. A recursive-descent parser turns tokens into plain tuples:

    ("n", p, q, inexact)   the rational p/q (ints, q > 0); inexact: written as a decimal
    ("s", name)            a variable
    ("c", name)            a constant: "pi", "e", "i", "oo"
    ("+", [a, b, ...])     sum            ("*", [a, b, ...])  product
    ("neg", a)             -a             ("/", a, b)         a / b
    ("^", a, b)            a ** b         ("!", a)            factorial
    ("f", name, a)         function of `FUNCTIONS` ("sqrt", "sin", "log", ...)
    ("root", a, n)         n-th root      ("log", a, base)    log of a to a base
    ("binom", n, k)        binomial coefficient

The tuples are JSON-serialisable, so the symbolic worker receives data, never code.
Every answer is bounded: `MAX_ANSWER_CHARS` characters, `MAX_TOKENS` tokens,
`MAX_DEPTH` nesting (checked by a linear scan first), `MAX_INT_DIGITS` per literal.

`parse_answer` adds the answer structure on top: multiple-choice letters, tuples,
intervals, sets, bare comma lists, a leading ``x =``, trailing units and percentages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from .extract import match_braces
from .limits import MAX_ANSWER_CHARS, MAX_DEPTH, MAX_ELEMENTS, MAX_INT_DIGITS, MAX_TOKENS

__all__ = [
    "ParseError",
    "Answer",
    "parse_expression",
    "parse_answer",
    "normalize_latex",
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
LATEX_COMMANDS = frozenset({"frac", "sqrt", "binom", "pi", "infty"}) | FUNCTIONS | GREEK

# Plain-text names that are not split into single-letter variables.
_WORDS = FUNCTIONS | {"pi", "inf", "infinity"}

_UNICODE = {
    "π": "\\pi ", "√": "\\sqrt", "×": "*", "·": "*", "⋅": "*", "−": "-", "–": "-",
    "∞": "\\infty ", "÷": "/", "°": "", "\u00a0": " ", "\u2009": " ",
}
_REPLACEMENTS = (
    ("\\right.", ""), ("\\left.", ""), ("\\left", ""), ("\\right", ""),
    ("\\bigl", ""), ("\\bigr", ""), ("\\Bigl", ""), ("\\Bigr", ""), ("\\big", ""), ("\\Big", ""),
    ("\\displaystyle", ""), ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"),
    ("\\cdot", "*"), ("\\times", "*"), ("\\ast", "*"), ("\\div", "/"),
    ("\\lbrace", "\\{"), ("\\rbrace", "\\}"), ("\\lvert", "|"), ("\\rvert", "|"),
    ("\\vert", "|"), ("\\%", "%"), ("\\$", ""), ("$", ""), ("{,}", ","),
    ("^{\\circ}", ""), ("^\\circ", ""), ("\\circ", ""), ("\\degree", ""),
    ("\\!", ""), ("\\,", ""), ("\\;", ""), ("\\:", ""), ("\\ ", " "), ("~", " "),
    ("\\geq", "\\ge"), ("\\leq", "\\le"), ("\\neq", "\\ne"), (">=", "\\ge"),
    ("<=", "\\le"), ("\\dagger", ""), ("\\mathbf", "\\text"), ("\\boldsymbol", "\\text"),
)
_TEXT_GROUP = re.compile(
    r"\\(?:text|textbf|textit|textrm|textup|textnormal|mathrm|mathit|mathsf|mathbf|mbox|"
    r"operatorname)\s*\{([^{}]*)\}(\s*\^\s*\{?\d\}?)?")
_SPACES = re.compile(r"\s+")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?%?")
_MC = re.compile(r"\(?([A-J])\)?")
_EQ_PREFIX = re.compile(r"([A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?|\\[a-zA-Z]+)\s*(?:=|\\in)\s*")
_TOKEN = re.compile(r"""
    (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<cmd>\\[a-zA-Z]+)
  | (?P<word>[a-zA-Z]+)
  | (?P<setl>\\\{) | (?P<setr>\\\})
  | (?P<op>\*\*|[-+*/^!=,_|%])
  | (?P<lp>[(\[{]) | (?P<rp>[)\]}])
  | (?P<ws>\s+)
""", re.VERBOSE)
_CLOSE = {"(": ")", "[": "]", "{": "}"}
_UNIT_POWER = re.compile(r"\^\{?\d\}?$")


def normalize_latex(s: str) -> str:
    """String-level clean-up: math delimiters, spacing commands, ``\\left``/``\\right``,
    ``\\text{...}`` wrappers, degree signs and dollar signs; whitespace collapsed.

    Linear in ``len(s)`` (fixed `str.replace` passes and one non-nesting regex).
    """
    s = s.strip()
    for a, b in _UNICODE.items():
        if a in s:
            s = s.replace(a, b)
    if s.startswith("\\[") and s.endswith("\\]"):
        s = s[2:-2]
    if s.startswith("\\(") and s.endswith("\\)"):
        s = s[2:-2]
    s = s.strip()
    for cmd in ("\\boxed", "\\fbox"):
        if s.startswith(cmd):
            rest = s[len(cmd):].lstrip()
            if rest.startswith("{"):
                close = match_braces(rest, 0)
                if close is not None and close == len(rest) - 1:
                    s = rest[1:-1]
    for a, b in _REPLACEMENTS:
        if a in s:
            s = s.replace(a, b)
    # Two passes unwrap \text{\textbf{..}}-style double wrappers.
    for _ in range(2):
        s = _TEXT_GROUP.sub(lambda m: _unwrap_text(m, s), s)
    s = _SPACES.sub(" ", s).strip()
    while s.endswith(".") or s.endswith("\\"):
        s = s[:-1].rstrip()
    return s


def _unwrap_text(m: re.Match, s: str) -> str:
    """``\\text{...}`` -> its content; a pure-word group after other content is a unit
    ("5\\text{ m}", "3\\,\\text{cm}") and is dropped, except connectors (and, or)."""
    inner = m.group(1)
    words = inner.replace(".", " ").split()
    if (m.start() > 0 and s[:m.start()].strip() and words
            and all(w.isalpha() and w.isascii() for w in words)
            and not any(w.lower() in ("and", "or") for w in words)):
        return " "
    return " " + inner + (m.group(2) or "") + " "


def _check_depth(s: str) -> None:
    depth = 0
    for ch in s:
        if ch in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ParseError(f"nesting deeper than {MAX_DEPTH}")
        elif ch in ")]}":
            depth -= 1


@dataclass
class _Tok:
    kind: str  # num word cmd setl setr op lp rp
    text: str


def _tokenize(s: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos, n = 0, len(s)
    while pos < n:
        m = _TOKEN.match(s, pos)
        if m is None:
            raise ParseError(f"unexpected character {s[pos]!r} at {pos}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        text = m.group(0)
        if kind == "word":
            toks.extend(_split_word(text))
        elif kind == "cmd":
            name = text[1:]
            if name not in LATEX_COMMANDS:
                raise ParseError(f"LaTeX command {text!r} is not whitelisted")
            toks.append(_Tok("cmd", name))
        else:
            toks.append(_Tok(kind, text))
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
        terms = [self.term()]
        while self.is_op("+") or self.is_op("-"):
            op = self.take().text
            t = self.term()
            terms.append(t if op == "+" else ("neg", t))
        self.depth -= 1
        return terms[0] if len(terms) == 1 else ("+", terms)

    def starts_atom(self) -> bool:
        t = self.peek()
        if t is None:
            return False
        if t.kind in ("num", "word", "cmd"):
            return True
        if t.kind == "lp":
            return True
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
            node = self.subscripted(("c", t.text) if t.text in ("e", "i") else ("s", t.text))
        elif t.kind == "cmd":
            node = self.command(t.text)
        elif t.kind == "lp":
            self.i -= 1
            node = self.group()
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

    def subscripted(self, node: tuple) -> tuple:
        if not self.is_op("_"):
            return node
        self.take()
        t = self.take()
        if t.kind == "lp" and t.text == "{":
            parts = []
            while True:
                u = self.take()
                if u.kind == "rp":
                    break
                if u.kind not in ("num", "word"):
                    raise ParseError("bad subscript")
                parts.append(u.text)
            sub = "".join(parts)
        elif t.kind in ("num", "word"):
            sub = t.text
        else:
            raise ParseError("bad subscript")
        if not sub or len(sub) > 8:
            raise ParseError("bad subscript")
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
            return ("f", "sqrt", self.arg())
        if name == "log" and self.is_op("_"):
            self.take()
            base = self.arg(split_digits=True)
            return ("log", self.func_arg(), base)
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


def parse_expression(s: str) -> tuple:
    """Parse one expression (no commas, no ``=``) into the AST described above.

    Raises:
        ParseError: outside the grammar or over a size limit.
    """
    if len(s) > MAX_ANSWER_CHARS:
        raise ParseError(f"answer longer than {MAX_ANSWER_CHARS} characters")
    _check_depth(s)
    toks = _tokenize(s)
    if not toks:
        raise ParseError("empty expression")
    return _Parser(toks).parse()


# --------------------------------------------------------------------------------------
# Answer structure
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """A parsed answer.

    kind: "mc" (value: the letter), "text" (value: canonical string), "expr" (value: AST;
    percent: written with a trailing %), or a sequence: "set" (``\\{..\\}``), "bare" (a
    comma list without brackets, compared unordered), "union" (intervals joined by
    ``\\cup``), "tuple" (value: list of Answer; brackets: e.g. "(]").
    """

    kind: str
    value: object
    percent: bool = False
    brackets: str = ""


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
        if not head or head[-1] in "+-*/^=(,[{\\_":
            return t
        s = head
    return s.rstrip()


def _split_top(s: str, sep: str = ",") -> list[str]:
    """Split at separators outside any bracket (``\\{ \\}`` count as brackets)."""
    parts, depth, start, i, n = [], 0, 0, 0, len(s)
    while i < n:
        ch = s[i]
        if ch == "\\" and i + 1 < n and s[i + 1] in "{}":
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _outer_pair(s: str) -> tuple[str, str] | None:
    """(open, close) when s is one bracketed group: its first bracket closes at the end
    (the close may be a different bracket, as in the interval ``(0, 1]``)."""
    if len(s) < 2:
        return None
    if s.startswith("\\{") and s.endswith("\\}"):
        opener, start = "\\{", 2
    elif s[0] in "([":
        opener, start = s[0], 1
    else:
        return None
    depth, i, n = 1, start, len(s)
    while i < n:
        ch = s[i]
        if ch == "\\" and i + 1 < n and s[i + 1] in "{}":
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            if depth == 0:
                return (opener, "\\}") if i == n else None
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return (opener, ch) if i == n - 1 else None
        i += 1
    return None


def _element(s: str, level: int) -> Answer:
    s = s.strip()
    m = _EQ_PREFIX.match(s)
    if m and "=" not in s[m.end():] and m.end() < len(s):
        s = s[m.end():]
    return _structure(s, level + 1)


def _structure(s: str, level: int) -> Answer:
    if level > 3:
        raise ParseError("answer structure nested too deeply")
    s = _strip_units(s.strip())
    if not s:
        raise ParseError("empty answer")
    m = _EQ_PREFIX.match(s)
    if m and "=" not in s[m.end():] and m.end() < len(s):
        s = s[m.end():]
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    pair = _outer_pair(s)
    if pair is not None:
        opener, closer = pair
        inner = s[len(opener):len(s) - len(closer)]
        parts = _split_top(inner)
        if opener == "\\{":
            if len(parts) > MAX_ELEMENTS:
                raise ParseError("too many elements")
            return Answer("set", [_element(p, level) for p in parts])
        if len(parts) > 1:
            if len(parts) > MAX_ELEMENTS:
                raise ParseError("too many elements")
            return Answer("tuple", [_element(p, level) for p in parts], brackets=opener + closer)
    if "\\cup" in s:
        parts = _split_top(s, "\\cup")
        if len(parts) > 1:
            return Answer("union", [_structure(p, level + 1) for p in parts])
    parts = _split_top(s)
    if len(parts) > 1:
        if len(parts) > MAX_ELEMENTS:
            raise ParseError("too many elements")
        return Answer("bare", [_element(p, level) for p in parts])
    m = _EQ_PREFIX.match(s)
    if m and "=" not in s[m.end():] and m.end() < len(s):
        s = s[m.end():]
    percent = s.endswith("%")
    if percent:
        s = s[:-1].rstrip()
    return Answer("expr", parse_expression(s), percent=percent)


def parse_answer(s: str) -> Answer:
    """Parse a whole answer: structure (MC letter, tuple, interval, set, list) over
    whitelisted expressions. Text that fits no grammar becomes ``Answer("text", ...)``
    (lower-cased, spaces and braces removed) so plain-word answers still compare.

    Raises:
        ParseError: only for size limits (over-long or over-nested input).
    """
    if len(s) > MAX_ANSWER_CHARS:
        raise ParseError(f"answer longer than {MAX_ANSWER_CHARS} characters")
    _check_depth(s)
    norm = normalize_latex(s)
    m = _MC.fullmatch(norm)
    if m:
        return Answer("mc", m.group(1))
    norm = re.sub(r"\s+(?:and|or)\s+", ", ", norm)
    try:
        return _structure(norm, 0)
    except ParseError:
        text = re.sub(r"[\s{}\\]", "", norm).lower()
        if not text:
            raise
        return Answer("text", text)
