"""String-level clean-up of one answer before it is parsed (`normalize_latex`).

Every step is a fixed `str.replace` pass or a non-backtracking regex, so the cost is
linear in the answer length. What is rewritten, and why:

- math delimiters ``$ $$ \\( \\) \\[ \\]`` and a whole-answer ``\\boxed{}``/``\\fbox{}``
  (also inside dollars: ``$\\boxed{1/3}$``) are unwrapped;
- escaping artefacts of answers that went through JSON twice: ``\\\\frac`` (two
  backslashes before a command name) reads as ``\\frac``; a literal ``\\n`` is a space;
- spelling variants collapse to one form: ``\\dfrac \\tfrac \\cfrac`` -> ``\\frac``;
  ``\\left( \\right] \\bigl| \\Bigr\\}`` ... -> the bare delimiter (``\\left.`` vanishes);
  ``\\cdot \\times`` -> ``*``; ``\\div`` -> ``/``; ``\\leq \\leqslant <=`` -> ``\\le`` (and
  ``\\ge``, ``\\ne``); ``\\lt \\gt`` -> ``< >``; unicode ``≤ ≥ ≠ ≈ ± ∓ ∪ ∈ π √ × ·``;
- digit grouping: ``1{,}000``, ``32,\\! 349`` (the LaTeX thousands idioms) -> ``1,000``,
  ``32,349``; thin spaces ``\\, \\! \\;`` are removed;
- ``\\quad``/``\\qquad`` separate list items (they become commas);
- ``\\text{..}``-style wrappers are unwrapped; a pure-word group after other content is a
  unit (``5\\text{ cm}``) and is dropped, except the connectors "and"/"or";
- degree signs, ``\\$``, ``\\displaystyle`` and trailing full stops are dropped.
"""

from __future__ import annotations

import re

from .braces import match_braces

__all__ = ["normalize_latex", "strip_delimiters"]

_UNICODE = {
    "π": "\\pi ", "√": "\\sqrt", "×": "*", "·": "*", "⋅": "*", "−": "-", "–": "-",
    "∞": "\\infty ", "÷": "/", "°": "", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
    "≤": "\\le ", "≥": "\\ge ", "≠": "\\ne ", "≈": "\\approx ", "±": "\\pm ", "∓": "\\mp ",
    "∪": "\\cup ", "∈": "\\in ", "⩽": "\\le ", "⩾": "\\ge ",
}
# Two backslashes before a command name: an answer escaped twice ("\\frac" for "\frac").
# Exactly two (a LaTeX row break "\\" followed by "\frac" is three).
_DOUBLE_BACKSLASH = re.compile(r"(?<!\\)\\\\(?=[a-zA-Z])")
_LITERAL_NEWLINE = re.compile(r"\\n(?![a-zA-Z])")
_SIZED_DELIM = re.compile(r"\\(?:left|right|[bB]igg?[lr]?)(?![a-zA-Z])\s*(\.|\\[{}|]|\\[a-zA-Z]+|[()\[\]|<>/])?")
_REPLACEMENTS = (
    ("\\displaystyle", ""), ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\cfrac", "\\frac"),
    ("\\cdot", "*"), ("\\times", "*"), ("\\ast", "*"), ("\\div", "/"),
    ("\\lbrace", "\\{"), ("\\rbrace", "\\}"), ("\\lvert", "|"), ("\\rvert", "|"),
    ("\\vert", "|"), ("\\langle", "("), ("\\rangle", ")"), ("\\%", "%"), ("\\$", ""),
    ("$", ""), ("^{\\circ}", ""), ("^\\circ", ""), ("\\circ", ""), ("\\degree", ""),
    ("\\dagger", ""), ("\\mathbf", "\\text"), ("\\boldsymbol", "\\text"), ("\\bm", "\\text"),
    ("\\limits", ""), ("\\nolimits", ""),
)
_GROUP_COMMA = re.compile(r"\s*\{\s*,\s*\}\s*")                      # 1{,}000, 14 {, }916
_BANG_COMMA = re.compile(r"(?<=\d),\s*\\!\s*(?=\d)")                   # 32,\! 349
_THIN_SPACES = re.compile(r"(?<!\\)\\[,!;:> ]")
_QUAD = re.compile(r"\\q?quad")
_RELATIONS = (
    (re.compile(r"\\(?:leqslant|leq|le)(?![a-zA-Z])"), "\\le "),
    (re.compile(r"\\(?:geqslant|geq|ge)(?![a-zA-Z])"), "\\ge "),
    (re.compile(r"\\(?:neq|ne)(?![a-zA-Z])"), "\\ne "),
    (re.compile(r"\\lt(?![a-zA-Z])"), "<"), (re.compile(r"\\gt(?![a-zA-Z])"), ">"),
    (re.compile(r"<="), "\\le "), (re.compile(r">="), "\\ge "), (re.compile(r"!="), "\\ne "),
)
_TEXT_GROUP = re.compile(
    r"\\(?:text|textbf|textit|textrm|textup|textnormal|textsf|texttt|mathrm|mathit|mathsf|"
    r"mathbf|mathtt|mathbb|mathcal|mbox|hbox|operatorname)\s*\{([^{}]*)\}(\s*\^\s*\{?\d\}?)?")
