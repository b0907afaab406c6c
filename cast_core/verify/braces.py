"""Bracket utilities shared by extraction and parsing (linear scans, depth-capped).

Brackets are ``( ) [ ] { }``, the escaped set braces ``\\{ \\}``, and the environments
``\\begin{..}`` / ``\\end{..}`` (so a matrix is one bracketed unit).
"""

from __future__ import annotations

import re

from .limits import MAX_DEPTH

__all__ = ["TOO_DEEP", "match_braces", "split_top", "outer_pair", "check_depth"]

TOO_DEEP = -1
"""`match_braces` result when nesting exceeds the cap (distinct from None: unclosed)."""


def match_braces(text: str, open_pos: int, *, max_depth: int = MAX_DEPTH) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``text[open_pos]``; None when it is
    unclosed; `TOO_DEEP` when nesting exceeds ``max_depth`` (a 10k-deep bracket bomb is
    rejected, not walked into). Escaped braces ``\\{ \\}`` are ordinary characters.
    Linear in the scanned length."""
    if open_pos >= len(text) or text[open_pos] != "{":
        return None
    depth = 0
    i = open_pos
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "{}":
            i += 2
            continue
        if ch == "{":
            depth += 1
            if depth > max_depth:
                return TOO_DEEP
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def check_depth(s: str, limit: int = MAX_DEPTH) -> bool:
    """Whether bracket nesting in ``s`` stays within ``limit``."""
    depth = 0
    for ch in s:
        if ch in "([{":
            depth += 1
            if depth > limit:
                return False
        elif ch in ")]}":
            depth -= 1
    return True


_ENV = re.compile(r"\\(begin|end)\{[a-zA-Z*]*\}")


def split_top(s: str, sep: re.Pattern, first: str) -> list[tuple[str, str]]:
    """Split ``s`` at matches of ``sep`` outside every bracket.

    ``first`` lists the characters a separator can start with (the regex is tried only
    there). Returns ``[(part, separator_before_part), ...]``; the first separator is "".
    """
    out: list[tuple[str, str]] = []
    depth, start, i, n = 0, 0, 0, len(s)
    prev_sep = ""
    while i < n:
        ch = s[i]
        if ch == "\\":
            if i + 1 < n and s[i + 1] in "{}":
                depth += 1 if s[i + 1] == "{" else -1
                i += 2
                continue
            m = _ENV.match(s, i)
            if m:
                depth += 1 if m.group(1) == "begin" else -1
                i = m.end()
                continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch in first:
            m = sep.match(s, i)
            if m and m.end() > i:
                out.append((s[start:i].strip(), prev_sep))
                prev_sep = m.group(0).strip()
                i = m.end()
                start = i
                continue
        i += 1
    out.append((s[start:].strip(), prev_sep))
    return out


def outer_pair(s: str) -> tuple[str, str] | None:
    """(open, close) when ``s`` is one bracketed group whose first bracket closes at the
    very end (the close may differ, as in the interval ``(0, 1]``); None otherwise."""
    if len(s) < 2:
        return None
    if s.startswith("\\{") and s.endswith("\\}"):
        opener, start = "\\{", 2
    elif s[0] in "([{":
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
