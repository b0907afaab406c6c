"""Find the final answer in a model completion.

Strategies, tried in order (configurable):

- ``"boxed"``: the content of the last ``\\boxed{...}`` or ``\\fbox{...}`` (nested braces
  matched; also the brace-less ``\\boxed 5``).
- ``"answer_is"``: the text after the last "the answer is" / "final answer:" (up to the
  end of that line or sentence).
- ``"gsm8k"``: the text after the last GSM8K-style ``#### `` marker (to the end of line).
- ``"last_number"``: the last number in the text (signed, with thousands separators,
  decimals, a ``a/b`` fraction or a trailing ``%``).

Only the last `MAX_TEXT_CHARS` characters are scanned, so cost is bounded whatever the
completion length; every scan is linear (``str.rfind`` plus simple regexes, no
backtracking-prone pattern).
"""

from __future__ import annotations

import re
from typing import Iterable

from .limits import MAX_ANSWER_CHARS, MAX_DEPTH, MAX_TEXT_CHARS

__all__ = ["extract_answer", "STRATEGIES", "DEFAULT_STRATEGIES", "match_braces"]

STRATEGIES = ("boxed", "answer_is", "gsm8k", "last_number")
DEFAULT_STRATEGIES = STRATEGIES

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_ANSWER_IS = re.compile(r"(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*:?", re.IGNORECASE)
_NUMBER = re.compile(r"[-+−]?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?%?")


def match_braces(text: str, open_pos: int, *, max_depth: int = MAX_DEPTH) -> int | None:
    """Index of the ``}`` closing the ``{`` at ``text[open_pos]``, or None.

    None when the brace is unclosed or nesting exceeds ``max_depth`` (a 10k-deep
    bracket bomb is rejected, not walked into). Escaped braces ``\\{`` ``\\}`` count as
    ordinary characters. Linear in the scanned length.
    """
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
                return None
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _boxed(text: str) -> str | None:
    best = -1
    cmd_len = 0
    for cmd in _BOX_COMMANDS:
        pos = text.rfind(cmd)
        # "\fbox" must not be the tail of a longer command such as "\fboxsep".
        while pos != -1:
            after = pos + len(cmd)
            if after >= len(text) or not text[after].isalpha():
                break
            pos = text.rfind(cmd, 0, pos)
        if pos > best:
            best, cmd_len = pos, len(cmd)
    if best < 0:
        return None
    return _box_content(text, best + cmd_len)


def _box_content(text: str, i: int) -> str | None:
    """Content of the box whose command ends at ``text[i]``."""
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] == "{":
        close = match_braces(text, i)
        if close is None:
            return None
        return text[i + 1:close].strip()
    # "\boxed 5" form: the next whitespace-free run.
    m = re.match(r"[^\s$]+", text[i:i + MAX_ANSWER_CHARS])
    return m.group(0) if m else None


def _answer_is(text: str) -> str | None:
    last = None
    for last in _ANSWER_IS.finditer(text):
        pass
    if last is None:
        return None
    rest = text[last.end():last.end() + MAX_ANSWER_CHARS].strip()
    head = rest.lstrip("$ ")
    boxed = None
    for cmd in _BOX_COMMANDS:
        if head.startswith(cmd):
            boxed = _box_content(head, len(cmd))
    if boxed:
        return boxed
    line = rest.split("\n", 1)[0].strip()
    # End at a sentence stop: ". " (not a decimal point) or a final ".".
    m = re.search(r"\.(?:\s|$)", line)
    if m:
        line = line[:m.start()]
    line = line.strip().strip("*").strip()
    return line or None


def _gsm8k(text: str) -> str | None:
    pos = text.rfind("####")
    if pos < 0:
        return None
    rest = text[pos + 4:pos + 4 + MAX_ANSWER_CHARS].lstrip("#").strip()
    line = rest.split("\n", 1)[0].strip()
    return line or None


def _last_number(text: str) -> str | None:
    last = None
    for last in _NUMBER.finditer(text):
        pass
    if last is None:
        return None
    return last.group(0).replace("$", "").strip()


_FUNCS = {"boxed": _boxed, "answer_is": _answer_is, "gsm8k": _gsm8k, "last_number": _last_number}


def extract_answer(text: str, *, strategies: Iterable[str] = DEFAULT_STRATEGIES) -> str | None:
    """The final answer of a completion, as a string, or None when none is found.

    Args:
        text: the completion (untrusted). Only its last `MAX_TEXT_CHARS` characters are
            read.
        strategies: names from `STRATEGIES`, tried in order; the first that finds a
            non-empty answer wins. Default: boxed, "the answer is", ``####``, last number.

    Returns:
        The answer text (stripped, at most `MAX_ANSWER_CHARS` characters), or None.

    Raises:
        TypeError: ``text`` is not a str. ValueError: an unknown strategy name.
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, got {type(text).__name__}")
    names = tuple(strategies) if not isinstance(strategies, str) else (strategies,)
    for name in names:
        if name not in _FUNCS:
            raise ValueError(f"strategies: unknown strategy {name!r}; choose from {STRATEGIES}")
    if not names:
        raise ValueError("strategies: empty; choose from " + repr(STRATEGIES))
    tail = text[-MAX_TEXT_CHARS:]
    for name in names:
        found = _FUNCS[name](tail)
        if found:
            found = found.strip()
            if found and len(found) <= MAX_ANSWER_CHARS:
                return found
    return None