_SPACES = re.compile(r"\s+")


def _unwrap_box(s: str) -> str:
    for cmd in ("\\boxed", "\\fbox"):
        if s.startswith(cmd):
            rest = s[len(cmd):].lstrip()
            if rest.startswith("{"):
                close = match_braces(rest, 0)
                if close is not None and close == len(rest) - 1:
                    return rest[1:-1].strip()
    return s


def strip_delimiters(s: str) -> str:
    """Remove math delimiters and a whole-answer box around ``s``, repeatedly
    (``$\\boxed{1/3}$`` -> ``1/3``)."""
    for _ in range(4):
        before = s
        s = s.strip()
        for a, b in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$")):
            if len(s) >= len(a) + len(b) and s.startswith(a) and s.endswith(b):
                s = s[len(a):len(s) - len(b)].strip()
                break
        s = _unwrap_box(s)
        if s == before:
            break
    return s


def _sized(m: re.Match) -> str:
    d = m.group(1)
    if d is None or d == ".":
        return ""
    if d in ("\\lbrace", "\\rbrace"):
        return "\\{" if d == "\\lbrace" else "\\}"
    if d in ("\\langle", "\\rangle"):
        return "(" if d == "\\langle" else ")"
    if d in ("\\lvert", "\\rvert", "\\vert", "\\|"):
        return "|"
    return d


def normalize_latex(s: str) -> str:
    """String-level clean-up of one answer (see the module docstring); whitespace is
    collapsed. Linear in ``len(s)``."""
    for a, b in _UNICODE.items():
        if a in s:
            s = s.replace(a, b)
    if "\\\\" in s:
        s = _DOUBLE_BACKSLASH.sub(r"\\", s)
    if "\\n" in s:
        s = _LITERAL_NEWLINE.sub(" ", s)
    s = strip_delimiters(s)
    if "\\left" in s or "\\right" in s or "\\big" in s or "\\Big" in s:
        s = _SIZED_DELIM.sub(_sized, s)
    for a, b in _REPLACEMENTS:
        if a in s:
            s = s.replace(a, b)
    if "," in s:
        s = _GROUP_COMMA.sub(",", s)
        s = _BANG_COMMA.sub(",", s)
    if "\\" in s:
        s = _THIN_SPACES.sub(lambda m: " " if m.group(0) == "\\ " else "", s)
        s = _QUAD.sub(",", s)
        for pat, rep in _RELATIONS:
            s = pat.sub(lambda _m, r=rep: r, s)
    else:
        for pat, rep in _RELATIONS[5:]:
            s = pat.sub(lambda _m, r=rep: r, s)
    s = s.replace("~", " ")
    # Two passes unwrap \text{\textbf{..}}-style double wrappers.
    for _ in range(2):
        if "\\" not in s:
            break
        s = _TEXT_GROUP.sub(lambda m: _unwrap_text(m, s), s)
    s = _SPACES.sub(" ", s).strip()
    while s.endswith(".") or s.endswith("\\") or s.endswith(","):
        s = s[:-1].rstrip()
    while s.startswith(","):
        s = s[1:].lstrip()
    return s


_CONNECTORS = ("and", "or")


def _unwrap_text(m: re.Match, s: str) -> str:
    """``\\text{...}`` -> its content; a pure-word group after other content is a unit
    ("5\\text{ m}", "3\\,\\text{cm}") and is dropped, except connectors (and, or)."""
    inner = m.group(1)
    words = inner.replace(".", " ").split()
    if (m.start() > 0 and s[:m.start()].strip() and words
            and all(w.isalpha() and w.isascii() for w in words)
            and not any(w.lower() in _CONNECTORS for w in words)):
        return " "
    return " " + inner + (m.group(2) or "") + " "
